# Name conversions between the Universe's camelCase option names and env vars / flags. Builtins only.
let
  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  chars = s: builtins.genList (i: builtins.substring i 1 s) (builtins.stringLength s);
  # Split camelCase at each capital: "nEnvs" -> [ "n" "envs" ].
  words = s:
    let
      step = acc: c:
        if builtins.elem c upper
        then acc ++ [ (builtins.replaceStrings upper lower c) ]
        else if acc == [ ] then [ c ]
        else (builtins.genList (i: builtins.elemAt acc i) (builtins.length acc - 1))
          ++ [ (builtins.elemAt acc (builtins.length acc - 1) + c) ];
    in
    builtins.foldl' step [ ] (chars s);
  join = sep: builtins.concatStringsSep sep;
in
{
  toUpper = builtins.replaceStrings lower upper;
  toLower = builtins.replaceStrings upper lower;
  # "nEnvs" -> "N_ENVS"
  screamingSnake = s: builtins.replaceStrings lower upper (join "_" (words s));
  # "nEnvs" -> "n-envs"
  kebab = s: join "-" (words s);
  # "Env" -> "env"
  lowerFirst = s: builtins.replaceStrings upper lower (builtins.substring 0 1 s) + builtins.substring 1 (-1) s;
}
