# Env: which Gymnasium environment to learn in, how many copies run side by side, and the seed.
{
  envId = {
    type = "nonEmptyStr";
    default = "CartPole-v1";
    description = "Gymnasium environment id, or `package.module:Class` for a custom environment.";
    example = "LunarLander-v3";
  };
  nEnvs = {
    type = "ints.positive";
    default = 1;
    description = "Number of environment copies stepped together (a vectorized environment).";
    example = 8;
  };
  seed = {
    type = { nullOr = "ints.unsigned"; };
    default = null;
    description = "Random seed for environments, networks and sampling; null picks one and records it.";
    example = 42;
  };
  kwargs = {
    type = "attrs";
    default = { };
    description = "Keyword arguments for the environment's constructor (gymnasium.make), as JSON.";
    example = { continuous = true; };
  };
  vecEnv = {
    type = { enum = [ "dummy" "subproc" ]; };
    default = "dummy";
    description = "Step the copies in this process (dummy), or each in its own process (subproc; pays off for slow envs).";
    example = "subproc";
  };
  maxEpisodeSteps = {
    type = { nullOr = "ints.positive"; };
    default = null;
    description = "End (truncate) every episode after this many steps (Gymnasium's max_episode_steps); null keeps the env's own limit. Set it for an env without one: evaluation waits for episodes to end.";
    example = 1000;
  };
}
