"""The run ledger: every long job is a TaskRun; every trained model is a ModelVersion."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

# Families under one of these prefixes share one active place per workspace: a workspace's
# customers get their lists from one recommender, whichever model it is (recommend.ease,
# recommend.dlae...). Any other family is a place of its own (predict.churn, predict.clv).
SHARED_SLOTS = ("recommend.",)


def slot_of(family: str) -> str:
    """The place `family` competes for: its shared prefix, or the family itself."""
    return next((prefix for prefix in SHARED_SLOTS if family.startswith(prefix)), family)


def in_slot(family: str) -> Q:
    """The versions that compete with `family`'s for being active (in one workspace); `family`
    may be a shared prefix itself ("recommend.": every recommender)."""
    slot = slot_of(family)
    return Q(family__startswith=slot) if slot in SHARED_SLOTS else Q(family=family)


class TaskRun(models.Model):
    """One execution of a long job (training, scoring, a send, copy generation).

    The Celery task receives only this row's id; it reports progress here as it goes, so the
    admin and the API can show it without talking to Celery.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=100, db_index=True, help_text="The Celery task name.")
    # The workspace whose data the run works on (none for platform-wide runs such as a
    # self-check); API keys see only their workspace's runs.
    workspace = models.ForeignKey(
        "crm.Workspace", null=True, blank=True, on_delete=models.CASCADE, related_name="task_runs"
    )
    params = models.JSONField(default=dict, blank=True)
    queue = models.CharField(max_length=50, blank=True)
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    progress = models.PositiveSmallIntegerField(default=0, validators=[MaxValueValidator(100)])
    message = models.CharField(max_length=500, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # When the current attempt claimed it (started_at is the first attempt's).
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Refreshed by every progress report: a redelivered task takes over a run only when the
    # previous attempt has stopped reporting (its worker died).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When the broker last took a message for this run; None while no message could be sent
    # (Redis down). `sends` counts the messages it took. The run sweeper (workers.sweeper) reads
    # both to send a lost message again, and gives up after TASK_RUN_MAX_ATTEMPTS.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    sends = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="taskrun_progress_lte_100"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.status} {self.progress}%"

    @property
    def duration_seconds(self) -> float | None:
        if not self.started_at:
            return None
        end = self.finished_at
        if end is None:
            end = timezone.now()
        return (end - self.started_at).total_seconds()


class ModelVersion(models.Model):
    """A trained model artifact with its evaluation metrics.

    At most one version per slot (slot_of: the family, or every recommender) and workspace is
    active (the one that scores customers); shadow versions wait for comparison; retired ones are
    kept for rollback and audit.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        SHADOW = "shadow"
        RETIRED = "retired"

    # The workspace whose data trained it (models learn one client's customers, never a mix).
    workspace = models.ForeignKey(
        "crm.Workspace", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    family = models.CharField(max_length=50, help_text="e.g. recommend.ease, predict.churn")
    version = models.PositiveIntegerField()
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.SHADOW, db_index=True
    )
    metrics = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    artifact_path = models.CharField(max_length=500, blank=True)
    task_run = models.ForeignKey(
        TaskRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="model_versions"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    promoted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["family", "-version"]
        # Coalesce: platform-wide versions (no workspace) must collide too, and NULLs never do.
        constraints = [
            models.UniqueConstraint(
                Coalesce("workspace", Value(0)), "family", "version", name="modelversion_unique"
            ),
            models.UniqueConstraint(
                Coalesce("workspace", Value(0)),
                Case(
                    *[
                        When(family__startswith=prefix, then=Value(prefix))
                        for prefix in SHARED_SLOTS
                    ],
                    default=F("family"),
                    output_field=models.CharField(),
                ),
                condition=Q(status="active"),
                name="modelversion_one_active_per_slot",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.family} v{self.version} ({self.status})"
