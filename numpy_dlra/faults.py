"""Fault injection for the reliability tests: the process kills itself at a named point.

With ``NUMPY_DLRA_KILL_AT="POINT:N"`` in the environment, the N-th call of ``reached(POINT)`` sends
SIGKILL to this process: no handler runs, no file is closed, as when a machine loses power or the
kernel's OOM killer strikes. The points: "step" (after an optimizer step), "merge" (after a step
that fused vectors), "checkpoint-write" (a new checkpoint is on disk, not yet renamed into place),
"checkpoint-swap" (the old checkpoint has become checkpoint.prev.npz, the new one is not in place),
"table-write" (the reproduction runner is about to write a table). Without the variable (always,
outside tests/test_reliability.py) ``reached`` is one comparison.
"""
import os
import signal

_SPEC = os.environ.get("NUMPY_DLRA_KILL_AT", "")
_counts = {}


def reached(point):
    if not _SPEC:
        return
    name, _, n = _SPEC.partition(":")
    if name == point:
        _counts[point] = _counts.get(point, 0) + 1
        if _counts[point] == int(n or 1):
            os.kill(os.getpid(), signal.SIGKILL)
