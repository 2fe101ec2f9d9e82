"""Journeys, their published versions, enrolments (one customer's way through one version),
the durable timers that move waiting enrolments on, and each enrolment's history."""

from django.db import models
from django.db.models import Q

from crm.models import Customer, Workspace


class Journey(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"  # never published: takes no one in
        LIVE = "live"
        PAUSED = "paused"  # takes no one in; enrolments inside wait where they are
        STOPPED = "stopped"  # every enrolment exited; final

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="journeys")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    # What staff edit; publishing checks it and freezes a copy as the next version.
    definition = models.JSONField(default=dict, blank=True)
    version = models.ForeignKey(
        "JourneyVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="journey_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class JourneyVersion(models.Model):
    """A published definition; never changed. Enrolments finish the version they entered."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    published_at = models.DateTimeField()

    class Meta:
        ordering = ["journey", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="journey_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.journey} v{self.number}"


class Enrolment(models.Model):
    class State(models.TextChoices):
        ACTIVE = "active"  # at a delay, its timer set
        WAITING = "waiting"  # for an event, its timeout's timer set
        FINISHED = "finished"  # reached an exit step
        EXITED = "exited"  # an exit event, staff, or the journey stopped

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="enrolments")
    version = models.ForeignKey(JourneyVersion, on_delete=models.CASCADE, related_name="enrolments")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="enrolments")
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    step = models.CharField(max_length=40)
    holdout = models.BooleanField(default=False, help_text="in the journey's control group")
    # What started it (the trigger event's type, id and properties): the templates' data.
    context = models.JSONField(default=dict, blank=True)
    key = models.CharField(max_length=100, blank=True, help_text="an API enrolment's key")
    entered_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            # One enrolment of a customer inside a journey at a time, whatever the re-entry
            # policy: two triggers racing cannot both let them in.
            models.UniqueConstraint(
                fields=["journey", "customer"],
                condition=Q(finished_at__isnull=True),
                name="enrolment_one_inside",
            ),
            models.UniqueConstraint(
                fields=["journey", "key"], condition=~Q(key=""), name="enrolment_unique_key"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "journey"], name="enrolment_customer"),
            models.Index(fields=["version", "step", "state"], name="enrolment_at_step"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id}/{self.customer_id} {self.state} at {self.step}"


class JourneyTimer(models.Model):
    """When a waiting enrolment moves on: the delay is over, or the wait for an event timed out.
    A row in the database, not a Celery countdown: it survives every restart, and workers claim
    due rows in batches (FOR UPDATE SKIP LOCKED on PostgreSQL)."""

    id = models.BigAutoField(primary_key=True)
    enrolment = models.OneToOneField(Enrolment, on_delete=models.CASCADE, related_name="timer")
    step = models.CharField(max_length=40, help_text="the step it waits at")
    due_at = models.DateTimeField()
    claim = models.UUIDField(null=True, blank=True)
    # The wait's event came while the journey was paused: the "yes" branch, once it resumes.
    met = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["due_at"], name="journey_timer_due")]

    def __str__(self) -> str:
        return f"{self.enrolment_id} at {self.step} until {self.due_at}"


class EnrolmentStep(models.Model):
    """An enrolment's history: each step it reached, when, and what came of it there."""

    id = models.BigAutoField(primary_key=True)
    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="history")
    version = models.ForeignKey(JourneyVersion, on_delete=models.CASCADE, related_name="+")
    step = models.CharField(max_length=40)
    at = models.DateTimeField()
    outcome = models.CharField(max_length=40, blank=True, help_text="yes / no / a branch / ...")

    class Meta:
        indexes = [models.Index(fields=["version", "step"], name="enrolment_step_version")]

    def __str__(self) -> str:
        return f"{self.enrolment_id} {self.step} {self.outcome}"


class JourneyDateRun(models.Model):
    """A date-triggered journey's day in one time zone: taken in once. The row is written in the
    transaction that enrols that day's customers, so a second worker (or a second tick) finds it
    and takes no one in twice."""

    journey = models.ForeignKey(Journey, on_delete=models.CASCADE, related_name="date_runs")
    zone = models.CharField(max_length=64, help_text="IANA time zone")
    day = models.DateField(help_text="the local day")
    entered = models.PositiveIntegerField(default=0)
    ran_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "zone", "day"], name="journey_date_run_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id} {self.zone} {self.day}"
