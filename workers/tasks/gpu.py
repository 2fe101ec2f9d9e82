"""Training on the `gpu` queue: sequential recommenders (CUDA in bf16 where a node has one)."""

from workers.models import TaskRun
from workers.tasks.ml import run_recommender_training
from workers.tracking import Progress, tracked_task


@tracked_task()
def train_sequential_recommender(run: TaskRun, progress: Progress) -> dict:
    """Params: model (sasrec), params (dict: epochs, max_len, hidden...), holdout_days (int),
    repeat_purchases (bool)."""
    return run_recommender_training(run, progress)
