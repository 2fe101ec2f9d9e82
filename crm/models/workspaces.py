"""Workspaces: every row of the CRM belongs to one, and no request ever sees another's."""

from django.conf import settings
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
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name
