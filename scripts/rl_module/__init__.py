"""RL Module: a declarative reinforcement-learning pipeline with built-in observability.

One package, one module per feature of the Universe (env, obs, feature, agent, train, eval, infer, store,
registry, metrics, traces, logs), `config` to resolve options and `cli` for the console scripts. Heavy
libraries (torch, stable-baselines3, OpenTelemetry, MLflow) are imported inside the functions that use them.
"""

__version__ = "0.1.0"
