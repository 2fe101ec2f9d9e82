"""Customers, the identities that name them in other systems, and their consent per channel."""

from django.contrib.postgres.indexes import OpClass
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper

from crm.models.workspaces import Workspace


class Channel(models.TextChoices):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


class PrefixIndex(models.Index):
    """(workspace, UPPER(column)) for a case-blind search by a name's beginning: with
    text_pattern_ops on PostgreSQL, whose LIKE 'ANN%' uses an index only through a pattern
    operator class unless the database's collation is C; plain elsewhere (SQLite knows no
    operator classes)."""

    def __init__(self, column: str, *, name: str) -> None:
        super().__init__(F("workspace"), OpClass(Upper(column), name="text_pattern_ops"), name=name)
        self.column = column

    def deconstruct(self):
        path, _, kwargs = super().deconstruct()
        return path, (self.column,), {"name": self.name}

    def create_sql(self, model, schema_editor, using="", **kwargs):
        if schema_editor.connection.vendor != "postgresql":
            plain = models.Index(F("workspace"), Upper(self.column), name=self.name)
            return plain.create_sql(model, schema_editor, using=using, **kwargs)
        return super().create_sql(model, schema_editor, using=using, **kwargs)


class Customer(models.Model):
    # db_index=False here and below: a composite index that starts with workspace covers it,
    # and every index is paid for on each bulk insert.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="customers", db_index=False
    )
    # Null, not "", when absent: uniqueness per workspace applies only to real addresses.
    email = models.EmailField(null=True, blank=True)  # noqa: DJ001  (stored lower-case)
    phone = models.CharField(max_length=32, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    locale = models.CharField(max_length=16, blank=True, help_text="e.g. en-GB")
    time_zone = models.CharField(max_length=64, blank=True, help_text="IANA, e.g. Europe/London")
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set by privacy erasure: the row stays as an empty tombstone; nothing personal remains and
    # the customer never enters training data again.
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "email"],
                condition=Q(email__isnull=False),
                name="customer_unique_email_per_workspace",
            ),
        ]
        indexes = [
            # (workspace, id) serves every list endpoint: newest first within one workspace.
            models.Index(fields=["workspace", "id"], name="customer_ws_id"),
            models.Index(fields=["workspace", "country"]),
            models.Index(fields=["workspace", "created_at"]),
            # The admin's search (crm.selectors.search): an address by its beginning (LIKE
            # 'jo%' needs the pattern operator class unless the collation is C), names by
            # theirs whatever the case, a phone number exactly.
            models.Index(
                fields=["workspace", "email"],
                opclasses=["int8_ops", "varchar_pattern_ops"],
                name="customer_email_prefix",
            ),
            PrefixIndex("first_name", name="customer_first_name_prefix"),
            PrefixIndex("last_name", name="customer_last_name_prefix"),
            models.Index(fields=["workspace", "phone"], name="customer_phone"),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.email or f"customer {self.pk}"


class ExternalIdentity(models.Model):
    """The id a source system (a shop, another CRM) knows this customer by."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    source = models.CharField(max_length=50)
    external_id = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "external identities"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "source", "external_id"], name="identity_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"


class Consent(models.Model):
    class Status(models.TextChoices):
        SUBSCRIBED = "subscribed"
        UNSUBSCRIBED = "unsubscribed"
        BOUNCED = "bounced"
        COMPLAINED = "complained"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    status = models.CharField(max_length=12, choices=Status.choices)
    source = models.CharField(max_length=100, blank=True, help_text="where it was given/withdrawn")
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "channel"], name="consent_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.channel}: {self.status}"
