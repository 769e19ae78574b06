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
  serve = {
    type = "bool";
    default = false;
    description = "Serve predictions over HTTP (POST /predict, GET /model, GET /healthz), swapping to each new best validated model.";
    example = true;
  };
  host = {
    type = "nonEmptyStr";
    default = "127.0.0.1";
    description = "Address the server listens on.";
    example = "0.0.0.0";
  };
  port = {
    type = "port";
    default = 8000;
    description = "Port the server listens on (0 picks a free one and logs it).";
    example = 8080;
  };
  pollInterval = {
    type = "numbers.positive";
    default = 1.0;
    description = "Seconds between looks at the registry for a new best validated model (hotswap).";
    example = 5.0;
  };
  maxBodyBytes = {
    type = "ints.positive";
    default = 1048576;
    description = "Largest request body accepted; larger ones get 413.";
    example = 65536;
  };
}
