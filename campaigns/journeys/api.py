"""The journeys API: journeys (definition JSON, checked when published), publish, pause /
resume / stop, enrolments (by API, idempotent by key; exit), counts per step, and a customer's
enrolments. Scopes campaigns:read / campaigns:write, like the campaigns they send."""

from django.db import IntegrityError, transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.response import Response

from campaigns.journeys import ready_made, selectors, services
from campaigns.journeys.models import Enrolment, Journey
from campaigns.models import Campaign
from campaigns.protection import rates
from campaigns.services.results import campaign_stats
from crm import selectors as crm_selectors
from crm.api.base import WorkspaceApi, idempotent
from crm.api.fields import JsonField


class JourneySerializer(serializers.ModelSerializer):
    definition = JsonField(required=False, help_text="the draft: published by /publish")
    version = serializers.SerializerMethodField()
    published = serializers.SerializerMethodField(help_text="the definition that runs now")

    class Meta:
        model = Journey
        fields = ["id", "name", "status", "definition", "version", "published", "created_at",
                  "updated_at"]  # fmt: skip
        read_only_fields = ["status", "created_at", "updated_at"]

    def get_version(self, journey: Journey) -> int | None:
        return journey.version.number if journey.version_id else None

    def get_published(self, journey: Journey) -> dict | None:
        return journey.version.definition if journey.version_id else None

    def validate_name(self, value: str) -> str:
        others = Journey.objects.filter(workspace=self.context["workspace"], name=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError("a journey with this name exists")
        return value

    def validate_definition(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("an object with trigger, start and steps")
        return value

    def validate(self, attrs: dict) -> dict:
        if self.instance is not None and self.instance.status == Journey.Status.STOPPED:
            raise serializers.ValidationError({"status": ["a stopped journey cannot be edited"]})
        return attrs


class EnrolmentSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number", read_only=True)

    class Meta:
        model = Enrolment
        fields = [
            "id",
            "journey",
            "version",
            "customer",
            "state",
            "step",
            "holdout",
            "context",
            "key",
            "entered_at",
            "finished_at",
            "exit_reason",
        ]
        read_only_fields = fields


class EnrolRequest(serializers.Serializer):
    customer = serializers.CharField(max_length=300, help_text="id, ext:<source>:<id> or email:")
    key = serializers.CharField(max_length=100, required=False, allow_blank=True)
    context = JsonField(required=False, help_text="data for the journey's templates")

    def validate_context(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("an object")
        return value


class JourneysApi(WorkspaceApi):
    read_scope = "campaigns:read"
    write_scope = "campaigns:write"

    def journey(self, pk) -> Journey:
        return get_object_or_404(
            Journey.objects.select_related("version"), workspace=self.workspace, pk=pk
        )

    def body(self, journey: Journey) -> dict:
        return JourneySerializer(journey).data


class JourneyListApi(JourneysApi):
    @extend_schema(responses=JourneySerializer(many=True))
    def get(self, request):
        rows = Journey.objects.filter(workspace=self.workspace).select_related("version")
        return self.paginate(rows, lambda page: JourneySerializer(page, many=True).data)

    @extend_schema(request=JourneySerializer, responses={201: JourneySerializer})
    def post(self, request):
        def run():
            serializer = JourneySerializer(data=request.data, context={"workspace": self.workspace})
            serializer.is_valid(raise_exception=True)
            try:
                with transaction.atomic():
                    journey = services.journey_create(
                        workspace=self.workspace,
                        name=serializer.validated_data["name"],
                        definition=serializer.validated_data.get("definition") or {},
                    )
            except IntegrityError:  # the same name, created by a request racing this one
                raise ValidationError({"name": ["a journey with this name exists"]}) from None
            return Response(self.body(journey), status=status.HTTP_201_CREATED)

        return idempotent(request, self.workspace, run)


class JourneyDetailApi(JourneysApi):
    @extend_schema(responses=JourneySerializer)
    def get(self, request, pk):
        return Response(self.body(self.journey(pk)))

    @extend_schema(request=JourneySerializer, responses=JourneySerializer)
    def patch(self, request, pk):
        """A change to the definition takes effect when the journey is published again."""
        serializer = JourneySerializer(
            self.journey(pk),
            data=request.data,
            partial=True,
            context={"workspace": self.workspace},
        )
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                journey = serializer.save()
        except IntegrityError:
            raise ValidationError({"name": ["a journey with this name exists"]}) from None
        return Response(self.body(journey))

    @extend_schema(responses=None)
    def delete(self, request, pk):
        journey = self.journey(pk)
        if journey.status != Journey.Status.DRAFT:
            raise ValidationError({"status": ["only a draft can be deleted; stop it instead"]})
        journey.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class JourneyActionApi(JourneysApi):
    """POST /journeys/<id>/<action>: 400 with the reasons when the state or definition refuses."""

    action = "publish"

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request, pk):
        journey = self.journey(pk)
        service = services.ACTIONS[self.action]
        try:
            outcome = service(journey=journey)
        except services.JourneyError as exc:
            raise ValidationError(exc.errors) from None
        journey = self.journey(pk)
        body = {"journey": self.body(journey)}
        if self.action == "stop":
            body["exited"] = outcome
        if self.action == "move":
            body.update(outcome)
        return Response(body)


class JourneyPublishApi(JourneyActionApi):
    action = "publish"


class JourneyPauseApi(JourneyActionApi):
    action = "pause"


class JourneyResumeApi(JourneyActionApi):
    action = "resume"


class JourneyStopApi(JourneyActionApi):
    action = "stop"


class JourneyMoveApi(JourneyActionApi):
    """Moves the customers inside older versions onto the published one, each to the step of
    the same id and kind; the answer says how many moved and who stayed, by version and step."""

    action = "move"


class JourneyStatsApi(JourneysApi):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, pk):
        """Counts per step; on each send step, its message's results as a campaign's are
        reported: opens, clicks, conversions and revenue of those sent it against the journey's
        holdout at that step, with 95% intervals, per variant."""
        journey = self.journey(pk)
        body = selectors.journey_stats(journey=journey)
        if journey.version_id:
            for step_id, step in journey.version.definition["steps"].items():
                campaign = (
                    Campaign.objects.filter(pk=step["campaign"], workspace=self.workspace).first()
                    if step["type"] == "send"
                    else None
                )
                if campaign is not None:
                    body["steps"][step_id]["results"] = campaign_stats(campaign=campaign)
        # Bounce and complaint rates over every send step (campaigns.protection.rates).
        body["sender_health"] = rates.journey_rates(journey=journey).as_dict()
        return Response(body)


class JourneyEnrolmentsApi(JourneysApi):
    @extend_schema(
        responses=EnrolmentSerializer(many=True),
        parameters=[OpenApiParameter("state", str, enum=Enrolment.State.values)],
    )
    def get(self, request, pk):
        rows = Enrolment.objects.filter(journey=self.journey(pk)).select_related("version")
        state = request.query_params.get("state")
        if state:
            if state not in Enrolment.State.values:
                raise ValidationError({"state": [f"one of {', '.join(Enrolment.State.values)}"]})
            rows = rows.filter(state=state)
        return self.paginate(rows, lambda page: EnrolmentSerializer(page, many=True).data)

    @extend_schema(
        request=EnrolRequest,
        responses={201: EnrolmentSerializer, 200: EnrolmentSerializer, 409: OpenApiTypes.OBJECT},
    )
    def post(self, request, pk):
        """Enrols a customer. The same `key` again answers 200 with the same enrolment; a
        customer the re-entry policy or entry filter keeps out (or already inside) answers 409."""
        journey = self.journey(pk)
        asked = EnrolRequest(data=request.data)
        asked.is_valid(raise_exception=True)
        customer = crm_selectors.customer_get(
            workspace=self.workspace, ref=asked.validated_data["customer"]
        )
        try:
            enrolment, created = services.enrolment_create(
                journey=journey,
                customer=customer,
                context=asked.validated_data.get("context") or {},
                key=asked.validated_data.get("key", ""),
            )
        except services.JourneyError as exc:
            raise ValidationError(exc.errors) from None
        if enrolment is None:
            return Response(
                {
                    "customer": [
                        "not taken in: already inside, or kept out by the journey's "
                        "re-entry policy or entry filter"
                    ]
                },
                status=status.HTTP_409_CONFLICT,
            )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(EnrolmentSerializer(enrolment).data, status=code)


class EnrolmentExitApi(JourneysApi):
    @extend_schema(request=None, responses=EnrolmentSerializer)
    def post(self, request, pk, enrolment_pk):
        journey = self.journey(pk)
        enrolment = get_object_or_404(Enrolment, journey=journey, pk=enrolment_pk)
        services.enrolment_exit(enrolment=enrolment, reason="exited through the API")
        return Response(EnrolmentSerializer(enrolment).data)


class TemplateRequest(serializers.Serializer):
    settings = serializers.DictField(
        child=serializers.CharField(max_length=50), required=False, help_text='e.g. {"wait": "30s"}'
    )
    publish = serializers.BooleanField(required=False, default=False)


class JourneyTemplateApi(JourneysApi):
    @extend_schema(request=TemplateRequest, responses={201: JourneySerializer})
    def post(self, request, name):
        """Installs a ready-made journey (welcome, abandoned_cart, post_purchase, win_back) with its
        messages; published at once with "publish": true."""
        asked = TemplateRequest(data=request.data)
        asked.is_valid(raise_exception=True)
        if name not in ready_made.TEMPLATES:
            raise NotFound(f"no template {name!r}; there are {', '.join(ready_made.TEMPLATES)}")
        try:
            journey = ready_made.install(
                workspace=self.workspace,
                name=name,
                given=asked.validated_data.get("settings") or {},
                publish=asked.validated_data["publish"],
            )
        except services.JourneyError as exc:  # a bad setting, or the definition it makes
            raise ValidationError(exc.errors) from None
        return Response(self.body(self.journey(journey.pk)), status=status.HTTP_201_CREATED)


class CustomerJourneysApi(JourneysApi):
    @extend_schema(responses=EnrolmentSerializer(many=True))
    def get(self, request, ref):
        customer = crm_selectors.customer_get(workspace=self.workspace, ref=ref)
        rows = Enrolment.objects.filter(customer=customer).select_related("version")
        return self.paginate(rows, lambda page: EnrolmentSerializer(page, many=True).data)
