"""Imported by rl-sweep's forkserver alone (sweep.WORKER_IMPORTS), never by a command: the forkserver
leaves at once when it is done, without the interpreter's teardown of every module, which with torch
loaded took it 2 s after its last worker (the workers and the check it forks leave by os._exit, as
Python's forkserver makes them, and run no exit handler). It also unblocks the signals rl-sweep blocked
while starting it (sweep.forkserver): they stay ignored here, and the check and the workers it forks start
with none blocked, as any process does."""

from __future__ import annotations

import atexit
import os
import signal

atexit.register(os._exit, 0)
signal.pthread_sigmask(signal.SIG_SETMASK, set())
