# Everything generated from a read Universe (see universe.nix): env vars for a configuration, the flag
# table, the JSON spec the Python package is built from, the README options table and the
# introspection tree. Builtins only.
let
  values = import ./values.nix;
  inherit (values) toEnv toNix carriesCredential;
  lines = builtins.concatStringsSep "\n";
  # A "|" inside a Markdown table cell must be escaped, even within backticks.
  cell = builtins.replaceStrings [ "|" ] [ "\\|" ];
  forOptions = universe: f: builtins.concatMap (feature: map (f feature) feature.options) universe.features;
in
{
  # { RL_ENV_N_ENVS = "8"; ... } for the options a configuration sets (null ones are left unset).
  # Only what the configuration sets: an option left out keeps its default or gets a training preset,
  # exactly as when the variable is unset; a null is left unset rather than spelled "null", since an
  # OTEL_* variable set to "null" would mislead other OpenTelemetry tools in the same environment.
  # An option marked secret whose value carries a credential is refused: the rendered environment lands in
  # the world-readable Nix store (wrappers, units). The credential goes in rl.environmentFile instead.
  envVars = universe: config:
    builtins.listToAttrs (builtins.concatMap
      (feature: builtins.concatMap
        (o:
          let set = config.${feature.key} or { }; in
          if set ? ${o.name} && set.${o.name} != null
          then
            if o.secret && carriesCredential set.${o.name}
            then throw ("rl.${o.path} carries a credential (a password or token), and the rendered configuration "
              + "is world-readable in the Nix store: set it without the credential and put the credential in "
              + "rl.environmentFile (a file outside the store, e.g. ${o.env}=<the whole value> or PGPASSWORD=...)")
            else [ { name = o.env; value = toEnv set.${o.name}; } ]
          else [ ])
        feature.options)
      universe.features);

  # The flag an option binds to ("sweep.workers" -> "--sweep-workers"): for command lines the modules write.
  flag = universe: path: (builtins.head (builtins.filter (o: o.path == path) universe.options)).flag;

  # [ { path = "env.envId"; flag = "--env-id"; negFlag = null; } ... ]
  flagTable = universe: forOptions universe (feature: o: { inherit (o) path flag negFlag; });

  # The JSON spec committed as scripts/rl_module/spec.json.
  spec = universe: {
    generatedBy = "lib/spec.nix from Modules/Computation/Services/RL/Universe; regenerate with ./dev generate";
    inherit (universe) features presets spaces;
  };

  # The README's options table (Markdown).
  optionsTable = universe: lines ([
    "| option | type | default | env var | flag | description |"
    "|---|---|---|---|---|---|"
  ] ++ forOptions universe (feature: o:
    "| `${o.path}` | `${cell o.typeText}` | `${toNix o.default}` | `${o.env}` | `${o.flag}` | ${o.description} |"
  ));

  # The tree printed by introspect-options, in the seed's format.
  introspect = title: universe: lines ([ "📋 Features in ${title}" ]
    ++ builtins.concatMap
      (feature: [ "" "🔹 ${feature.name}" ]
        ++ map (o: "    • ${o.name} : ${o.typeText} = ${toNix o.default}") feature.options)
      universe.features) + "\n";
}
