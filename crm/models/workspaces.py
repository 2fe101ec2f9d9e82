"""Workspaces: every row of the CRM belongs to one, and no request ever sees another's."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models


class Workspace(models.Model):
    """One client, brand or company; staff see the workspaces they are members of."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="workspaces", blank=True
    )
    # Its events are copied to crm.EventOutbox as they are recorded (automation that reacts to
    # events turns it on: a live journey).
    event_outbox = models.BooleanField(default=False)
    rising_boost = models.FloatField(
        default=0.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Lift products the active forecast has rising in recommendation lists: each "
        "one's score is multiplied by 1 + this weight x its forecast change (a lift of 50% at "
        "most). 0 turns it off; 0.2 to 0.5 reorders near neighbours.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
