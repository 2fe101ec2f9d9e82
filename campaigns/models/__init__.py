"""The campaigns app's models: broadcasts (campaigns, variants, the send ledger, suppressions,
outbound webhooks), sending domains (DKIM keys, return paths), the sender's protection (breaker
thresholds and pauses) and journeys (campaigns.journeys.models); import them from here."""

from campaigns.journeys.models import (
    Enrolment,
    EnrolmentStep,
    Journey,
    JourneyTimer,
    JourneyVersion,
)
from campaigns.models.broadcasts import (
    BrandRules,
    Campaign,
    ChannelKind,
    Message,
    Suppression,
    Variant,
    WebhookDelivery,
    WebhookEndpoint,
    validate_sender,
    validate_wave_hours,
)
from campaigns.models.deliverability import DeliveryReport, SendingDomain
from campaigns.models.protection import CampaignPause, SenderProtection
from campaigns.models.sending import SendingSettings

__all__ = [
    "BrandRules",
    "Campaign",
    "CampaignPause",
    "ChannelKind",
    "DeliveryReport",
    "Enrolment",
    "EnrolmentStep",
    "Journey",
    "JourneyTimer",
    "JourneyVersion",
    "Message",
    "SenderProtection",
    "SendingDomain",
    "SendingSettings",
    "Suppression",
    "Variant",
    "WebhookDelivery",
    "WebhookEndpoint",
    "validate_sender",
    "validate_wave_hours",
]
