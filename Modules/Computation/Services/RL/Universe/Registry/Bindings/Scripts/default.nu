# nushell helpers over the RL module's model registry (the same database the rl-* commands use),
# returning structured nu tables:
#
#   use Modules/Computation/Services/RL/Universe/Registry/Bindings/Scripts/default.nu *
#     (from the repository root; in a script file elsewhere, `nu --include-path <this folder> script.nu`
#     with `use default.nu *`: nushell resolves `use` from the script's own folder)
#   registry list --validated --top-n 5 | where env_id == "CartPole-v1"
#   registry best --env-id CartPole-v1 | get model_path
#   registry report 7
#
# The database is --db, else $env.RL_REGISTRY_DB, else ./rl_registry.db (registry.dbPath's default).
# A SQLite file is queried directly, every query parametrized (nothing a user types is pasted into SQL);
# a PostgreSQL URL through `rl-registry-list --json`, which nushell cannot query itself.

const COLUMNS = "id, validated, mean_reward, std_reward, mean_episode_length, total_timesteps, algorithm, env_id, kind, run_id, timestamp, model_path, sha256"

def database [db?: string] {
  let path = ($db | default ($env.RL_REGISTRY_DB? | default "./rl_registry.db"))
  if (is-postgres $path) {
    return $path
  }
  if not ($path | path exists) {
    error make { msg: $"no registry database at ($path)" }
  }
  $path
}

def is-postgres [db: string] {
  ($db | str starts-with "postgresql://") or ($db | str starts-with "postgres://")
}

# Rows as rl-registry-list --json gives them (the PostgreSQL path), with the SQLite path's columns.
def listed [db: string, validated: bool, top_n, env_id, algorithm] {
  let flags = ([--json --registry-db $db]
    | append (if $validated { [--validated] } else { [] })
    | append (if $top_n != null { [--top-n ($top_n | into string)] } else { [] })
    | append (if $env_id != null { [--env-id $env_id] } else { [] })
    | append (if $algorithm != null { [--algorithm $algorithm] } else { [] }))
  ^rl-registry-list ...$flags | from json
}

def shape [] {
  $in | update validated {|row| $row.validated == 1 or $row.validated == true } | update timestamp {|row| $row.timestamp * 1_000_000_000 | into datetime }
}

# Models, best mean reward first (unevaluated last).
export def "registry list" [
  --db: string          # registry database
  --validated           # only validated models
  --top-n: int          # only the N best
  --env-id: string      # only this environment
  --algorithm: string   # only this algorithm
] {
  let path = (database $db)
  if (is-postgres $path) {
    let columns = ($COLUMNS | split row ", ")
    return (listed $path $validated $top_n $env_id $algorithm | select ...$columns | shape)
  }
  let sql = $"SELECT ($COLUMNS) FROM models WHERE \(?1 = 0 OR validated = 1\) AND \(?2 IS NULL OR env_id = ?2\) AND \(?3 IS NULL OR lower\(algorithm\) = lower\(?3\)\) ORDER BY mean_reward IS NULL, mean_reward DESC, id DESC LIMIT ?4"
  open $path | query db $sql --params [($validated | into int) $env_id $algorithm ($top_n | default (-1))] | shape
}

# The best validated model (the hotswap choice), refused when its file is missing or changed.
export def "registry best" [
  --db: string
  --env-id: string
  --algorithm: string
] {
  let rows = (registry list --db $db --validated --env-id $env_id --algorithm $algorithm --top-n 1)
  if ($rows | is-empty) {
    error make { msg: "no validated model in the registry" }
  }
  let best = ($rows | first)
  if not ($best.model_path | path exists) {
    error make { msg: $"model ($best.id) refused: its file ($best.model_path) is missing" }
  }
  if (open --raw $best.model_path | hash sha256) != $best.sha256 {
    error make { msg: $"model ($best.id) refused: ($best.model_path) does not match its recorded checksum" }
  }
  $best
}

# The validation rules of one model as last checked (by training, rl-eval or rl-registry-validate).
export def "registry report" [
  id: int           # registry id of the model
  --db: string
] {
  let path = (database $db)
  let rows = if (is-postgres $path) {
    listed $path false null null null | where id == $id | select validation | update validation {|row| if $row.validation == null { null } else { $row.validation | to json } }
  } else {
    open $path | query db "SELECT validation FROM models WHERE id = ?1" --params [$id]
  }
  if ($rows | is-empty) {
    error make { msg: $"no model with id ($id)" }
  }
  let validation = ($rows | first | get validation)
  if $validation == null {
    error make { msg: $"model ($id) has not been validated yet" }
  }
  $validation | from json | get checks | select rule passed detail
}
