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
