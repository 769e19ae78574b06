# Eval: how a trained model is evaluated.
{
  episodes = {
    type = "ints.positive";
    default = 10;
    description = "Episodes per evaluation.";
    example = 20;
  };
  deterministic = {
    type = "bool";
    default = true;
    description = "Take the policy's most likely action instead of sampling.";
    example = false;
  };
}
