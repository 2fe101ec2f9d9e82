"""Queue names and routing. Import-light on purpose: settings and every process read it.

- default: short bookkeeping tasks
- sends:   campaign message batches (cheap nodes, many workers)
- ml:      training and scoring on CPU
- gpu:     sequential recommenders and language models (`celery worker -Q gpu` on GPU nodes)
"""

DEFAULT = "default"
SENDS = "sends"
ML = "ml"
GPU = "gpu"

ALL = (DEFAULT, SENDS, ML, GPU)

# Routed by the task's module, so adding a task to workers/tasks/<module>.py is enough.
ROUTES = {
    "workers.tasks.sends.*": {"queue": SENDS},
    "workers.tasks.ml.*": {"queue": ML},
    "workers.tasks.gpu.*": {"queue": GPU},
    "workers.tasks.language.*": {"queue": GPU},
    "*": {"queue": DEFAULT},
}


def queue_for(task_name: str) -> str:
    """The queue ROUTES sends `task_name` to (first matching pattern wins, as in Celery)."""
    from fnmatch import fnmatchcase

    for pattern, route in ROUTES.items():
        if fnmatchcase(task_name, pattern):
            return route["queue"]
    return DEFAULT
