"""Graceful stop: what `systemctl stop`, a preempted VM and Ctrl-C send (SIGTERM, SIGINT).

The first signal asks the work to stop at its next safe point (training: the next environment step) and
to save where it is. A second one stops at once: `Stopped` is raised where the program is, and unwinds
through the code that writes files and registry rows — an atomic write removes its temporary file, a
registry transaction rolls back — so nothing partial is left. Exit status 128 + the signal's number
(130 for SIGINT, 143 for SIGTERM), as a shell reports a process killed by it.

A process steered by a parent (an rl-sweep worker) is also asked to stop by that parent, which passes on
what it received (`forward`). A terminal's Ctrl-C or a SIGTERM to the process group reaches both, so the
parent's request is the same stop, never a second signal: only a second signal to this process itself
stops it at once.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

from .logs import event

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)
_stops: list[GracefulStop] = []  # the stops in force in this process, for the requests a parent forwards
_forwarded: list[int] = []  # the signal a parent forwarded to this process, once forwarded


def from_a_handler(say: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """What a signal handler has to say, said by a thread. A handler runs between two bytecodes of the main
    thread, which may be inside a write to the very stream it would write to (a log handler's flush, a
    progress line): writing there again raises "reentrant call inside BufferedWriter" in the middle of
    the main thread's work. The thread writes once the main thread has let go of the stream."""
    try:
        threading.Thread(target=say, args=args, kwargs=kwargs, name="rl-stop-announce").start()
    except RuntimeError:  # the interpreter is shutting down: there is no one left to tell
        pass


def forward(signum: int) -> None:
    """A stop asked of this whole process by its parent, for the signal the parent received: every stop in
    force (and every one entered later) stops gracefully; never a second signal. Called from a signal
    handler."""
    if not _forwarded:
        _forwarded.append(signum)
    for stop in list(_stops):
        stop.request_from_a_handler(signum, forwarded=True)


class Stopped(BaseException):
    """A second signal: stop at once. A BaseException, as KeyboardInterrupt is: `except Exception` in a
    library must not swallow it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"stopped at once by a second {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class GracefulStop:
    """Signal handlers for the duration of a `with` block (in the main thread; elsewhere it only reports
    what it was told by `request`)."""

    def __init__(self, what: str = "stopping at the next step and saving") -> None:
        self.what = what
        self.signum: int | None = None
        self._signalled = False  # a signal to this process itself (not one a parent forwarded) was seen
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def signal_name(self) -> str | None:
        return signal.Signals(self.signum).name if self.signum is not None else None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)

    def request(self, signum: int, forwarded: bool = False, announce: bool = True) -> None:
        """The first signal (or a caller) asks for a stop; the second one stops at once. A request its
        parent forwarded only asks (the parent may have got the very signal this process got)."""
        if not forwarded:
            if self._signalled:
                raise Stopped(signum)
            self._signalled = True
        if self.signum is not None:
            return
        self.signum = signum
        if announce:
            self._announce(signum)

    def _announce(self, signum: int) -> None:
        log.warning("%s: %s (send it again to stop at once)", signal.Signals(signum).name, self.what,
                    extra=event("rl.run.stopping", signal=signal.Signals(signum).name))

    def request_from_a_handler(self, signum: int, forwarded: bool = False) -> None:
        """`request`, from a signal handler: the stop is recorded at once, announced by a thread."""
        first = self.signum is None
        self.request(signum, forwarded=forwarded, announce=False)
        if first:
            from_a_handler(self._announce, signum)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.request_from_a_handler(signum)

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        _stops.append(self)
        if _forwarded:
            self.request(_forwarded[0], forwarded=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        if self in _stops:
            _stops.remove(self)
