# The one adaptor between the Universe's type vocabulary (lib/types.nix) and nixpkgs' module system:
# a read Universe becomes { <feature key> = { <option> = lib.mkOption { ... }; }; } with real lib.types.
{ lib }:
let
  inherit (lib) types;
  vocabulary = import ./types.nix;
  values = import ./values.nix;

  toType = t:
    let
      c = vocabulary.constructor t;
      a = vocabulary.argument t;
      named = {
        str = types.str;
        nonEmptyStr = types.nonEmptyStr;
        bool = types.bool;
        int = types.int;
        "ints.positive" = types.ints.positive;
        "ints.unsigned" = types.ints.unsigned;
        number = types.number;
        "numbers.positive" = types.numbers.positive;
        port = types.port;
        attrs = types.attrsOf types.anything;
      };
    in
    if builtins.isString t then named.${t}
    else if c == "enum" then types.enum a
    else if c == "nullOr" then types.nullOr (toType a)
    else if c == "listOf" then types.listOf (toType a)
    else if c == "strMatching" then types.strMatching a
    else if c == "ints.between" then types.ints.between (builtins.elemAt a 0) (builtins.elemAt a 1)
    else types.numbers.between (builtins.elemAt a 0) (builtins.elemAt a 1);

  toOption = o: lib.mkOption ({
    type = toType o.type;
    inherit (o) default;
    description = "${o.description}\n\nEnvironment variable `${o.env}`, flag `${o.flag}`.";
  } // lib.optionalAttrs (o.example != null) {
    example = lib.literalExpression (values.toNix o.example);
  });
in
universe:
builtins.listToAttrs (map
  (feature: {
    name = feature.key;
    value = builtins.listToAttrs (map (o: { inherit (o) name; value = toOption o; }) feature.options);
  })
  universe.features)
