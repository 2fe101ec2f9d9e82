"""Campaigns, their content variants, the send ledger, suppressions and outbound webhooks.

The ledger (`Message`) is what makes a send happen once: one row per campaign x customer,
created at launch, moved through its states only by conditional updates (see
campaigns.services.delivery), so a crashed or duplicated worker can never send a row twice.
"""

import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, validate_email
from django.db import models
from django.db.models import JSONField, Q, Value

from crm.models import Customer, Segment, Workspace

_NAMED_ADDRESS = re.compile(r"(?P<name>[^<>]*)<(?P<address>[^<>]+)>")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def validate_sender(value: str) -> None:
    """A From address as DEFAULT_FROM_EMAIL takes it: "news@shop.example" or
    "Shop <news@shop.example>". Anything else was stored and then failed every message; a line
    break would add headers ("a@b.c\r\nBcc: x@y.z")."""
    if _CONTROL.search(value):
        raise ValidationError("may not contain line breaks or control characters")
    named = _NAMED_ADDRESS.fullmatch(value.strip())
    validate_email(named["address"].strip() if named else value.strip())


# Hours between a bandit's waves: the last wave's opens and clicks must have time to come in
# before the next is decided (under an hour few have, and a wave decided on nothing is a fixed
# split), and ten waves a week apart already take over two months. The field's own validators
# (0 to 720) stay as migrated; this is the rule the model, the admin and the API apply.
WAVE_HOURS = (1, 168)


def validate_wave_hours(value) -> None:
    """Refuses hours between waves outside WAVE_HOURS (NaN and infinities too)."""
    low, high = WAVE_HOURS
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValidationError(
            f"between {low} and {high} hours (a week): the last wave's outcomes need time to "
            "come in, and the waves should not take months"
        )


class ChannelKind(models.TextChoices):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        SCHEDULED = "scheduled"  # launched: ledger written, sends wait for their time
        SENDING = "sending"
        PAUSED = "paused"
        SENT = "sent"
        CANCELLED = "cancelled"

    class Timing(models.TextChoices):
        NOW = "now", "as soon as launched"
        AT = "at", "at one moment for everyone"
        LOCAL = "local", "at a local time in each recipient's time zone"
        BEST = "best", "at each recipient's best hour within a window (issue 17)"

    class ConsentRule(models.TextChoices):
        OPT_IN = "opt_in", "only customers who opted in"
        NOT_OPTED_OUT = "not_opted_out", "everyone who has not opted out"

    class AbMetric(models.TextChoices):
        OPEN = "open"
        CLICK = "click"
        CONVERSION = "conversion"

    class Targeting(models.TextChoices):
        EVERYONE = "everyone", "everyone in the audience"
        UPLIFT_TOP = "uplift_top", "the top k% by predicted uplift"
        UPLIFT_POSITIVE = "uplift_positive", "only those with predicted uplift > 0"

    class Bandit(models.TextChoices):
        OFF = "", "off (fixed split, or A/B then winner)"
        THOMPSON = "thompson", "Thompson sampling over variants, in waves"
        CONTEXTUAL = "contextual", "a contextual policy on customer features, in waves"

    class Kind(models.TextChoices):
        BROADCAST = "broadcast", "a broadcast: launched once to its audience"
        JOURNEY = "journey", "a journey's message: sent by its send steps, one enrolment at a time"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.BROADCAST)
    channel = models.CharField(max_length=10, choices=ChannelKind.choices, default="email")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    include_segments = models.ManyToManyField(Segment, blank=True, related_name="+")
    exclude_segments = models.ManyToManyField(Segment, blank=True, related_name="+")
    consent_rule = models.CharField(
        max_length=15, choices=ConsentRule.choices, default=ConsentRule.OPT_IN
    )
    goal_event = models.CharField(max_length=50, default="purchase")
    attribution_days = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(90)]
    )
    holdout_percent = models.FloatField(
        default=0, validators=[MinValueValidator(0), MaxValueValidator(50)]
    )
    timing = models.CharField(max_length=5, choices=Timing.choices, default=Timing.NOW)
    send_at = models.DateTimeField(null=True, blank=True, help_text="for 'at one moment'")
    local_date = models.DateField(null=True, blank=True, help_text="for 'local time'")
    local_time = models.TimeField(null=True, blank=True, help_text="for 'local time'")
    quiet_start = models.TimeField(null=True, blank=True, help_text="local; no sends from here")
    quiet_end = models.TimeField(null=True, blank=True, help_text="local; ... until here")
    frequency_cap = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="at most this many messages per customer ..."
    )
    frequency_days = models.PositiveSmallIntegerField(default=7, help_text="... in this many days")
    # A/B mode: send to ab_test_percent of the audience first, then the winner to the rest.
    ab_test_percent = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(2), MaxValueValidator(90)]
    )
    ab_metric = models.CharField(max_length=10, choices=AbMetric.choices, default=AbMetric.CLICK)
    # At most 30 days: an A/B test waits hours, not years (1e308 overflowed the decision's
    # timedelta).
    ab_wait_hours = models.FloatField(
        default=4, validators=[MinValueValidator(0), MaxValueValidator(720)]
    )
    # Decisions (issue 17): who by uplift, which variant by a bandit, when by each one's best hour.
    targeting = models.CharField(
        max_length=16, choices=Targeting.choices, default=Targeting.EVERYONE
    )
    targeting_percent = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="for 'top k%': k",
    )
    targeting_control_percent = models.FloatField(
        default=10,
        validators=[MinValueValidator(0), MaxValueValidator(50)],
        help_text="audience share sent whatever the score, to measure what targeting earned",
    )
    bandit = models.CharField(max_length=12, choices=Bandit.choices, default="", blank=True)
    # 10 by default: in bench/bandit.py's simulated campaigns 4 waves lost 16-44 visits a
    # campaign to A/B-then-winner, 10 won 25 where the variants differ.
    waves = models.PositiveSmallIntegerField(
        default=10, validators=[MinValueValidator(2), MaxValueValidator(20)]
    )
    wave_hours = models.FloatField(
        default=4, validators=[MinValueValidator(0), MaxValueValidator(720)]
    )
    window_hours = models.PositiveSmallIntegerField(
        default=24,
        validators=[MinValueValidator(1), MaxValueValidator(168)],
        help_text="for 'best hour': the window from the send time",
    )
    explore_percent = models.FloatField(
        default=10,
        validators=[MinValueValidator(0), MaxValueValidator(100)],
        help_text="for 'best hour': share sent at a random hour, to measure the gain",
    )
    winner = models.ForeignKey(
        "Variant", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_email = models.CharField(
        max_length=200,
        blank=True,
        validators=[validate_sender],
        help_text="address or Name <address>; default: DEFAULT_FROM_EMAIL",
    )
    seed = models.BigIntegerField(null=True, blank=True, help_text="holdout/variant draw; recorded")
    ab_result = models.JSONField(default=dict, blank=True, help_text="how the winner was chosen")
    launched_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name"], name="campaign_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        try:
            validate_wave_hours(self.wave_hours)
        except ValidationError as exc:
            raise ValidationError({"wave_hours": exc.messages}) from None


class Variant(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        APPROVED = "approved"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="variants")
    name = models.CharField(max_length=50, default="A")
    subject = models.CharField(max_length=300, blank=True)
    preheader = models.CharField(max_length=300, blank=True)
    # Bounded: a template is compiled and kept per process (Gmail clips mail past ~100 KB anyway);
    # a 2.5 MB one took 14 s and 500 MB to compile.
    body_html = models.TextField(
        blank=True,
        max_length=200_000,
        help_text="Django template; {{ customer.first_name }}, {% recommend customer 4 %}",
    )
    body_text = models.TextField(
        blank=True,
        max_length=100_000,
        help_text="plain text (SMS, webhook); for e-mail generated from the HTML if empty",
    )
    weight = models.PositiveSmallIntegerField(default=1, help_text="share of the audience")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Where generated copy came from (model, prompt, seed, guardrail report); empty for staff copy.
    provenance = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["campaign", "name"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="variant_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} / {self.name}"


class Message(models.Model):
    """The send ledger: one row per campaign x customer for a broadcast, one per journey
    enrolment x send step for a journey's message."""

    class State(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"  # claimed by a worker; nothing handed to the provider yet
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped"

    id = models.BigAutoField(primary_key=True)
    token = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="messages")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="messages")
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    holdout = models.BooleanField(default=False)
    ab_test = models.BooleanField(default=False, help_text="in the A/B test share")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    reason = models.CharField(max_length=300, blank=True, help_text="why skipped or failed")
    attempts = models.PositiveSmallIntegerField(default=0)
    send_at = models.DateTimeField(help_text="due time (holdout: when it would have been sent)")
    claim = models.UUIDField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    address = models.CharField(max_length=254, blank=True, help_text="where it went")
    provider_id = models.CharField(max_length=200, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    revenue = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    # Decisions (issue 17): the probability with which the policy that chose this row's variant
    # (and, for best-hour timing, its hour) chose it, and what it knew, for off-policy evaluation.
    propensity = models.FloatField(null=True, blank=True)
    decision = models.JSONField(default=dict, db_default=Value({}, JSONField()), blank=True)
    wave = models.PositiveSmallIntegerField(null=True, blank=True)
    # A journey's message: the enrolment and the send step it is for (campaigns.journeys).
    enrolment_id = models.BigIntegerField(null=True, blank=True)
    step = models.CharField(max_length=40, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "customer"],
                condition=Q(enrolment_id__isnull=True),
                name="message_once_broadcast",
            ),
            models.UniqueConstraint(
                fields=["enrolment_id", "step"],
                condition=Q(enrolment_id__isnull=False),
                name="message_once_per_step",
            ),
        ]
        indexes = [
            # What delivery asks: due queued rows of a campaign, and claims gone stale.
            models.Index(fields=["campaign", "state", "send_at"], name="message_due"),
            # Frequency caps and the customer's timeline.
            models.Index(fields=["customer", "sent_at"], name="message_customer_sent"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.customer_id} {self.state}"


class Suppression(models.Model):
    """An address no campaign may send to, whoever it belongs to (bounces, complaints, lists)."""

    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed"
        BOUNCED = "bounced"
        COMPLAINED = "complained"
        MANUAL = "manual"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=ChannelKind.choices)
    address = models.CharField(max_length=254, help_text="e-mail (lower case) or phone")
    reason = models.CharField(max_length=15, choices=Reason.choices, default=Reason.MANUAL)
    note = models.CharField(max_length=300, blank=True)
    # The bounce or complaint report that led to it (its excerpt is shown in the admin).
    report = models.ForeignKey(
        "campaigns.DeliveryReport",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "channel", "address"], name="suppression_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.address}"


class WebhookEndpoint(models.Model):
    """An integrator's URL that receives signed events (message.sent, customer.unsubscribed...)."""

    EVENTS = (
        "message.sent",
        "message.failed",
        "customer.unsubscribed",
        "message.converted",
        "conversation.waiting",
        "journey.step",  # a journey's webhook step, sent to the endpoint the step names
        "journey.entered",
        "journey.exited",
    )

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="webhooks")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100, help_text="signs each delivery (HMAC-SHA256)")
    events = models.JSONField(default=list, help_text="event types; empty = all")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.url

    def wants(self, event: str) -> bool:
        return self.active and (not self.events or event in self.events)


class WebhookDelivery(models.Model):
    """The delivery log: one row per event x endpoint, retried with backoff until it lands."""

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up after the last attempt

    id = models.BigAutoField(primary_key=True)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=50)
    event_id = models.UUIDField(default=uuid.uuid4, editable=False)
    payload = models.JSONField()
    # The ledger row it is about (message events), so a send reverted after a late SMTP refusal
    # can withdraw its pending "message.sent".
    message_id = models.BigIntegerField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_pending",
                condition=Q(state="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} -> {self.endpoint_id} ({self.state})"


class BrandRules(models.Model):
    """A workspace's guardrails for generated copy (marketing_ai.ml.language.guardrails)."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="brand")
    brand_name = models.CharField(max_length=100, blank=True)
    tone = models.CharField(max_length=100, default="warm, plain-spoken")
    language = models.CharField(max_length=8, default="en", help_text="ISO 639-1")
    banned_words = models.TextField(blank=True, help_text="one per line")
    banned_claims = models.TextField(
        blank=True,
        default="guaranteed\nrisk-free\nbest in the world\nmiracle\ncure\nclinically proven",
        help_text="one phrase per line",
    )
    required_phrases = models.TextField(
        blank=True, help_text="one per line; appended to every body (e.g. a legal line)"
    )
    allowed_terms = models.TextField(
        blank=True, help_text="house words and names that copy may use, one per line"
    )
    max_subject = models.PositiveSmallIntegerField(default=70)
    max_preheader = models.PositiveSmallIntegerField(default=110)
    max_body = models.PositiveSmallIntegerField(default=1500)
    max_sms = models.PositiveSmallIntegerField(default=160)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "brand rules"

    def __str__(self) -> str:
        return f"brand rules of {self.workspace}"
