"""Queue names, and the queue each task declared. Import-light on purpose: settings and every
process read it.

- default: short bookkeeping tasks
- sends:   campaign message batches (cheap nodes, many workers)
- ml:      training and scoring on CPU
- gpu:     sequential recommenders and language models (`celery worker -Q gpu` on GPU nodes)
- chat:    the support chat's reply turns, a language-model queue of their own so that a customer
           never waits behind a copy run (minutes) on `gpu`; its worker runs beside the gpu one

Each task names its queue where it is written, beside the service it calls
(`@tracked_task(queue=queues.ML)`, `@queued_task(queue=queues.SENDS)`, workers.runs), and
`route` (CELERY_TASK_ROUTES) sends it there. Not Celery's `queue` task attribute: Celery 5.7
deprecates it, and from 6.0 it does nothing.
"""

DEFAULT = "default"
SENDS = "sends"
ML = "ml"
GPU = "gpu"
CHAT = "chat"

ALL = (DEFAULT, SENDS, ML, GPU, CHAT)

_declared: dict[str, str] = {}  # task name -> queue, filled as the task modules are imported


def declare(task_name: str, queue: str) -> None:
    """Records that `task_name` runs on `queue` (one of ALL)."""
    if queue not in ALL:
        raise ValueError(f"unknown queue {queue!r}; expected one of {', '.join(ALL)}")
    _declared[task_name] = queue


def declared() -> dict[str, str]:
    """Every task name with the queue it declared (in this process: the modules imported)."""
    return dict(_declared)


def queue_for(task_name: str) -> str:
    """The queue `task_name` declared, or the default queue for a task that declared none."""
    return _declared.get(task_name, DEFAULT)


def route(name: str, args, kwargs, options, task=None, **_) -> dict | None:
    """Celery router: the declared queue. A queue given to apply_async itself still wins."""
    queue = _declared.get(name)
    return {"queue": queue} if queue else None
