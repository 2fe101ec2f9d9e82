"""Sending domains: the DKIM key a workspace signs its mail with, per From domain, and the
domain of its VERP return paths (campaigns.deliverability)."""

from django.core.validators import RegexValidator
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
    private_key = models.TextField(editable=False)  # PKCS#1 PEM
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

    class Source(models.TextChoices):
        LMTP = "lmtp", "bounce receiver (LMTP)"

    id = models.BigAutoField(primary_key=True)
    message = models.ForeignKey(
        "campaigns.Message", on_delete=models.CASCADE, related_name="reports"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    status = models.CharField(max_length=40, blank=True, help_text="5.1.1, 4.2.2, abuse ...")
    address = models.CharField(max_length=254, help_text="the address the report names")
    excerpt = models.CharField(max_length=300, blank=True)
    source = models.CharField(max_length=10, choices=Source.choices)
    # The report's own Message-ID (or a digest of it): a report delivered twice is one report.
    report_id = models.CharField(max_length=200)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "kind", "address", "report_id"], name="delivery_report_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.address} ({self.status or '-'})"
