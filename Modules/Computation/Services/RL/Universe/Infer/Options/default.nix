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
  maxConnections = {
    type = "ints.positive";
    default = 256;
    description = "Most connections the server keeps open at once; past it, a new connection closes the one that has waited longest for its client (idle, or with a request still arriving), or itself when every other one is being answered.";
    example = 1024;
  };
  requestTimeout = {
    type = "numbers.positive";
    default = 10.0;
    description = "Seconds a client has to send a whole request (headers and body); a slower one is closed (408 once the body has begun).";
    example = 30.0;
  };
  runtime = {
    type = { enum = [ "torch" "onnx" ]; };
    default = "torch";
    description = "What runs the policy: torch (stable-baselines3's networks), or onnx (the model's ONNX policy on onnxruntime: no torch in the process, the `onnx` extra; a model saved without one is refused).";
    example = "onnx";
  };
  export = {
    type = { enum = [ "all" "final" "none" ]; };
    default = "all";
    description = "Which saved models carry an ONNX policy (for infer.runtime onnx and other runtimes; rl-export writes it out): all (checkpoints too), final (the final, best and interrupted models), or none.";
    example = "final";
  };
  workers = {
    type = "ints.positive";
    default = 2;
    description = "Threads that run inference, off the event loop (health and readiness stay prompt); a request finding them all busy with a full queue gets 503.";
    example = 4;
  };
}
