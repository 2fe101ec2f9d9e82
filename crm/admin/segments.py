import json

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, JsonResponse
from django.urls import path

from crm import segments, validation
from crm.admin.scope import WorkspaceScopedAdmin, user_workspaces
from crm.models import Segment
from crm.services import segments as segment_services

EXAMPLE = {
    "all": [
        {"attribute": "country", "op": "eq", "value": "GB"},
        {"orders": {"op": "gte", "value": 2}, "within_days": 90},
        {"score": "churn_risk", "op": "gt", "value": 0.6},
    ]
}


class SegmentForm(forms.ModelForm):
    rules = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 14, "cols": 90, "class": "segment-rules"}),
        help_text="JSON rule tree (examples under Live count); the count updates as you type.",
    )

    class Meta:
        model = Segment
        fields = ["workspace", "name", "description", "kind", "rules"]

    def clean(self):
        data = super().clean()
        if data.get("kind") == Segment.Kind.RULES and data.get("workspace"):
            try:
                segments.compile_rules(data["workspace"], data.get("rules"))
            except segments.RuleError as exc:
                self.add_error("rules", str(exc))
        return data


@admin.register(Segment)
class SegmentAdmin(WorkspaceScopedAdmin):
    form = SegmentForm
    list_display = ["name", "kind", "member_count", "refreshed_at", "workspace"]
    list_filter = ["workspace", "kind"]
    search_fields = ["name", "description"]
    readonly_fields = ["member_count", "refreshed_at"]
    actions = ["refresh"]
    change_form_template = "admin/crm/segment/change_form.html"

    def get_changeform_initial_data(self, request):
        return {
            "rules": json.dumps(EXAMPLE, indent=2),
            **super().get_changeform_initial_data(request),
        }

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        if obj.kind == Segment.Kind.RULES:
            result = segment_services.segment_refresh(segment=obj)
            messages.info(
                request,
                f"{result['members']} members ({result['added']} added, "
                f"{result['removed']} removed).",
            )

    @admin.action(description="Refresh memberships now", permissions=["change"])
    def refresh(self, request, queryset) -> None:
        for segment in queryset:
            segment_services.segment_refresh(segment=segment)
        self.message_user(request, "Refreshed.")

    def get_urls(self):
        # A count and a sample of members, nothing written: viewing segments is enough.
        live = path("live/", self.guarded_view(self.live_view, "view"), name="crm_segment_live")
        return [live, *super().get_urls()]

    def live_view(self, request: HttpRequest) -> JsonResponse:
        """POST {workspace, rules}: the live count and a sample of members, or the rule error."""
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, RecursionError):  # bad JSON, bytes not UTF-8, nested too deep
            return JsonResponse({"error": "rules are not valid JSON"}, status=400)
        if not isinstance(body, dict):
            return JsonResponse({"error": "send a JSON object {workspace, rules}"}, status=400)
        try:
            pk = validation.identifier(body.get("workspace"))
        except validation.Invalid:
            return JsonResponse({"error": "pick a workspace"}, status=400)
        workspace = user_workspaces(request).filter(pk=pk).first()
        if workspace is None:
            return JsonResponse({"error": "pick a workspace"}, status=400)
        try:
            matching = segments.customers_matching(
                workspace, body.get("rules"), check_references=True
            )
            count = matching.count()
        except segments.RuleError as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        sample = list(
            matching.order_by("pk").values("id", "email", "first_name", "last_name", "country")[:10]
        )
        return JsonResponse({"count": count, "sample": sample})
