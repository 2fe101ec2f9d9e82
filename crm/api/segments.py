"""Segment endpoints: definitions, live count and preview, members, refresh as a task run."""

from django.db import IntegrityError
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from crm import segments, selectors
from crm import validation as v
from crm.api.base import WorkspaceApi
from crm.models import Customer, Segment
from crm.services import segments as segment_services
from crm.tasks.segments import refresh
from workers.services import task_run_start

SEGMENT_VALUES = ("id", "name", "description", "kind", "rules", "member_count", "refreshed_at",
                  "created_at", "updated_at")  # fmt: skip
PREVIEW_SIZE = 20


def segment_input(data) -> dict:
    """Validates a segment body; raises ValidationError with field messages."""
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["send a JSON object"]})
    errors = v.RowErrors()
    name = errors.take(data, "name", v.text, max_length=200, required=True)
    description = errors.take(data, "description", v.text, max_length=5000)
    kind = data.get("kind", Segment.Kind.RULES)
    if kind not in Segment.Kind.values:
        errors.add("kind", "must be 'rules' or 'static'")
    if errors:
        raise ValidationError(errors.errors)
    return {"name": name, "description": description, "kind": kind, "rules": data.get("rules")}


class SegmentListApi(WorkspaceApi):
    @extend_schema(operation_id="segments_list", responses=OpenApiTypes.OBJECT)
    def get(self, request):
        queryset = Segment.objects.filter(workspace=self.workspace).values(*SEGMENT_VALUES)
        return self.paginate(queryset, list)

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        fields = segment_input(request.data)
        try:
            segment = segment_services.segment_save(workspace=self.workspace, **fields)
        except segments.RuleError as exc:
            raise ValidationError({"rules": [str(exc)]}) from exc
        except IntegrityError:
            raise ValidationError({"name": ["a segment with this name exists"]}) from None
        return Response(
            Segment.objects.values(*SEGMENT_VALUES).get(pk=segment.pk),
            status=status.HTTP_201_CREATED,
        )


class SegmentRulesPreviewApi(WorkspaceApi):
    """POST /segments/preview: count and sample for a rule tree that is not saved yet."""

    read_scope = write_scope = "crm:read"

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        rules = request.data.get("rules") if isinstance(request.data, dict) else None
        try:
            matching = segments.customers_matching(self.workspace, rules, check_references=True)
            count = matching.count()
        except segments.RuleError as exc:
            raise ValidationError({"rules": [str(exc)]}) from exc
        sample = list(matching.order_by("pk").values(*selectors.CUSTOMER_VALUES)[:PREVIEW_SIZE])
        return Response({"count": count, "sample": selectors.customers_shape(sample)})


class SegmentApi(WorkspaceApi):
    def segment(self, pk) -> Segment:
        return get_object_or_404(Segment, workspace=self.workspace, pk=pk)


class SegmentDetailApi(SegmentApi):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, pk):
        return Response(Segment.objects.values(*SEGMENT_VALUES).get(pk=self.segment(pk).pk))

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def patch(self, request, pk):
        segment = self.segment(pk)
        current = {
            "name": segment.name,
            "description": segment.description,
            "kind": segment.kind,
            "rules": segment.rules,
        }
        body = request.data if isinstance(request.data, dict) else None
        fields = segment_input({**current, **body} if body is not None else None)
        try:
            segment_services.segment_save(workspace=self.workspace, segment=segment, **fields)
        except segments.RuleError as exc:
            raise ValidationError({"rules": [str(exc)]}) from exc
        except IntegrityError:
            raise ValidationError({"name": ["a segment with this name exists"]}) from None
        return Response(Segment.objects.values(*SEGMENT_VALUES).get(pk=segment.pk))

    put = patch

    @extend_schema(responses=None)
    def delete(self, request, pk):
        self.segment(pk).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class SegmentCountApi(SegmentApi):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Live count of the rules right now")
    def get(self, request, pk):
        segment = self.segment(pk)
        if segment.kind == Segment.Kind.STATIC:
            live = segment.memberships.count()
        else:
            live = segments.customers_matching(self.workspace, segment.rules).count()
        return Response({"count": live, "materialised": segment.member_count})


class SegmentPreviewApi(SegmentApi):
    @extend_schema(responses=OpenApiTypes.OBJECT, summary="The first customers the rules match")
    def get(self, request, pk):
        segment = self.segment(pk)
        if segment.kind == Segment.Kind.STATIC:
            matching = Customer.objects.filter(memberships__segment=segment)
        else:
            matching = segments.customers_matching(self.workspace, segment.rules)
        sample = list(matching.order_by("pk").values(*selectors.CUSTOMER_VALUES)[:PREVIEW_SIZE])
        return Response({"results": selectors.customers_shape(sample)})


class SegmentMembersApi(SegmentApi):
    @extend_schema(operation_id="segment_members_list", responses=OpenApiTypes.OBJECT)
    def get(self, request, pk):
        segment = self.segment(pk)
        queryset = Customer.objects.filter(memberships__segment=segment, erased_at__isnull=True)
        return self.paginate(queryset.values(*selectors.CUSTOMER_VALUES), selectors.customers_shape)

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request, pk):
        """Adds customers (by id) to a static segment: {"customers": [1, 2, 3]}."""
        segment = self.segment(pk)
        if segment.kind != Segment.Kind.STATIC:
            raise ValidationError({"customers": ["members of a rules segment follow its rules"]})
        ids = request.data.get("customers") if isinstance(request.data, dict) else None
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in ids
        ):
            raise ValidationError({"customers": ["a list of customer ids"]})
        try:
            ids = [v.identifier(i) for i in ids]
        except v.Invalid as exc:
            raise ValidationError({"customers": [str(exc)]}) from None
        added = segment_services.segment_add_members(segment=segment, customer_ids=ids[:10_000])
        return Response({"added": added})


class SegmentRefreshApi(SegmentApi):
    @extend_schema(request=None, responses=OpenApiTypes.OBJECT, summary="Refresh as a task run")
    def post(self, request, pk):
        segment = self.segment(pk)
        run = task_run_start(
            task=refresh, params={"segment_id": segment.pk}, workspace=self.workspace
        )
        return Response(
            {"task": str(run.pk), "url": f"/api/v1/tasks/{run.pk}"},
            status=status.HTTP_202_ACCEPTED,
        )
