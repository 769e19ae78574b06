# The Universe of the RL module: its features, in pipeline order.
# Listed here explicitly (not discovered from the folder) so that adding a feature is a visible change.
# Each feature is one folder with Options (what can be set) and Bindings (how it binds to env vars,
# flags and the Python module that implements it); both are plain data, evaluable with builtins alone.
[
  "Env"
  "Obs"
  "Feature"
  "Agent"
  "Train"
  "Sweep"
  "Eval"
  "Infer"
  "Store"
  "Registry"
  "Metrics"
  "Traces"
  "Logs"
]
