# Train: the training loop and its hyperparameters.
{
  totalTimesteps = {
    type = "ints.positive";
    default = 100000;
    description = "Environment steps to train for (summed over all environment copies).";
    example = 1000000;
  };
  learningRate = {
    # A string so that "3e-4" reads as written (Nix has no float literal in that notation);
    # "lin_" makes it decay linearly to zero over training.
    type = { strMatching = "(lin_)?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?"; };
    default = "3e-4";
    description = "Learning rate as a number in a string; `lin_<rate>` decays it linearly to 0.";
    example = "lin_1e-3";
  };
  batchSize = {
    type = "ints.positive";
    default = 64;
    description = "Minibatch size for each gradient step.";
    example = 256;
  };
  gamma = {
    type = { "numbers.between" = [ 0.0 1.0 ]; };
    default = 0.99;
    description = "Discount factor.";
    example = 0.98;
  };
}
