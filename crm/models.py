"""The CRM: every row belongs to a workspace, and no request ever sees another workspace's rows."""

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q


class Workspace(models.Model):
    """One client, brand or company; staff see the workspaces they are members of."""

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="workspaces", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Channel(models.TextChoices):
    EMAIL = "email"
    SMS = "sms"
    PUSH = "push"


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


class Product(models.Model):
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="products", db_index=False
    )
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=300)
    description = models.TextField(blank=True)
    category = models.CharField(max_length=200, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="GBP")
    active = models.BooleanField(default=True, help_text="inactive products are never recommended")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "sku"], name="product_unique_sku"),
        ]
        indexes = [models.Index(fields=["workspace", "id"], name="product_ws_id")]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Order(models.Model):
    class Kind(models.TextChoices):
        ORDER = "order"
        RETURN = "return"  # a credit note: negative quantities and amounts

    class Status(models.TextChoices):
        PLACED = "placed"
        CANCELLED = "cancelled"

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="orders", db_index=False
    )
    # Null for guest checkouts and for customers who were erased: the sale still counts in
    # product demand, but it belongs to nobody.
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders"
    )
    external_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.ORDER)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLACED)
    placed_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    currency = models.CharField(max_length=3, default="GBP")
    total = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "external_id"], name="order_unique"),
        ]
        indexes = [
            models.Index(fields=["workspace", "id"], name="order_ws_id"),
            models.Index(fields=["customer", "placed_at"]),
            models.Index(fields=["workspace", "placed_at"]),
        ]

    def __str__(self) -> str:
        return f"order {self.external_id}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.IntegerField(help_text="negative on returns")
    unit_price = models.DecimalField(max_digits=12, decimal_places=2)
    amount = models.DecimalField(max_digits=14, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"


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


class CustomerScore(models.Model):
    """The latest model score of one kind for a customer, with the reasons behind it."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="scores")
    kind = models.CharField(max_length=50, help_text="e.g. churn_risk, clv_12m")
    value = models.FloatField()
    model_version = models.ForeignKey(
        "workers.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reasons = models.JSONField(default=list, blank=True, help_text="top feature contributions")
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "kind"], name="score_unique_kind"),
        ]
        indexes = [
            models.Index(
                fields=["workspace", "kind", "value"], include=["customer"], name="score_kind_value"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind}={self.value:.3g}"


class Recommendation(models.Model):
    """A customer's precomputed top products from the active recommender version."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, related_name="recommendation"
    )
    products = models.JSONField(default=list, help_text="[[product id, score], ...], best first")
    model_version = models.ForeignKey(
        "workers.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    computed_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"recommendations for {self.customer_id}"


class ApiKey(models.Model):
    """A key for one integration, scoped to one workspace. Only its hash is stored."""

    SCOPES = ("crm:read", "crm:write", "campaigns:read", "campaigns:write", "privacy", "tasks:read",
              "chat")  # fmt: skip

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


class KnowledgeArticle(models.Model):
    """A help article (markdown) the chat assistant answers from and cites."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="articles")
    slug = models.SlugField(max_length=100)
    title = models.CharField(max_length=200)
    body = models.TextField(help_text="markdown; ## headings split it into passages")
    published = models.BooleanField(default=True, help_text="only published articles are used")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "slug"], name="article_unique_slug"),
        ]

    def __str__(self) -> str:
        return self.title


class Conversation(models.Model):
    """A support chat. `customer` is set only when the person was identified (signed link,
    API caller naming them); anonymous chats never see order data."""

    class Status(models.TextChoices):
        OPEN = "open"
        WAITING = "waiting", "waiting for staff"
        CLOSED = "closed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.CASCADE, related_name="conversations"
    )
    token = models.CharField(max_length=64, unique=True, help_text="the visitor's handle")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["workspace", "status", "-updated_at"])]

    def __str__(self) -> str:
        return f"conversation {self.pk}"


class ChatMessage(models.Model):
    class Role(models.TextChoices):
        CUSTOMER = "customer"
        ASSISTANT = "assistant"
        STAFF = "staff"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    text = models.TextField()
    intent = models.CharField(max_length=20, blank=True)
    citations = models.JSONField(default=list, blank=True)  # [{id, slug, title}]
    refused = models.CharField(max_length=20, blank=True)
    source = models.CharField(max_length=10, blank=True)
    # The assistant's answer to this customer message is pending / done (for polling).
    answered = models.BooleanField(default=False)
    # When its reply task was last queued, and how often: the chat sweep queues an unanswered
    # message again (a worker died, the broker lost the task) and hands over to staff after
    # CHAT_REPLY_MAX_ATTEMPTS.
    reply_queued_at = models.DateTimeField(null=True, blank=True)
    reply_attempts = models.PositiveSmallIntegerField(default=0)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "id"]
        indexes = [
            # The sweep's question ("which customer messages still wait for a reply?") reads
            # only the few unanswered rows.
            models.Index(
                fields=["reply_queued_at"], name="crm_chat_unanswered",
                condition=models.Q(answered=False, role="customer"),
            ),
        ]  # fmt: skip

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:40]}"
