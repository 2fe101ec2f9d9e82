import json
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.utils import timezone

from crm import segments, validation
from crm.admin.scope import WorkspaceScopedAdmin, current_workspace, user_workspaces
from crm.models import Segment, Workspace
from crm.selectors import segment_choices, segment_count
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
        # The tree itself: the JSON field encodes it for the textarea (a string here was
        # encoded twice, a quoted string that could not be saved as rules).
        return {
            "rules": EXAMPLE,
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
        # A count, a sample of members and the pick-lists, nothing written: viewing segments is
        # enough.
        live = path("live/", self.guarded_view(self.live_view, "view"), name="crm_segment_live")
        choices = path(
            "choices/", self.guarded_view(self.choices_view, "view"), name="crm_segment_choices"
        )
        return [live, choices, *super().get_urls()]

    def _workspace(self, request: HttpRequest, value) -> Workspace | JsonResponse:
        """The workspace the builder asks about: the one named, else the one chosen in the
        switcher, else the user's only one; an answer (400, 404) where there is none."""
        workspaces = user_workspaces(request)
        if value in (None, ""):
            workspace = current_workspace(request)
            if workspace is None and workspaces.count() == 1:
                workspace = workspaces.first()
            if workspace is None:
                return JsonResponse({"error": "pick a workspace"}, status=400)
            return workspace
        try:
            pk = validation.identifier(value)
        except validation.Invalid as exc:
            return JsonResponse({"error": f"workspace: {exc}"}, status=400)
        workspace = workspaces.filter(pk=pk).first()
        if workspace is None:  # another's workspace answers as one that does not exist
            return JsonResponse({"error": "no such workspace"}, status=404)
        return workspace

    def choices_view(self, request: HttpRequest) -> JsonResponse:
        """GET ?workspace=: what the builder's fields offer (countries, event types, scores,
        segments) and the newest data's date."""
        workspace = self._workspace(request, request.GET.get("workspace"))
        if isinstance(workspace, JsonResponse):
            return workspace
        choices = segment_choices.builder_choices(workspace=workspace)
        newest = choices["newest"]
        choices["newest"] = newest.isoformat() if newest else None
        return JsonResponse(choices)

    def live_view(self, request: HttpRequest) -> JsonResponse:
        """POST {workspace, rules}: the live count and a sample of members, or the rule error;
        with a note where the rules count days back from a moment the data do not reach."""
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, RecursionError):  # bad JSON, bytes not UTF-8, nested too deep
            return JsonResponse({"error": "rules are not valid JSON"}, status=400)
        if not isinstance(body, dict):
            return JsonResponse({"error": "send a JSON object {workspace, rules}"}, status=400)
        workspace = self._workspace(request, body.get("workspace"))
        if isinstance(workspace, JsonResponse):
            return workspace
        rules = body.get("rules")
        try:
            matching = segments.customers_matching(workspace, rules, check_references=True)
            counted = segment_count.live_count(matching)
        except segments.RuleError as exc:
            return JsonResponse({"error": str(exc)}, status=400)
        sample = list(
            matching.order_by("pk").values("id", "email", "first_name", "last_name", "country")[:10]
        )
        return JsonResponse({**counted, "sample": sample, **_as_of_note(workspace, rules)})


def _as_of_note(workspace: Workspace, rules: dict) -> dict:
    """Where `within_days` windows count back from a moment after the newest data (the 2011
    demo counted from today), a sentence saying so and the moment to count from instead."""
    windows = segments.windows(rules)
    if not windows:
        return {}
    newest = segment_choices.newest_data(workspace=workspace)
    if newest is None:
        return {}
    moment = segments.as_of(rules) or timezone.now()
    empty = sorted(d for d in windows if newest < moment - timedelta(days=d))
    if not empty:
        return {}
    days = " and ".join(f"{d:g}" for d in empty)
    start = "today" if segments.as_of(rules) is None else f"{moment:%Y-%m-%d}"
    return {
        "as_of_note": (
            f"The newest event or order is from {newest:%Y-%m-%d}; within {days} days of "
            f"{start} finds none of them."
        ),
        # The day after the newest data: a window then ends with it.
        "as_of_suggestion": (newest + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z"),
    }
