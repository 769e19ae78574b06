# Feature: the encoder that turns observations into the feature vector the policy heads read.
{
  encoder = {
    type = { enum = [ "mlp" "cnn" "transformer" "custom" ]; };
    default = "mlp";
    description = "Features extractor: flatten for an MLP, a CNN for images, a small Transformer, or your own.";
    example = "cnn";
  };
  embedDim = {
    type = { nullOr = "ints.positive"; };
    default = null;
    description = "Size of the feature vector the encoder produces; null keeps the encoder's own default.";
    example = 256;
  };
  customClass = {
    type = { nullOr = "nonEmptyStr"; };
    default = null;
    description = "The `package.module:Class` of your BaseFeaturesExtractor, for encoder = custom.";
    example = "my_package.encoders:GraphEncoder";
  };
}
