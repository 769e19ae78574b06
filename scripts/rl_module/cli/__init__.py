"""The console scripts. Each entry point is thin: parse, resolve, call one function, print, exit.

Exit codes, in one place: 0 success, 1 an expected failure (a model that is not valid, nothing to load),
2 bad usage or a bad value, 128 + the signal's number when a signal stopped the command (130 for Ctrl-C,
143 for SIGTERM; rl-train stops gracefully, see rl_module.stopping), 141 and not a word when the reader of
its output went away (`| head`), as Unix tools end. An unexpected error prints one line and where the full
traceback was written.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping, Sequence

from ..config import Command, Failure, UsageError, print_config
from ..redact import text
from ..stopping import Stopped

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a Unix tool whose reader went away

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "Failure", "run"]


def run(command: Command, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command on these arguments and environment (by default the process's own) and return its exit
    code. Run as the console script, on the process's own, it exits the process itself (see _leave)."""
    code = _run(command, argv, environ)
    if argv is None and environ is None:
        _leave(code)
    return code


def _leave(code: int) -> None:
    """Exit as the interpreter would, less its teardown of every module: with torch and matplotlib
    loaded, that teardown took 1.3 s after each rl-train had written its last word, and as long after each
    sweep. The exit handlers run (logging and telemetry flush in them), then the standard streams are
    flushed. Only when no other thread would have been waited for; else the interpreter exits as usual."""
    import atexit
    import threading

    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader gone (a closed pipe): what could not be written is lost
            pass
    os._exit(code)


def _run(command: Command, argv: Sequence[str] | None, environ: Mapping[str, str] | None) -> int:
    environ = os.environ if environ is None else environ
    try:
        config, args = command.configure(argv, environ)
        if args.print_config:
            print_config(config)
            return EXIT_OK
        return command.action(config, args)
    except UsageError as error:
        print(f"{command.prog}: error: {text(str(error))}", file=sys.stderr)
        return EXIT_USAGE
    except Failure as error:
        print(f"{command.prog}: {text(str(error))}", file=sys.stderr)
        return EXIT_FAILED
    except Stopped as stopped:  # a second signal while stopping: what was half-written was removed
        print(f"{command.prog}: {stopped}; nothing half-written was kept", file=sys.stderr)
        return stopped.exit_code
    except KeyboardInterrupt:
        print(f"{command.prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`| head`): end quietly, as Unix tools do
        _quiet_stdout()
        return EXIT_CLOSED_PIPE
    except Exception as error:  # the last line of defence: one line, the traceback in a file
        try:
            log = _write_traceback(command.prog)
        except OSError as failure:  # nowhere private to write it: the one line still says what happened
            log = f"not written: {text(str(failure))}"
        print(f"{command.prog}: unexpected error: {type(error).__name__}: {text(str(error))} (full log: {log})",
              file=sys.stderr)
        return EXIT_FAILED


def _quiet_stdout() -> None:
    """Point standard output at /dev/null: what is still buffered for a closed pipe is dropped, not flushed
    into another BrokenPipeError when the interpreter exits."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no standard output to redirect (closed, or not a file)
        pass


def _crash_folder() -> str:
    """A folder only this user can read and write: $XDG_STATE_HOME/rl-module (~/.local/state), else one of
    this user's own in the temporary folder. Never a shared, predictable name: another user could have
    planted a link there."""
    home = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    for folder in (os.path.join(home, "rl-module"), os.path.join(tempfile.gettempdir(), f"rl-module-{os.getuid()}")):
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            info = os.lstat(folder)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077:
            return folder
    return tempfile.mkdtemp(prefix="rl-module-")  # private (0700) and new


def _write_traceback(prog: str) -> str:
    """The traceback, credentials masked, in a new owner-only file that follows no link. A name already
    taken (a file, or a link planted there) is never opened: a fresh random name is taken instead."""
    folder = _crash_folder()
    stem = f"{prog}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    path = os.path.join(folder, f"{stem}.log")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:  # mkstemp: O_EXCL and O_NOFOLLOW too, mode 0600, a random name
        descriptor, path = tempfile.mkstemp(prefix=f"{stem}-", suffix=".log", dir=folder)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text(traceback.format_exc()))
    return path
