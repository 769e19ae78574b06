# Rendering option values: as env-var text (what the Python side parses back) and as Nix source (docs).
# Builtins only.
let
  # Env text: booleans spelled out (toString false is "" in Nix), null as "null", lists comma-separated,
  # floats exactly (floatText), attrs as JSON (with exact floats).
  toEnv = v:
    if builtins.isBool v then (if v then "true" else "false")
    else if v == null then "null"
    else if builtins.isList v then builtins.concatStringsSep "," (map toEnv v)
    else if builtins.isAttrs v then toJSON v
    else if builtins.isString v then v
    else toJSON v;
  # builtins.toJSON, with each float written by floatText.
  toJSON = v:
    if builtins.isFloat v then floatText v
    else if builtins.isList v then "[${builtins.concatStringsSep "," (map toJSON v)}]"
    else if builtins.isAttrs v && !(v ? outPath) && !(v ? __toString) then
      "{${builtins.concatStringsSep "," (map (k: "${builtins.toJSON k}:${toJSON v.${k}}") (builtins.attrNames v))}}"
    else builtins.toJSON v;
  # A float as the shortest decimal text that reads back as the very same number (what Python's repr
  # writes): toJSON and toString keep 6 significant digits in some Nix versions (0.9890787098172121 as
  # "0.989079"), and a configuration pasted from a sweep's best trial must train exactly that trial. Each
  # number of significant digits is tried in turn, each checked by reading it back (fromJSON is exact).
  floatText = x:
    let
      magnitude = if x < 0 then -x else x;
      sign = if x < 0 then "-" else "";
      pow10 = n: if n == 0 then 1.0 else if n > 0 then 10.0 * pow10 (n - 1) else pow10 (n + 1) / 10.0;
      # e with 10^e <= magnitude < 10^(e+1)
      exponentFrom = e:
        if magnitude >= pow10 (e + 1) then exponentFrom (e + 1)
        else if magnitude < pow10 e then exponentFrom (e - 1)
        else e;
      exponent = exponentFrom 0;
      zeros = n: if n <= 0 then "" else "0" + zeros (n - 1);
      # The integer of `digits` significant digits, as decimal text at exponent e (trailing zeros dropped).
      decimal = m: e:
        let
          digits = toString m;
          n = builtins.stringLength digits;
          trimmed = let t = builtins.match "(.*[^0])0*" digits; in if t == null then "0" else builtins.head t;
          fraction = s: if s == "" then "0" else s;
        in
        if e < -5 || e > 15 then
          let k = builtins.stringLength trimmed; in
          "${builtins.substring 0 1 trimmed}.${fraction (builtins.substring 1 k trimmed)}e${toString e}"
        else if e < 0 then "0.${zeros (-e - 1)}${trimmed}"
        else if n <= e + 1 then "${digits}${zeros (e + 1 - n)}.0"
        else "${builtins.substring 0 (e + 1) digits}.${fraction (let r = builtins.match "(.*[^0])0*" (builtins.substring (e + 1) n digits); in if r == null then "" else builtins.head r)}";
      # `k` significant digits: the mantissa rounded, and its neighbours (each scaling rounds once).
      candidates = k:
        let
          m = builtins.floor (magnitude / pow10 exponent * pow10 (k - 1) + 0.5);
          text = m': if m' >= builtins.floor (pow10 k) then decimal (m' / 10) (exponent + 1) else decimal m' exponent;
        in
        map (m': sign + text m') (builtins.filter (m': m' >= builtins.floor (pow10 (k - 1))) [ m (m - 1) (m + 1) ]);
      exact = builtins.filter (t: builtins.fromJSON t == x)
        (builtins.concatMap candidates [ 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 ]);
    in
    if x == 0.0 then "0.0"
    else if magnitude < 1.0e-300 || magnitude > 1.0e300 || exact == [ ] then builtins.toJSON x
    else builtins.head exact;
  toNix = v:
    if builtins.isBool v then (if v then "true" else "false")
    else if v == null then "null"
    else if v == [ ] then "[ ]"
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
  inherit toEnv toNix carriesCredential floatText;
}
