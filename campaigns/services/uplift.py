"""Uplift on the platform (issue 17): who a campaign's message changes, per workspace and goal.

The names every part agrees on, the active model of a goal, and starting a training run. Light
on purpose (no numpy, no LightGBM): the launch check and the admin import it in the web process.
The data, training and scoring are in uplift_data and uplift_training, run on the `ml` queue.

- model family `uplift.<goal>` per workspace (e.g. uplift.purchase), one active version;
- scores `uplift.<goal>` (predicted uplift: P(goal | sent) - P(goal | not sent), with reasons),
  `uplift.<goal>.if_sent` and `uplift.<goal>.if_not` (the two probabilities), which the
  ready-made segments (persuadables, sure things, lost causes, do-not-disturbs) read.
"""

from typing import Any

from crm.models import Workspace
from workers.models import ModelVersion, TaskRun
from workers.services import task_run_start

TRAIN_TASK = "campaigns.tasks.train_uplift"  # ml queue
SCORE_TASK = "campaigns.tasks.score_uplift"  # ml queue
FAMILY_PREFIX = "uplift."
# CustomerScore.kind holds 50 characters: "uplift." + goal + ".if_sent" must fit.
MAX_GOAL = 50 - len("uplift.") - len(".if_sent")


class UpliftError(ValueError):
    """An uplift model that cannot be trained or used as asked; `field` names the input."""

    def __init__(self, message: str, field: str = "goal") -> None:
        self.field = field
        super().__init__(message)


def family(goal: str) -> str:
    return f"{FAMILY_PREFIX}{goal}"


def score_kind(goal: str) -> str:
    """The CustomerScore kind of the predicted uplift for `goal`."""
    return f"{FAMILY_PREFIX}{goal}"


def outcome_kinds(goal: str) -> tuple[str, str]:
    """The kinds of P(goal | sent) and P(goal | not sent)."""
    return f"{FAMILY_PREFIX}{goal}.if_sent", f"{FAMILY_PREFIX}{goal}.if_not"


def goal_problem(goal: Any) -> str:
    """Why `goal` cannot name an uplift model, or ""."""
    if not isinstance(goal, str) or not goal.strip():
        return "name the goal event (e.g. purchase)"
    if len(goal) > MAX_GOAL:
        return f"at most {MAX_GOAL} characters for an uplift model's goal"
    if any(ch.isspace() or ord(ch) < 32 for ch in goal):
        return "a goal event has no spaces or control characters"
    return ""


def active_version(workspace_id: int, goal: str) -> ModelVersion | None:
    """The workspace's active uplift model for `goal`, or None."""
    return ModelVersion.objects.filter(
        workspace_id=workspace_id, family=family(goal), status=ModelVersion.Status.ACTIVE
    ).first()


def uplift_training_start(*, workspace: Workspace, goal: str, user: Any = None) -> TaskRun:
    """Queues the run that trains `goal`'s uplift model on the workspace's sent campaigns with
    a holdout (campaigns.tasks.train_uplift, on the ml queue); raises UpliftError for a goal
    that cannot name one."""
    problem = goal_problem(goal)
    if problem:
        raise UpliftError(problem)
    return task_run_start(task=TRAIN_TASK, params={"goal": goal}, workspace=workspace, user=user)


def uplift_rescoring_due() -> int:
    """Starts a scoring run for every active uplift version (nightly: features move with time
    and new orders, and launches target by the stored scores); returns how many started."""
    active = ModelVersion.objects.filter(
        family__startswith=FAMILY_PREFIX, status=ModelVersion.Status.ACTIVE
    ).select_related("workspace")
    started = 0
    for version in active:
        task_run_start(
            task=SCORE_TASK, params={"model_version": version.pk}, workspace=version.workspace
        )
        started += 1
    return started
