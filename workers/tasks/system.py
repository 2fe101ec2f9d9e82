"""Platform self-check: proves a worker on a queue can reach the database and report progress."""

import platform
import time

from django.db import connection

from workers.models import TaskRun
from workers.tracking import Progress, tracked_task


@tracked_task()
def selfcheck(run: TaskRun, progress: Progress) -> dict:
    """Walks `steps` steps of `step_seconds` each, reporting progress, then describes the worker.

    Params: steps (int, default 5), step_seconds (float, default 0.2), device (bool: also
    report the torch device, which imports torch on the worker).
    """
    steps = max(1, min(int(run.params.get("steps", 5)), 1000))
    step_seconds = max(0.0, min(float(run.params.get("step_seconds", 0.2)), 60.0))
    for i in range(steps):
        progress(100 * i / steps, f"step {i + 1} of {steps}")
        time.sleep(step_seconds)
    report = {
        "python": platform.python_version(),
        "host": platform.node(),
        "database": connection.vendor,
        "steps": steps,
    }
    if run.params.get("device"):
        from marketing_ai.ml.device import describe

        report["device"] = describe()
    return report
