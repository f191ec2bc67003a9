"""What every child process we start shares: its own process group, and death with its parent."""

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1

try:
    # Loaded before any fork: the child only calls an already resolved function.
    _prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
except (OSError, AttributeError):
    _prctl = None


def die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the process that started it dies (Linux only).

    Without it a `kill -9` of `make run` or of pytest would leave Redis and the
    workers running with nobody to stop them.
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def killpg_quietly(pgid: int, sig: int) -> None:
    """Signal a whole process group; a group that is already gone is not an error."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
