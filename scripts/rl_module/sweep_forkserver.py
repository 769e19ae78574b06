"""Imported by rl-sweep's forkserver alone (sweep.WORKER_IMPORTS), never by a command: the forkserver
leaves at once when it is done, without the interpreter's teardown of every module, which with torch
loaded took it 2 s after its last worker (the workers and the check it forks leave by os._exit, as
Python's forkserver makes them, and run no exit handler)."""

from __future__ import annotations

import atexit
import os

atexit.register(os._exit, 0)
