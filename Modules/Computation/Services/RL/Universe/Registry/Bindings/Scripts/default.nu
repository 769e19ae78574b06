# nushell helpers over the RL module's model registry (the same SQLite file the rl-* commands use),
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
# Every query is parametrized; nothing a user types is pasted into SQL.

const COLUMNS = "id, validated, mean_reward, std_reward, mean_episode_length, total_timesteps, algorithm, env_id, kind, run_id, timestamp, model_path, sha256"

def database [db?: string] {
  let path = ($db | default ($env.RL_REGISTRY_DB? | default "./rl_registry.db"))
  if not ($path | path exists) {
    error make { msg: $"no registry database at ($path)" }
  }
  $path
}

def shape [] {
  $in | update validated {|row| $row.validated == 1 } | update timestamp {|row| $row.timestamp * 1_000_000_000 | into datetime }
}

# Models, best mean reward first (unevaluated last).
export def "registry list" [
  --db: string          # registry database
  --validated           # only validated models
  --top-n: int          # only the N best
  --env-id: string      # only this environment
  --algorithm: string   # only this algorithm
] {
  let sql = $"SELECT ($COLUMNS) FROM models WHERE \(?1 = 0 OR validated = 1\) AND \(?2 IS NULL OR env_id = ?2\) AND \(?3 IS NULL OR lower\(algorithm\) = lower\(?3\)\) ORDER BY mean_reward IS NULL, mean_reward DESC, id DESC LIMIT ?4"
  open (database $db) | query db $sql --params [($validated | into int) $env_id $algorithm ($top_n | default (-1))] | shape
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
  let rows = (open (database $db) | query db "SELECT validation FROM models WHERE id = ?1" --params [$id])
  if ($rows | is-empty) {
    error make { msg: $"no model with id ($id)" }
  }
  let validation = ($rows | first | get validation)
  if $validation == null {
    error make { msg: $"model ($id) has not been validated yet" }
  }
  $validation | from json | get checks | select rule passed detail
}
