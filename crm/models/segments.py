"""Segments and their materialised memberships."""

from django.db import models

from crm.models.customers import Customer
from crm.models.workspaces import Workspace


class Segment(models.Model):
    class Kind(models.TextChoices):
        RULES = "rules"
        STATIC = "static"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.RULES)
    rules = models.JSONField(default=dict, blank=True, help_text="rule tree, see crm.segments")
    member_count = models.PositiveIntegerField(default=0)
    # Who enters and leaves it is copied to crm.MembershipOutbox (automation that reacts to
    # membership turns it on: a live journey that starts or ends on it).
    member_outbox = models.BooleanField(default=False)
    refreshed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="segment_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class SegmentMembership(models.Model):
    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="memberships")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["segment", "customer"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} in {self.segment_id}"


class MembershipOutbox(models.Model):
    """Customers who entered or left a segment that asked for it (Segment.member_outbox),
    waiting for the automation that reacts to it. Database triggers on the memberships table
    write them in the transaction that changed the membership, whatever changed it (a rule's
    refresh after new events or scores, a static segment's API, a journey's step); readers claim
    rows and delete them in the transaction that acts on them (crm.migrations 0010)."""

    class Change(models.TextChoices):
        ENTER = "enter"
        LEAVE = "leave"

    id = models.BigAutoField(primary_key=True)
    segment_id = models.BigIntegerField()
    customer_id = models.BigIntegerField()
    change = models.CharField(max_length=5, choices=Change.choices)
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.customer_id} {self.change} {self.segment_id}"
