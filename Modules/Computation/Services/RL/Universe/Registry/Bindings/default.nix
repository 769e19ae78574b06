# Registry binds to Python's sqlite3, and to psycopg for a PostgreSQL URL. The seed names its database variable and flag RL_REGISTRY_DB / --registry-db.
{
  module = "rl_module.registry";
  binding = "sqlite3";
  envPrefix = "RL_REGISTRY_";
  env = {
    dbPath = "RL_REGISTRY_DB";
  };
  envFallbacks = { };
  flags = {
    enable = "--registry";
    dbPath = "--registry-db";
  };
  aliases = { };
}
