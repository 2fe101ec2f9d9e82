"""What customers did: an append-only log of events, idempotent by key."""

from django.db import models
from django.db.models import Q

from crm.models.customers import Customer
from crm.models.workspaces import Workspace


class Event(models.Model):
    """Something a customer did. Append-only: events are never edited, only erased."""

    id = models.BigAutoField(primary_key=True)
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="events", db_index=False
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    type = models.CharField(max_length=50, help_text="view, add_to_cart, purchase, open, click...")
    properties = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="event_unique_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["workspace", "id"], name="event_ws_id"),
            # type included: per-customer segment probes filter by type from the index alone.
            models.Index(
                fields=["customer", "occurred_at"], include=["type"], name="event_timeline"
            ),
            # customer_id included: segment rules count events per customer from the index alone.
            models.Index(
                fields=["workspace", "type", "occurred_at"],
                include=["customer"],
                name="event_type_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} at {self.occurred_at:%Y-%m-%d %H:%M}"


class EventOutbox(models.Model):
    """Events recorded in a workspace that asked for them (Workspace.event_outbox), waiting for
    the automation that reacts to events. A database trigger on the events table writes a row
    for each event actually inserted, in that insert's own transaction: every path that records
    events (the API, bulk writes, orders, imports, opens and clicks) feeds it, an event the
    database kept always has its row, and one it refused as a duplicate has none. Readers claim
    rows and delete them in the transaction that acts on them (crm.migrations 0009)."""

    id = models.BigAutoField(primary_key=True)
    event_id = models.BigIntegerField()
    workspace_id = models.BigIntegerField()
    customer_id = models.BigIntegerField()
    type = models.CharField(max_length=50)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"event {self.event_id} ({self.type})"
