# Rendering option values: as env-var text (what the Python side parses back) and as Nix source (docs).
# Builtins only.
let
  # Env text: booleans spelled out (toString false is "" in Nix), null as "null", lists comma-separated,
  # numbers through toJSON so that 0.9 stays "0.9" (toString gives "0.900000"), attrs as JSON.
  toEnv = v:
    if builtins.isBool v then (if v then "true" else "false")
    else if v == null then "null"
    else if builtins.isList v then builtins.concatStringsSep "," (map toEnv v)
    else if builtins.isAttrs v then builtins.toJSON v
    else if builtins.isString v then v
    else builtins.toJSON v;
  toNix = v:
    if builtins.isBool v then (if v then "true" else "false")
    else if v == null then "null"
    else if builtins.isList v then "[ ${builtins.concatStringsSep " " (map toNix v)} ]"
    else if v == { } then "{ }"
    else if builtins.isAttrs v then
      "{ ${builtins.concatStringsSep " " (map (k: "${k} = ${toNix v.${k}};") (builtins.attrNames v))} }"
    else builtins.toJSON v;
  # A credential inside a value: a URL's `user:password@`, or a query parameter named like a token
  # (the same rule the Python side masks by, scripts/rl_module/redact.py).
  carriesCredential = v:
    builtins.isString v && (
      builtins.match "[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*:[^/@]*@.*" v != null
      || builtins.match ".*[?&][^=&]*([Tt][Oo][Kk][Ee][Nn]|[Kk][Ee][Yy]|[Ss][Ee][Cc][Rr][Ee][Tt]|[Pp][Aa][Ss][Ss][Ww]|[Pp][Ww][Dd]|[Aa][Uu][Tt][Hh]|[Ss][Ii][Gg][Nn][Aa][Tt][Uu][Rr][Ee]|[Cc][Rr][Ee][Dd][Ee][Nn][Tt][Ii][Aa][Ll])[^=&]*=.*" v != null
    );
in
{
  inherit toEnv toNix carriesCredential;
}
