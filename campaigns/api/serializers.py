"""Request/response shapes of the campaign API (DRF serializers: field-level 400s, OpenAPI)."""

from django.utils.crypto import get_random_string
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from campaigns import outbound
from campaigns.models import Campaign, Message, Variant, WebhookDelivery, WebhookEndpoint
from campaigns.models.broadcasts import validate_wave_hours
from campaigns.protection import breaker
from campaigns.services.lifecycle import bandit_problems
from crm.api.fields import JsonField
from crm.models import Segment


class WorkspaceSegments(serializers.PrimaryKeyRelatedField):
    def get_queryset(self):
        return Segment.objects.filter(workspace=self.context["workspace"])


class CampaignSerializer(serializers.ModelSerializer):
    include_segments = WorkspaceSegments(many=True, required=False)
    exclude_segments = WorkspaceSegments(many=True, required=False)
    wave_hours = serializers.FloatField(
        required=False,
        validators=[validate_wave_hours],
        help_text="hours between a bandit's waves, 1 to 168 (default 4)",
    )
    paused_by_breaker = serializers.SerializerMethodField(
        help_text="while the circuit breaker holds the campaign paused: its reason, the "
        "figures it judged and when; null otherwise (resume lifts it)"
    )

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "kind",
            "channel",
            "status",
            "include_segments",
            "exclude_segments",
            "consent_rule",
            "goal_event",
            "attribution_days",
            "holdout_percent",
            "targeting",
            "targeting_percent",
            "targeting_control_percent",
            "timing",
            "send_at",
            "local_date",
            "local_time",
            "quiet_start",
            "quiet_end",
            "window_hours",
            "explore_percent",
            "frequency_cap",
            "frequency_days",
            "ab_test_percent",
            "ab_metric",
            "ab_wait_hours",
            "winner",
            "ab_result",
            "bandit",
            "waves",
            "wave_hours",
            "from_email",
            "seed",
            "launched_at",
            "finished_at",
            "created_at",
            "updated_at",
            "paused_by_breaker",
        ]
        read_only_fields = [
            "status",
            "winner",
            "ab_result",
            "launched_at",
            "finished_at",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_paused_by_breaker(self, campaign: Campaign) -> dict | None:
        return breaker.pause_shown(campaign)

    def validate_name(self, value: str) -> str:
        others = Campaign.objects.filter(workspace=self.context["workspace"], name=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError("a campaign with this name exists")
        return value

    def validate(self, attrs: dict) -> dict:
        if self.instance is not None and self.instance.status != Campaign.Status.DRAFT:
            raise serializers.ValidationError(
                {"status": [f"a {self.instance.status} campaign cannot be edited"]}
            )
        raw = self.initial_data if isinstance(self.initial_data, dict) else {}
        # JSON true is not a number here (DRF's FloatField would take it as 1.0)
        flags = {name: ["a number, not true/false"] for name in NUMBERS
                 if isinstance(raw.get(name), bool)}  # fmt: skip
        if flags:
            raise serializers.ValidationError(flags)
        bandit = attrs.get("bandit", getattr(self.instance, "bandit", ""))
        ab_test = attrs.get("ab_test_percent", getattr(self.instance, "ab_test_percent", None))
        timing = attrs.get("timing", getattr(self.instance, "timing", ""))
        errors = bandit_problems(bandit, ab_test, None, timing)  # variants counted at launch
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


NUMBERS = ("holdout_percent", "targeting_percent", "targeting_control_percent", "wave_hours",
           "explore_percent", "ab_wait_hours", "attribution_days", "ab_test_percent", "waves",
           "window_hours", "frequency_cap", "frequency_days")  # fmt: skip


class VariantSerializer(serializers.ModelSerializer):
    provenance = JsonField(required=False)

    class Meta:
        model = Variant
        fields = [
            "id",
            "name",
            "subject",
            "preheader",
            "body_html",
            "body_text",
            "weight",
            "status",
            "approved_at",
            "provenance",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["status", "approved_at", "created_at", "updated_at"]

    def validate_name(self, value: str) -> str:
        campaign = self.context["campaign"]
        others = Variant.objects.filter(campaign=campaign, name=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError("this campaign has a variant with this name")
        return value


class MessageSerializer(serializers.ModelSerializer):
    token = serializers.CharField(source="token.hex", read_only=True)
    variant = serializers.CharField(source="variant.name", default=None, read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "token",
            "customer",
            "variant",
            "holdout",
            "ab_test",
            "state",
            "reason",
            "attempts",
            "send_at",
            "sent_at",
            "address",
            "provider_id",
            "opened_at",
            "clicked_at",
            "converted_at",
            "revenue",
        ]


class WebhookEndpointSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEndpoint.EVENTS), required=False
    )
    # Write-only: whoever holds the secret can sign a body as us, and a campaigns:read key must
    # not be able to. It is shown once, in the answer that set it (WebhookEndpointWithSecret).
    secret = serializers.CharField(
        required=False,
        max_length=100,
        min_length=16,
        write_only=True,
        help_text="signing key for X-Marketing-AI-Signature; 40 random characters when left out. "
        "Never shown again after the answer of the request that set it.",
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "secret", "events", "active", "created_at"]
        read_only_fields = ["created_at"]

    def validate_url(self, value: str) -> str:
        problem = outbound.url_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def create(self, validated_data: dict) -> WebhookEndpoint:
        validated_data.setdefault("secret", get_random_string(40))
        return super().create(validated_data)


class WebhookEndpointWithSecretSerializer(WebhookEndpointSerializer):
    """The answer of the POST that created an endpoint, or of a PATCH that set a new secret: the
    one time the secret is shown."""

    secret = serializers.CharField(read_only=True, help_text="the signing key; shown this once")


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "event_id",
            "payload",
            "state",
            "attempts",
            "next_attempt_at",
            "status_code",
            "error",
            "created_at",
            "delivered_at",
        ]
