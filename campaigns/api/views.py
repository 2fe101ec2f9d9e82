"""Campaign API: campaigns and variants CRUD, launch / pause / resume / cancel / resend-failed,
stats and the ledger; webhook endpoints and their delivery log. Scopes campaigns:read/write."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from campaigns.api.serializers import (
    CampaignSerializer,
    MessageSerializer,
    VariantSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointSerializer,
    WebhookEndpointWithSecretSerializer,
)
from campaigns.api.stats_docs import CampaignStats
from campaigns.models import Campaign, Message, Variant, WebhookEndpoint
from campaigns.protection import breaker
from campaigns.services import lifecycle
from campaigns.services.copy import BriefError, copy_generation_start
from campaigns.services.results import campaign_stats
from campaigns.services.variants import variant_approve, variant_update
from crm.api.base import WorkspaceApi, idempotent
from crm.api.fields import id_field
from crm.selectors.trending_products import rising_products
from marketing_ai.ml.language import copywriter


class CampaignsApi(WorkspaceApi):
    read_scope = "campaigns:read"
    write_scope = "campaigns:write"

    def campaign(self, pk) -> Campaign:
        return get_object_or_404(Campaign, workspace=self.workspace, pk=pk)

    def context(self, **extra) -> dict:
        return {"workspace": self.workspace, "request": self.request, **extra}


class CampaignListApi(CampaignsApi):
    @extend_schema(responses=CampaignSerializer(many=True))
    def get(self, request):
        rows = Campaign.objects.filter(workspace=self.workspace).prefetch_related(
            "include_segments", "exclude_segments"
        )
        status_filter = request.query_params.get("status")
        if status_filter:
            rows = rows.filter(status=status_filter)
        return self.paginate(rows, lambda page: CampaignSerializer(page, many=True).data)

    @extend_schema(request=CampaignSerializer, responses={201: CampaignSerializer})
    def post(self, request):
        def run():
            serializer = CampaignSerializer(data=request.data, context=self.context())
            serializer.is_valid(raise_exception=True)
            campaign = serializer.save(workspace=self.workspace)
            return Response(CampaignSerializer(campaign).data, status=status.HTTP_201_CREATED)

        return idempotent(request, self.workspace, run)


class CampaignDetailApi(CampaignsApi):
    @extend_schema(responses=CampaignSerializer)
    def get(self, request, pk):
        return Response(CampaignSerializer(self.campaign(pk)).data)

    @extend_schema(request=CampaignSerializer, responses=CampaignSerializer)
    def patch(self, request, pk):
        serializer = CampaignSerializer(
            self.campaign(pk), data=request.data, partial=True, context=self.context()
        )
        serializer.is_valid(raise_exception=True)
        return Response(CampaignSerializer(serializer.save()).data)

    @extend_schema(responses=None)
    def delete(self, request, pk):
        campaign = self.campaign(pk)
        if campaign.status != Campaign.Status.DRAFT:
            raise ValidationError({"status": ["only a draft can be deleted; cancel it instead"]})
        campaign.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class CampaignActionApi(CampaignsApi):
    """POST /campaigns/<id>/<action>: runs a control service; 400 with its reasons."""

    service = staticmethod(lambda *, campaign: None)
    result_key: str | None = None  # where the service's answer goes in the body

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, pk):
        campaign = self.campaign(pk)
        try:
            outcome = self.service(campaign=campaign)
        except lifecycle.CampaignError as exc:
            raise ValidationError(exc.errors) from exc
        campaign.refresh_from_db()
        body = {"campaign": CampaignSerializer(campaign).data}
        if self.result_key:
            body[self.result_key] = str(outcome.pk) if hasattr(outcome, "pk") else outcome
        accepted = self.result_key == "task"  # the launch goes on in a worker
        return Response(body, status=status.HTTP_202_ACCEPTED if accepted else status.HTTP_200_OK)


class CampaignLaunchApi(CampaignActionApi):
    service = staticmethod(lifecycle.campaign_launch)
    result_key = "task"


class CampaignPauseApi(CampaignActionApi):
    service = staticmethod(lifecycle.campaign_pause)


class CampaignResumeApi(CampaignActionApi):
    service = staticmethod(lifecycle.campaign_resume)


class CampaignCancelApi(CampaignActionApi):
    service = staticmethod(lifecycle.campaign_cancel)
    result_key = "skipped"


class CampaignResendApi(CampaignActionApi):
    service = staticmethod(lifecycle.campaign_resend_failed)
    result_key = "queued"


class CampaignStatsApi(CampaignsApi):
    """Sent, opened, clicked, converted and revenue per variant and against the holdout, the
    lift with its 95% interval, and the campaign's uplift results: how the launch's scores
    ranked who the message changed (observed Qini curve beside the predicted) and, when it
    targeted by uplift, what the targeting earned."""

    @extend_schema(responses=CampaignStats)
    def get(self, request, pk):
        campaign = self.campaign(pk)
        stats = campaign_stats(campaign=campaign)
        from campaigns.services.uplift_results import uplift_results  # numpy: on demand

        stats["uplift"] = uplift_results(campaign=campaign, attribute=False)
        stats["sender_health"] = breaker.campaign_health(campaign)
        return Response(stats)


class CampaignPolicyEvaluationApi(CampaignsApi):
    """What other policies would have earned on the campaign's logged messages (IPW, SNIPW, DR
    with 95% intervals) beside the logged policy's observed value."""

    @extend_schema(
        parameters=[OpenApiParameter("metric", str, enum=list(Campaign.AbMetric.values))],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request, pk):
        campaign = self.campaign(pk)
        metric = request.query_params.get("metric") or campaign.ab_metric
        if metric not in Campaign.AbMetric.values:
            raise ValidationError({"metric": [f"one of {', '.join(Campaign.AbMetric.values)}"]})
        from campaigns.services import policy_eval  # numpy: on demand

        return Response(policy_eval.evaluate(campaign, metric))


class CampaignMessagesApi(CampaignsApi):
    @extend_schema(responses=MessageSerializer(many=True))
    def get(self, request, pk):
        rows = Message.objects.filter(campaign=self.campaign(pk)).select_related("variant")
        state = request.query_params.get("state")
        if state:
            if state not in Message.State.values:
                raise ValidationError({"state": [f"one of {', '.join(Message.State.values)}"]})
            rows = rows.filter(state=state)
        return self.paginate(rows, lambda page: MessageSerializer(page, many=True).data)


class VariantListApi(CampaignsApi):
    @extend_schema(responses=VariantSerializer(many=True))
    def get(self, request, pk):
        rows = self.campaign(pk).variants.order_by("name")
        return Response(VariantSerializer(rows, many=True).data)

    @extend_schema(request=VariantSerializer, responses={201: VariantSerializer})
    def post(self, request, pk):
        campaign = self.campaign(pk)
        if campaign.status != Campaign.Status.DRAFT:
            raise ValidationError({"status": ["variants can be added to a draft only"]})
        serializer = VariantSerializer(data=request.data, context=self.context(campaign=campaign))
        serializer.is_valid(raise_exception=True)
        variant = serializer.save(campaign=campaign)
        return Response(VariantSerializer(variant).data, status=status.HTTP_201_CREATED)


# A sub-resource or action view shares its parent's lookup through a base class of lookups
# only, never by subclassing the parent's view: that would inherit the parent's handlers too
# (DELETE /webhooks/<id>/deliveries deleted the endpoint). tests/test_api_methods.py holds each
# route to its own methods.
class VariantApi(CampaignsApi):
    def variant(self, pk, variant_pk) -> Variant:
        return get_object_or_404(Variant, campaign=self.campaign(pk), pk=variant_pk)


class VariantDetailApi(VariantApi):
    @extend_schema(responses=VariantSerializer)
    def get(self, request, pk, variant_pk):
        return Response(VariantSerializer(self.variant(pk, variant_pk)).data)

    @extend_schema(request=VariantSerializer, responses=VariantSerializer)
    def patch(self, request, pk, variant_pk):
        variant = self.variant(pk, variant_pk)
        serializer = VariantSerializer(
            variant,
            data=request.data,
            partial=True,
            context=self.context(campaign=variant.campaign),
        )
        serializer.is_valid(raise_exception=True)
        try:
            variant = variant_update(variant=variant, fields=serializer.validated_data)
        except lifecycle.CampaignError as exc:
            raise ValidationError(exc.errors) from exc
        return Response(VariantSerializer(variant).data)

    @extend_schema(responses=None)
    def delete(self, request, pk, variant_pk):
        variant = self.variant(pk, variant_pk)
        if variant.campaign.status != Campaign.Status.DRAFT:
            raise ValidationError({"status": ["the campaign is launched; its variants stay"]})
        variant.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class VariantApproveApi(VariantApi):
    # Approving is the one thing this address does: the GET / PATCH / DELETE it would inherit
    # from VariantApi would read, change or delete the variant (405 instead, and not in the
    # schema).
    http_method_names = ["post", "options"]

    @extend_schema(request=None, responses=VariantSerializer)
    def post(self, request, pk, variant_pk):
        variant = self.variant(pk, variant_pk)
        try:
            variant_approve(variant=variant)
        except lifecycle.CampaignError as exc:
            raise ValidationError(exc.errors) from exc
        return Response(VariantSerializer(variant).data)


# An endpoint's signing secret is write-only: read answers never carry it (a campaigns:read key
# could otherwise sign forged deliveries); the answer of the request that set it does, once.
class WebhookListApi(CampaignsApi):
    @extend_schema(
        operation_id="v1_webhooks_list",  # a page object would otherwise read as a retrieve
        parameters=[
            OpenApiParameter("limit", int, OpenApiParameter.QUERY, description="page size, ≤ 1000"),
            OpenApiParameter("cursor", str, OpenApiParameter.QUERY, description="from `next`"),
        ],
        responses=inline_serializer(
            "WebhooksPage",
            {
                "next": serializers.URLField(allow_null=True),
                "previous": serializers.URLField(allow_null=True),
                "results": WebhookEndpointSerializer(many=True),
            },
        ),
    )
    def get(self, request):
        rows = WebhookEndpoint.objects.filter(workspace=self.workspace)
        return self.paginate(rows, lambda page: WebhookEndpointSerializer(page, many=True).data)

    @extend_schema(
        request=WebhookEndpointSerializer, responses={201: WebhookEndpointWithSecretSerializer}
    )
    def post(self, request):
        serializer = WebhookEndpointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = serializer.save(workspace=self.workspace)
        return Response(
            WebhookEndpointWithSecretSerializer(endpoint).data, status=status.HTTP_201_CREATED
        )


class WebhookApi(CampaignsApi):
    def endpoint(self, pk) -> WebhookEndpoint:
        return get_object_or_404(WebhookEndpoint, workspace=self.workspace, pk=pk)


class WebhookDetailApi(WebhookApi):
    @extend_schema(responses=WebhookEndpointSerializer)
    def get(self, request, pk):
        return Response(WebhookEndpointSerializer(self.endpoint(pk)).data)

    @extend_schema(
        request=WebhookEndpointSerializer,
        responses=OpenApiResponse(
            WebhookEndpointSerializer,
            description="With `secret` (as WebhookEndpointWithSecret) when this PATCH set one.",
        ),
    )
    def patch(self, request, pk):
        serializer = WebhookEndpointSerializer(self.endpoint(pk), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        endpoint = serializer.save()
        if "secret" in serializer.validated_data:
            return Response(WebhookEndpointWithSecretSerializer(endpoint).data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    @extend_schema(responses=None)
    def delete(self, request, pk):
        self.endpoint(pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveriesApi(WebhookApi):
    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    def get(self, request, pk):
        rows = self.endpoint(pk).deliveries.all()
        return self.paginate(rows, lambda page: WebhookDeliverySerializer(page, many=True).data)


class ContentGenerateRequest(serializers.Serializer):
    campaign = id_field()
    products = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=5,
        help_text="SKUs or product ids (1 to 5 in all, with `rising`)",
    )
    rising = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        max_length=5,
        help_text="SKUs of products forecast to rise to feature (GET content/rising-products)",
    )
    goal = serializers.CharField(required=False, allow_blank=True, max_length=500)
    tone = serializers.CharField(required=False, allow_blank=True, max_length=100)
    language = serializers.ChoiceField(choices=sorted(copywriter.LANGUAGES), required=False)
    offer = serializers.CharField(required=False, allow_blank=True, max_length=300)
    show_prices = serializers.BooleanField(required=False, default=False)
    k = serializers.IntegerField(required=False, min_value=1, max_value=8, default=4)
    rounds = serializers.IntegerField(required=False, min_value=1, max_value=8, default=6)
    seed = serializers.IntegerField(required=False, min_value=0, max_value=2**32 - 1, default=0)


class ContentGenerateApi(CampaignsApi):
    """POST /content/generate: writes K variants for a draft campaign with the configured
    language model, in the generation workers (the `gpu` queue: any machine serves it, with a
    GPU or without one); 202 with the task run (GET /tasks/<id> for progress). Variants arrive
    as drafts to approve."""

    @extend_schema(request=ContentGenerateRequest, responses={202: OpenApiTypes.OBJECT})
    def post(self, request):
        data = ContentGenerateRequest(data=request.data)
        data.is_valid(raise_exception=True)
        params = dict(data.validated_data)
        campaign = self.campaign(params["campaign"])
        try:
            run = copy_generation_start(campaign=campaign, params=params)
        except BriefError as exc:
            raise ValidationError(exc.errors) from exc
        return Response({"task": str(run.pk), "queue": run.queue}, status=status.HTTP_202_ACCEPTED)


class ContentRisingProductsApi(CampaignsApi):
    """GET /content/rising-products: the products a copy brief may feature because the active
    forecast has their weekly units rising, fastest first, each with its change and 80% band."""

    @extend_schema(
        parameters=[OpenApiParameter("limit", int, description="1 to 50, default 10")],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request):
        raw = request.query_params.get("limit", "10")
        if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 50:
            raise ValidationError({"limit": ["a whole number from 1 to 50"]})
        rising = rising_products(self.workspace.pk, limit=int(raw))
        return Response({"results": [p.as_dict() for p in rising]})
