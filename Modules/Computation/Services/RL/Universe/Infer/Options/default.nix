# Infer: which model answers observations, and on which device.
{
  modelPath = {
    type = { nullOr = "nonEmptyStr"; };
    default = null;
    description = "Model file to load; with neither modelPath nor modelId, the registry's best validated model.";
    example = "./models/ppo-CartPole-v1.zip";
  };
  device = {
    type = { enum = [ "auto" "cpu" "cuda" "mps" ]; };
    default = "auto";
    description = "Torch device; auto takes cuda or mps when present, else cpu.";
    example = "cpu";
  };
  modelId = {
    type = { nullOr = "ints.positive"; };
    default = null;
    description = "Registry id of the model to load (checked against its recorded checksum).";
    example = 12;
  };
}
