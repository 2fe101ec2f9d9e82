"""API keys, the stored answers of idempotent writes, and the audit log."""

import hashlib

from django.db import models

from crm.models.workspaces import Workspace


class ApiKey(models.Model):
    """A key for one integration, scoped to one workspace. Only its hash is stored."""

    SCOPES = (
        "crm:read",
        "crm:write",
        "campaigns:read",
        "campaigns:write",
        "privacy",
        "tasks:read",
        "chat",
    )

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @staticmethod
    def hash(secret: str) -> str:
        # Keys are 256-bit random strings, so a fast hash is enough: nothing to brute-force.
        return hashlib.sha256(secret.encode()).hexdigest()


class IdempotencyRecord(models.Model):
    """The stored answer to a write sent with an Idempotency-Key header, replayed on retries."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    endpoint = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="idempotency_unique"),
        ]

    def __str__(self) -> str:
        return self.key


class AuditEntry(models.Model):
    """Who did what to personal data (exports, erasures). Holds ids, never the personal data."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=50)
    actor = models.CharField(max_length=200)
    customer_id = models.BigIntegerField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "audit entries"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.action} by {self.actor}"
