# The Universe's type vocabulary: a small subset of nixpkgs' lib.types, written as data so that it
# evaluates with builtins alone. A type is a name ("str", "nonEmptyStr", "bool", "int", "ints.positive",
# "ints.unsigned", "number", "numbers.positive", "port", "attrs") or a one-key set
# ({ enum = [..]; } { nullOr = T; } { listOf = T; } { strMatching = "re"; }
#  { "ints.between" = [ lo hi ]; } { "numbers.between" = [ lo hi ]; }).
# This file describes types for people; lib/module-options.nix maps them onto nixpkgs' lib.types.
let
  show = v: if builtins.isString v then v else builtins.toJSON v;
  constructor = t: if builtins.isString t then t else builtins.head (builtins.attrNames t);
  argument = t: builtins.getAttr (constructor t) t;
  plain = {
    str = "a string";
    nonEmptyStr = "a non-empty string";
    bool = "a boolean (true/false, 1/0, yes/no, on/off)";
    int = "an integer";
    "ints.positive" = "an integer >= 1";
    "ints.unsigned" = "an integer >= 0";
    number = "a number";
    "numbers.positive" = "a number > 0";
    port = "a TCP port from 0 to 65535";
    attrs = "a JSON object";
  };
  # What a value may be, in words, for error messages and docs.
  allowed = t:
    let c = constructor t; a = argument t; in
    if builtins.isString t then
      (plain.${t} or (throw "unknown type ${t} in the Universe"))
    else if c == "enum" then "one of ${builtins.concatStringsSep ", " a}"
    else if c == "nullOr" then "null or ${allowed a}"
    else if c == "listOf" then "a list of (${allowed a}), comma-separated or JSON"
    else if c == "strMatching" then "a string matching ${a}"
    else if c == "ints.between" then "an integer from ${show (builtins.elemAt a 0)} to ${show (builtins.elemAt a 1)}"
    else if c == "numbers.between" then "a number from ${show (builtins.elemAt a 0)} to ${show (builtins.elemAt a 1)}"
    else throw "unknown type ${c} in the Universe";
  # The type as a Nix reader writes it: nullOr ints.positive, enum [ "a" "b" ].
  nixName = t:
    let c = constructor t; a = argument t; in
    if builtins.isString t then t
    else if c == "enum" then "enum [ ${builtins.concatStringsSep " " (map builtins.toJSON a)} ]"
    else if c == "nullOr" || c == "listOf" then "${c} ${nixName a}"
    else if c == "strMatching" then "strMatching ${builtins.toJSON a}"
    else "${c} ${show (builtins.elemAt a 0)} ${show (builtins.elemAt a 1)}";
in
{
  inherit constructor argument allowed nixName;
}
