"""The console scripts. Each entry point is thin: parse, resolve, call one function, print, exit.

Exit codes, in one place: 0 success, 1 an expected failure (a model that is not valid, nothing to load),
2 bad usage or a bad value, 128 + the signal's number when a signal stopped the command (130 for Ctrl-C,
143 for SIGTERM; rl-train stops gracefully, see rl_module.stopping). An unexpected error prints one line
and where the full traceback was written.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence

from ..config import Command, Failure, UsageError, print_config
from ..stopping import Stopped

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "Failure", "run"]


def run(command: Command, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    try:
        config, args = command.configure(argv, environ)
        if args.print_config:
            print_config(config)
            return EXIT_OK
        return command.action(config, args)
    except UsageError as error:
        print(f"{command.prog}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Failure as error:
        print(f"{command.prog}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Stopped as stopped:  # a second signal while stopping: what was half-written was removed
        print(f"{command.prog}: {stopped}; nothing half-written was kept", file=sys.stderr)
        return stopped.exit_code
    except KeyboardInterrupt:
        print(f"{command.prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # the last line of defence: one line, the traceback in a file
        log = _write_traceback(command.prog)
        print(f"{command.prog}: unexpected error: {type(error).__name__}: {error} (full log: {log})",
              file=sys.stderr)
        return EXIT_FAILED


def _write_traceback(prog: str) -> str:
    directory = os.path.join(tempfile.gettempdir(), "rl-module")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{prog}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log")
    with open(path, "w", encoding="utf-8") as handle:
        traceback.print_exc(file=handle)
    return path
