# The environment file's loader, run by every wrapped rl-* command before the program (makeWrapper --run;
# Drv/commands.nix sets __rl_file before it). It reads the file as systemd reads an EnvironmentFile=, so
# that a service and a command run by hand see the same values. The subset it reads, line by line:
#   NAME=value              the value as written, blanks around it dropped; a backslash keeps the next
#   NAME = value            character as it is (\\ is one backslash, \" a quote); blanks around "=" ignored
#   export NAME=value       "export " ignored
#   NAME="value"            in double quotes: blanks kept, \" \\ \` \$ are the character, other backslashes stay
#   NAME='value'            in single quotes: every character as it is
#   # comment, ; comment    a line whose first character (after blanks) is # or ; and blank lines are skipped
# Nothing is expanded or run: $VAR, $(...) and `...` are text. A NAME must match [A-Za-z_][A-Za-z0-9_]*; a
# line with another name is skipped with a warning, as systemd skips it. A later line wins over an earlier
# one; a variable already in the environment wins over the file. A quoted value or a backslash that goes on
# past its line (systemd reads on) is not in the subset: the command stops (exit 2) and says which line.
# Warnings name the file and the line, never a value (a value may be a password).
if [ -r "$__rl_file" ]; then
  declare -A __rl_set=()
  __rl_number=0
  while IFS= read -r __rl_line || [ -n "$__rl_line" ]; do
    __rl_number=$((__rl_number + 1))
    __rl_line=${__rl_line%$'\r'}
    __rl_line=${__rl_line#"${__rl_line%%[![:blank:]]*}"}
    case "$__rl_line" in "" | "#"* | ";"*) continue ;; esac
    if [[ $__rl_line == export[[:blank:]]* ]]; then
      __rl_line=${__rl_line#export}
      __rl_line=${__rl_line#"${__rl_line%%[![:blank:]]*}"}
    fi
    if [[ $__rl_line != *=* ]]; then
      echo "${0##*/}: warning: $__rl_file, line $__rl_number: no NAME=value, skipped" >&2
      continue
    fi
    __rl_name=${__rl_line%%=*}
    __rl_name=${__rl_name%"${__rl_name##*[![:blank:]]}"}
    if ! [[ $__rl_name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]]; then
      echo "${0##*/}: warning: $__rl_file, line $__rl_number: not a variable name (letters, digits and _), skipped" >&2
      continue
    fi
    __rl_rest=${__rl_line#*=}
    __rl_value="" __rl_state=pre __rl_blanks=-1 __rl_at=0
    while [ "$__rl_at" -lt "${#__rl_rest}" ]; do
      __rl_char=${__rl_rest:__rl_at:1}
      __rl_at=$((__rl_at + 1))
      case $__rl_state in
        pre)
          case $__rl_char in
            [[:blank:]]) ;;
            "'") __rl_state=single ;;
            '"') __rl_state=double ;;
            '\') __rl_state=escape ;;
            *) __rl_value+=$__rl_char __rl_state=plain ;;
          esac ;;
        plain)
          case $__rl_char in
            '\') __rl_state=escape __rl_blanks=-1 ;;
            [[:blank:]]) [ "$__rl_blanks" -ge 0 ] || __rl_blanks=${#__rl_value}; __rl_value+=$__rl_char ;;
            *) __rl_value+=$__rl_char __rl_blanks=-1 ;;
          esac ;;
        escape) __rl_value+=$__rl_char __rl_state=plain ;;
        single)
          if [ "$__rl_char" = "'" ]; then __rl_state=pre; else __rl_value+=$__rl_char; fi ;;
        double)
          case $__rl_char in
            '"') __rl_state=pre ;;
            '\') __rl_state=double_escape ;;
            *) __rl_value+=$__rl_char ;;
          esac ;;
        double_escape)
          case $__rl_char in
            '"' | '\' | '`' | '$') __rl_value+=$__rl_char ;;
            *) __rl_value+="\\$__rl_char" ;;
          esac
          __rl_state=double ;;
      esac
    done
    case $__rl_state in
      single | double | double_escape | escape)
        echo "${0##*/}: $__rl_file, line $__rl_number: the value of $__rl_name goes on past its line (an open" \
          "quote or a last backslash); write it on one line" >&2
        exit 2 ;;
    esac
    [ "$__rl_blanks" -lt 0 ] || __rl_value=${__rl_value:0:__rl_blanks}
    if [ -z "${!__rl_name+x}" ] || [ -n "${__rl_set[$__rl_name]+x}" ]; then
      export "$__rl_name=$__rl_value"
      __rl_set[$__rl_name]=1
    fi
  done < "$__rl_file"
  unset __rl_set __rl_number __rl_line __rl_name __rl_rest __rl_value __rl_state __rl_blanks __rl_at __rl_char
fi
unset __rl_file
