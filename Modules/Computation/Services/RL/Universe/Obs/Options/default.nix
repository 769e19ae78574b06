# Obs: how observations (and rewards) are preprocessed before the policy sees them.
{
  normalize = {
    type = { enum = [ "none" "obs" "reward" "both" ]; };
    default = "none";
    description = "Running normalization of observations, rewards, or both (VecNormalize).";
    example = "both";
  };
  clipRange = {
    type = "numbers.positive";
    default = 10.0;
    description = "Normalized observations are clipped to [-clipRange, clipRange].";
    example = 5.0;
  };
  stackFrames = {
    type = { nullOr = "ints.positive"; };
    default = null;
    description = "Stack this many consecutive observations (VecFrameStack); null stacks none.";
    example = 4;
  };
}
