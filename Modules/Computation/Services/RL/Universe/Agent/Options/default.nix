# Agent: the learning algorithm and the shape of its policy.
{
  algorithm = {
    type = { enum = [ "ppo" "a2c" "dqn" "sac" "td3" ]; };
    default = "ppo";
    description = "stable-baselines3 algorithm.";
    example = "sac";
  };
  policyType = {
    type = { enum = [ "MlpPolicy" "CnnPolicy" "MultiInputPolicy" ]; };
    default = "MlpPolicy";
    description = "Policy class: MLP for vectors, CNN for images, MultiInput for Dict observations.";
    example = "CnnPolicy";
  };
  netArch = {
    type = { nullOr = { listOf = "ints.positive"; }; };
    default = null;
    description = "Hidden layer sizes of the policy and value networks; null keeps the algorithm's own (64,64; 256,256 for SAC; 400,300 for TD3).";
    example = [ 256 256 ];
  };
  activation = {
    type = { nullOr = { enum = [ "tanh" "relu" "elu" "leaky_relu" ]; }; };
    default = null;
    description = "Activation of the hidden layers; null keeps the algorithm's own (tanh for PPO/A2C, relu for DQN/SAC/TD3).";
    example = "relu";
  };
  kwargs = {
    type = "attrs";
    default = { };
    description = "Further keyword arguments of the algorithm (n_steps, ent_coef, buffer_size, ...), as JSON; merged over the preset's.";
    example = { n_steps = 1024; ent_coef = 0.01; };
  };
}
