"""Protecting the sender: a workspace's circuit-breaker thresholds, and the pauses the breaker
made (campaigns.protection)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from crm.models import Workspace

# The defaults, documented in README.md ("Protecting the sender"). Gmail's and Yahoo's bulk
# sender rules ask for complaints under 0.3% (0.1% to be safe); a list with more than a few
# percent of dead addresses is an old or bought one.
DEFAULT_MIN_SENDS = 200
DEFAULT_HARD_BOUNCE_PERCENT = 5.0
DEFAULT_COMPLAINT_PERCENT = 0.3
DEFAULT_COMPLAINT_WARNING_PERCENT = 0.1


class SenderProtection(models.Model):
    """A workspace's thresholds; a workspace without a row uses the defaults above."""

    workspace = models.OneToOneField(
        Workspace, on_delete=models.CASCADE, related_name="sender_protection"
    )
    breaker_on = models.BooleanField(
        default=True, help_text="pause a campaign by itself when its early rates pass these"
    )
    min_sends = models.PositiveIntegerField(
        default=DEFAULT_MIN_SENDS,
        validators=[MinValueValidator(20), MaxValueValidator(1_000_000)],
        help_text="attempts before the breaker judges (fewer say too little)",
    )
    hard_bounce_percent = models.FloatField(
        default=DEFAULT_HARD_BOUNCE_PERCENT,
        validators=[MinValueValidator(0.1), MaxValueValidator(100)],
        help_text="pause when more than this share of attempts bounced for good",
    )
    complaint_percent = models.FloatField(
        default=DEFAULT_COMPLAINT_PERCENT,
        validators=[MinValueValidator(0.01), MaxValueValidator(100)],
        help_text="pause when more than this share of sent mail drew complaints",
    )
    complaint_warning_percent = models.FloatField(
        default=DEFAULT_COMPLAINT_WARNING_PERCENT,
        validators=[MinValueValidator(0.01), MaxValueValidator(100)],
        help_text="warn (campaign, sending domain, results) from this rate",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"sender protection of {self.workspace}"


class CampaignPause(models.Model):
    """A pause the circuit breaker made: why, with the figures it judged on. `lifted_at` is set
    when staff resume the campaign; the breaker then judges only what is sent after that."""

    id = models.BigAutoField(primary_key=True)
    campaign = models.ForeignKey(
        "campaigns.Campaign", on_delete=models.CASCADE, related_name="breaker_pauses"
    )
    reason = models.CharField(max_length=300)
    figures = models.JSONField(default=dict, help_text="attempted, sent, bounced, complaints")
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.campaign_id} paused: {self.reason}"
