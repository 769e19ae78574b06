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
    type = { listOf = "ints.positive"; };
    default = [ 64 64 ];
    description = "Hidden layer sizes of the policy and value networks.";
    example = [ 256 256 ];
  };
}
