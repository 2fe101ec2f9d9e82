"""Sending domains: the DKIM key a workspace signs its mail with, per From domain, and the
domain of its VERP return paths (campaigns.deliverability)."""

from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

from crm.models import Workspace

validate_domain = RegexValidator(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
    "a domain name in lower case, such as shop.example.com",
)
validate_selector = RegexValidator(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", "letters, digits, -")


class SendingDomain(models.Model):
    """A From domain of a workspace: its DKIM key (the private half never leaves the server:
    no admin form or page shows it) and where reports to its return paths go."""

    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="sending_domains"
    )
    domain = models.CharField(
        max_length=253,
        validators=[validate_domain],
        help_text="the From address's domain (mail from its subdomains is signed with it too)",
    )
    selector = models.CharField(max_length=63, validators=[validate_selector], editable=False)
    # PKCS#1 PEM, sealed (marketing_ai.sealed): a database dump alone cannot sign as the shop.
    private_key = models.TextField(editable=False)
    public_key = models.TextField(editable=False)  # base64 SubjectPublicKeyInfo
    key_created_at = models.DateTimeField(editable=False)
    signing = models.BooleanField(
        default=False,
        help_text="sign mail with this key; tick it once the DKIM record below is published "
        "(mail signed with a key receivers cannot find fails DMARC)",
    )
    bounce_domain = models.CharField(
        max_length=253,
        blank=True,
        validators=[validate_domain],
        help_text="domain of the per-message return paths (bounce+...@); needs an MX to our "
        "bounce receiver; empty: CAMPAIGN_BOUNCE_DOMAIN, or no VERP",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["domain"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "domain"], name="sending_domain_unique"),
        ]

    def __str__(self) -> str:
        return self.domain


class DeliveryReport(models.Model):
    """A bounce or complaint that came back about one message of the ledger, as received (the
    suppression policy acts on these)."""

    class Kind(models.TextChoices):
        HARD = "hard", "hard bounce"
        SOFT = "soft", "soft bounce"
        COMPLAINT = "complaint"
        # An ESP's webhook saying the person unsubscribed through the ESP's own link or page.
        UNSUBSCRIBED = "unsubscribed"

    class Source(models.TextChoices):
        LMTP = "lmtp", "bounce receiver (LMTP)"
        IMAP = "imap", "mailbox (IMAP)"
        POP3 = "pop3", "mailbox (POP3)"
        WEBHOOK = "webhook", "ESP webhook"

    id = models.BigAutoField(primary_key=True)
    message = models.ForeignKey(
        "campaigns.Message", on_delete=models.CASCADE, related_name="reports"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=40, blank=True, help_text="5.1.1, 4.2.2, abuse ...")
    address = models.CharField(max_length=254, help_text="the address the report names")
    excerpt = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    # The report's own Message-ID (or a digest of it): a report delivered twice is one report.
    report_id = models.CharField(max_length=200)
    received_at = models.DateTimeField(auto_now_add=True)
    # Set when staff lift the suppression it led to: the soft-bounce rule no longer counts it.
    lifted_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "kind", "address", "report_id"], name="delivery_report_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.address} ({self.status or '-'})"


DEFAULT_SOFT_BOUNCE_LIMIT = 3
DEFAULT_SOFT_BOUNCE_DAYS = 7


class DeliverabilityPolicy(models.Model):
    """What a workspace does with the reports that come back (campaigns.deliverability.policy):
    a hard bounce or a complaint suppresses at once; soft bounces after this many in so many
    days. A workspace without a row has the defaults (3 in 7 days)."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="deliverability_policy"
    )
    soft_bounce_limit = models.PositiveSmallIntegerField(
        default=DEFAULT_SOFT_BOUNCE_LIMIT,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="suppress an address after this many soft bounces ...",
    )
    soft_bounce_days = models.PositiveSmallIntegerField(
        default=DEFAULT_SOFT_BOUNCE_DAYS,
        validators=[MinValueValidator(1), MaxValueValidator(365)],
        help_text="... within this many days",
    )

    class Meta:
        verbose_name_plural = "deliverability policies"

    def __str__(self) -> str:
        return f"{self.soft_bounce_limit} soft bounces in {self.soft_bounce_days} days"


class BounceMailbox(models.Model):
    """A mailbox the reports to a workspace's return paths land in, polled over IMAP or POP3
    (campaigns.deliverability.mailbox) by a beat task of its own."""

    class Protocol(models.TextChoices):
        IMAP = "imap", "IMAP"
        POP3 = "pop3", "POP3"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    protocol = models.CharField(max_length=4, choices=Protocol.choices, default=Protocol.IMAP)
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="993 for IMAP over TLS, 995 for POP3 over TLS",
    )
    use_tls = models.BooleanField(default=True, help_text="TLS from the first byte (993 / 995)")
    username = models.CharField(max_length=200)
    # Sealed (marketing_ai.sealed): the admin's form takes the password and stores the token.
    password = models.TextField(editable=False)
    folder = models.CharField(max_length=200, default="INBOX", help_text="IMAP only")
    done_folder = models.CharField(
        max_length=200,
        blank=True,
        help_text="IMAP: move done reports here (must exist); empty: delete",
    )
    poll_seconds = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(5), MaxValueValidator(86400)]
    )
    active = models.BooleanField(default=True)
    last_polled_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=300, blank=True, editable=False)

    class Meta:
        verbose_name_plural = "bounce mailboxes"

    def __str__(self) -> str:
        return f"{self.protocol}://{self.username}@{self.host}:{self.port}"


class EspEvent(models.Model):
    """A tracking event an ESP's webhook posted (through django-anymail), kept as received so
    the same event posted twice is one (unique on the ESP's event id) and the work on it can be
    done on a queue after the webhook has been answered."""

    id = models.BigAutoField(primary_key=True)
    esp = models.CharField(max_length=40)
    event_id = models.CharField(max_length=200)
    event_type = models.CharField(max_length=20)
    message_id = models.CharField(max_length=200, blank=True, help_text="the ESP's message id")
    recipient = models.CharField(max_length=254, blank=True)
    token = models.CharField(max_length=32, blank=True, help_text="our message token, if sent")
    status = models.CharField(max_length=40, blank=True)
    excerpt = models.CharField(max_length=300, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=100, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["esp", "event_id"], name="esp_event_once"),
        ]

    def __str__(self) -> str:
        return f"{self.esp} {self.event_type} {self.event_id}"
