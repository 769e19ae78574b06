# Reading a module's Universe: its features (in the order Universe/default.nix lists them), their
# options, and the env var and flag each option binds to. Builtins only.
#
#   read ./Modules/Computation/Services/RL
#   => { features = [ { name = "Env"; key = "env"; module; binding; options = [ { name; path; type;
#        default; description; example; secret; env; envFallbacks; flag; negFlag; aliases; typeText; allowed; } ] } ];
#        options = <every option, flat>; presets = [ { algorithm; envId; options = { "<path>" = value; }; } ]; }
let
  strings = import ./strings.nix;
  types = import ./types.nix;
  inherit (strings) kebab screamingSnake lowerFirst;

  readFeature = universeDir: name:
    let
      options = import (universeDir + "/${name}/Options/default.nix");
      bindings = import (universeDir + "/${name}/Bindings/default.nix");
    in
    { inherit name options bindings; key = lowerFirst name; };

  # Flag rule (DESIGN §2): --<option> where the option's name is unique across features, else
  # --<feature>-<option>; Bindings may name a flag outright.
  nameCounts = features:
    builtins.foldl'
      (acc: n: acc // { ${n} = (acc.${n} or 0) + 1; })
      { }
      (builtins.concatMap (f: builtins.attrNames f.options) features);

  bindOption = counts: feature: name:
    let
      o = feature.options.${name};
      b = feature.bindings;
      flag = b.flags.${name} or (
        if counts.${name} == 1 then "--${kebab name}" else "--${kebab feature.key}-${kebab name}"
      );
    in
    {
      inherit name flag;
      inherit (o) type default description;
      path = "${feature.key}.${name}";
      example = o.example or null;
      # May carry a credential (a password in a URL, a token in its query): the Nix side refuses to render
      # such a value into the world-readable store; it comes from rl.environmentFile instead.
      secret = o.secret or false;
      env = b.env.${name} or "${b.envPrefix}${screamingSnake name}";
      envFallbacks = b.envFallbacks.${name} or [ ];
      # Booleans, nullable ones too, take --x / --no-x and no value (null is the default, or the env's).
      negFlag = if o.type == "bool" || o.type == { nullOr = "bool"; } then "--no-${builtins.substring 2 (-1) flag}" else null;
      aliases = b.aliases.${name} or { };
      typeText = types.nixName o.type;
      allowed = types.allowed o.type;
    };

  # Refuse a Universe where two options would share an env var or a flag.
  unique = what: names:
    let
      counts = builtins.foldl' (acc: n: acc // { ${n} = (acc.${n} or 0) + 1; }) { } names;
      clashes = builtins.filter (n: counts.${n} > 1) (builtins.attrNames counts);
    in
    if clashes == [ ] then true
    else throw "the Universe binds more than one option to the ${what} ${builtins.concatStringsSep ", " clashes}";

  # Presets (beside the Universe): { <algorithm> = { <envId> = { <feature> = { <option> = value; }; }; }; }
  # flattened to [ { algorithm; envId; options = { "train.gamma" = 0.98; }; } ], refusing unknown options.
  readPresets = moduleDir: options:
    let
      file = moduleDir + "/Presets/default.nix";
      presets = if builtins.pathExists file then import file else { };
      known = map (o: o.path) options;
      flatten = algorithm: envId: preset: builtins.listToAttrs (builtins.concatMap
        (key: map
          (name:
            let path = "${key}.${name}"; in
            if builtins.elem path known then { name = path; value = preset.${key}.${name}; }
            else throw "preset ${algorithm}/${envId} sets ${path}, which the Universe does not declare")
          (builtins.attrNames preset.${key}))
        (builtins.attrNames preset));
    in
    builtins.concatMap
      (algorithm: map
        (envId: { inherit algorithm envId; options = flatten algorithm envId presets.${algorithm}.${envId}; })
        (builtins.attrNames presets.${algorithm}))
      (builtins.attrNames presets);

  # Search spaces (beside the Universe): { <name> = { "<option path or agent.kwargs.<key>>" = { float = [ lo hi ];
  # log; } | { int = [ lo hi ]; step; } | { choices = [ .. ]; }; }; }, each parameter checked here.
  readSpaces = moduleDir: options:
    let
      file = moduleDir + "/Spaces/default.nix";
      spaces = if builtins.pathExists file then import file else { };
      known = map (o: o.path) options;
      check = space: path: parameter:
        let kinds = builtins.filter (k: parameter ? ${k}) [ "float" "int" "choices" ]; in
        if !(builtins.elem path known || builtins.substring 0 13 path == "agent.kwargs.")
        then throw "space ${space} sets ${path}, which is neither an option of the Universe nor agent.kwargs.<key>"
        else if builtins.length kinds != 1
        then throw "space ${space}, ${path}: give exactly one of float = [ low high ], int = [ low high ], choices = [ ... ]"
        else parameter;
    in
    builtins.mapAttrs (space: parameters: builtins.mapAttrs (check space) parameters) spaces;

  read = moduleDir:
    let
      universeDir = moduleDir + "/Universe";
      raw = map (readFeature universeDir) (import (universeDir + "/default.nix"));
      counts = nameCounts raw;
      features = map
        (f: {
          inherit (f) name key;
          inherit (f.bindings) module binding;
          options = map (bindOption counts f) (builtins.attrNames f.options);
        })
        raw;
      options = builtins.concatMap (f: f.options) features;
      checked =
        unique "env var" (builtins.concatMap (o: [ o.env ]) options)
        && unique "flag" (builtins.concatMap (o: [ o.flag ] ++ (if o.negFlag == null then [ ] else [ o.negFlag ])) options);
    in
    assert checked;
    { inherit features options; presets = readPresets moduleDir options; spaces = readSpaces moduleDir options; };
in
{
  inherit read;
}
