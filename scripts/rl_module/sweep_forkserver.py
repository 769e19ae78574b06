"""Imported by rl-sweep's forkserver alone, first of what it imports (sweep.WORKER_IMPORTS), never by a
command.

The stop signals: rl-sweep starts the forkserver with them blocked in the thread that starts it
(sweep.forkserver), and a process starts with its creator's mask, so a Ctrl-C to the whole group while
the forkserver starts waits, pending, until here. Here they are ignored (which drops one pending: a Ctrl-C
is for rl-sweep and the workers, which set their own handlers, not for the forkserver, which would end
under its workers with the traceback of its imports), then unblocked, so the check and the workers it
forks start with none blocked, as any process does. rl-sweep itself never ignores them: that would be for
the whole process, and a Ctrl-C taken by one of its other threads in that moment would be lost.

The exit: the forkserver leaves at once when it is done, without the interpreter's teardown of every
module, which with torch loaded took it 2 s after its last worker (the workers and the check it forks
leave by os._exit, as Python's forkserver makes them, and run no exit handler)."""

from __future__ import annotations

import atexit
import os
import signal

_started_blocked = signal.pthread_sigmask(signal.SIG_BLOCK, set())
for _signum in _started_blocked:
    signal.signal(_signum, signal.SIG_IGN)
signal.pthread_sigmask(signal.SIG_SETMASK, set())
atexit.register(os._exit, 0)
