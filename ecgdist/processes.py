"""Whether a process this user started is still running, from its pid alone."""

import os


def alive(pid: int) -> bool:
    """Signal 0 checks without signalling. A PermissionError means the pid now belongs to
    another user's process, so ours has exited and the number was reused."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
