"""The journeys admin: the list with live counts; the builder on each journey's page (its draft
drawn as a diagram with the live version's counts per step, a form per step with the checker's
errors on its fields, adding, branching and removing steps, the journey's own settings, the raw
JSON); publish / pause / resume / stop; *Try with a customer* (campaigns.journeys.preview:
nothing sent, nothing written); results per send step and variant against the holdout;
installing a ready-made journey from the add page; the enrolments list; and the customer page's
panel of their journeys (crm.admin.customers.customer_panel).

Every change to a journey is a POST to its own change page with an `op` (the admin's change
permission and workspace scoping hold for it as for the form itself); trying a customer is a
GET, which writes nothing."""

import copy
import json
import re
from typing import Any

import orjson
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.forms.utils import ErrorDict
from django.http import HttpRequest, HttpResponseRedirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from campaigns import charts
from campaigns.journeys import diagram, graph, preview, ready_made, selectors, services
from campaigns.journeys.models import Enrolment, EnrolmentStep, Journey
from campaigns.models import Campaign, WebhookEndpoint
from campaigns.services.results import campaign_stats
from crm import validation
from crm.admin.customers import customer_panel
from crm.admin.scope import (
    WorkspaceScopedAdmin,
    current_workspace,
    user_workspaces,
    visible_workspaces,
)
from crm.models import Customer, Segment

UNFINISHED = (Enrolment.State.ACTIVE, Enrolment.State.WAITING)

# The settings each step type's form shows, in order.
STEP_FIELDS = {
    "delay": ["duration", "until_time", "until_date", "offset_days", "yearly", "at", "next"],
    "wait_event": ["event", "where", "timeout", "yes", "no"],
    "condition": ["rules", "yes", "no"],
    "split": ["branches"],
    "update_attribute": ["attribute", "value", "next"],
    "segment": ["action", "segment", "next"],
    "webhook": ["endpoint", "next"],
    "send": ["campaign", "next"],
    "exit": [],
}
JSON_FIELDS = {"where", "rules", "branches"}
WHOLE_NUMBERS = {"campaign", "segment", "endpoint", "offset_days"}
SUCCESSOR_FIELDS = {"next", "yes", "no"}
HELP = {
    "duration": "30s, 15m, 4h or 7d (or give until_time)",
    "until_time": "a local time of day, e.g. 09:00 (or give duration)",
    "until_date": "signed_up, last_order or a date attribute (or give duration)",
    "offset_days": "with until_date: days after (or, negative, before) the date",
    "yearly": "with until_date: its next anniversary",
    "at": "with until_date: the local time of day, default 09:00",
    "event": "the event type waited for, e.g. purchase",
    "where": 'JSON: property equalities, e.g. {"source": "web"}',
    "timeout": "how long to wait: 30s, 15m, 4h, 7d",
    "rules": 'JSON: segment rules, e.g. {"attribute": "country", "op": "eq", "value": "DE"}',
    "branches": 'JSON: [{"weight": 50, "next": "a"}, {"weight": 50, "next": "b"}]',
    "value": "JSON or plain text",
}
# A new step's first settings (the checker names whatever is still missing).
NEW_STEP = {"delay": {"duration": "1h"}, "wait_event": {"timeout": "1d"}}


def loads(raw: str):
    """JSON typed into a form, taken as the API takes a body: orjson (no NaN, Infinity or lone
    surrogate; nesting past its limit refused, not recursed into), then what a JSON column
    holds (crm.validation.json_value: depth, NUL, 64-bit integers). ValueError with why."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None
    try:
        return validation.json_value(value)
    except validation.Invalid as exc:
        raise ValueError(str(exc)) from None


DONE = {"publish": "published", "pause": "paused", "resume": "resumed", "stop": "stopped",
        "move": "moved"}  # fmt: skip


class EditError(Exception):
    """An edit of the draft that cannot be made as asked; says what to fix."""


# --- edits of a draft definition (plain dicts in, plain dicts out) ------------------------


def _get(step: dict, key: str) -> Any:
    if key.startswith("branches."):
        index = int(key.split(".")[1])
        branches = step.get("branches") or []
        branch = branches[index] if index < len(branches) else None
        return branch.get("next") if isinstance(branch, dict) else None
    return step.get(key)


def _set(step: dict, key: str, value: Any) -> None:
    if key.startswith("branches."):
        branch = step["branches"][int(key.split(".")[1])]
        if not isinstance(branch, dict):
            raise EditError(
                "that branch is not an object with a weight and next: fix it in the JSON"
            )
        branch["next"] = value
    else:
        step[key] = value


def free_step_id(steps: dict, kind: str) -> str:
    n = 1
    while f"{kind}_{n}" in steps:
        n += 1
    return f"{kind}_{n}"


def step_add(definition: dict, *, kind: str, new_id: str = "", after: str = "", key: str = ""):
    """The definition with a new step of `kind` put on the way from `after` (by its setting
    `key`: next, yes, no, branches.N.next), or in front of the start without `after`. The new
    step leads where that way led (each of its ways, for a branching step)."""
    if kind not in graph.SUCCESSORS:
        raise EditError(f"a step type is one of {', '.join(graph.SUCCESSORS)}")
    found = copy.deepcopy(definition) if isinstance(definition, dict) else {}
    steps = found.setdefault("steps", {})
    if not isinstance(steps, dict):
        raise EditError("the definition's steps are not an object: fix them in the JSON")
    new_id = new_id.strip() or free_step_id(steps, kind)
    if not graph.STEP_ID.match(new_id):
        raise EditError("a step id of letters, digits, _ and - (at most 40)")
    if new_id in steps:
        raise EditError(f"there is a step {new_id} already")
    if after:
        source = steps.get(after)
        if not isinstance(source, dict):
            raise EditError(f"no step {after}")
        keys = [edge.key for edge in diagram.edges(after, source)]
        if key not in keys:
            raise EditError(f"{after} has no way {key or '(none given)'}: {', '.join(keys)}")
        old = _get(source, key)
        _set(source, key, new_id)
    else:
        old = found.get("start")
        found["start"] = new_id
    step = {"type": kind, **NEW_STEP.get(kind, {})}
    target = old if isinstance(old, str) and old in steps else None
    if kind == "split":
        step["branches"] = [{"weight": 50, "next": target}, {"weight": 50, "next": target}]
    else:
        for name in graph.SUCCESSORS[kind]:
            step[name] = target
    steps[new_id] = step
    return found


def step_remove(definition: dict, step_id: str) -> dict:
    """The definition without `step_id`; the steps that led to it lead to its successor. Refused
    (EditError saying what to fix) when it has other than exactly one way on and something
    leads to it."""
    found = copy.deepcopy(definition)
    steps = found.get("steps") or {}
    if step_id not in steps:
        raise EditError(f"no step {step_id}")
    outs = []
    for edge in diagram.edges(step_id, steps[step_id]):
        if isinstance(edge.target, str) and edge.target in steps and edge.target != step_id:
            if edge.target not in outs:
                outs.append(edge.target)
    leading = [
        (source, edge.key)
        for source, step in steps.items()
        if source != step_id
        for edge in diagram.edges(source, step)
        if edge.target == step_id
    ]
    is_start = found.get("start") == step_id
    if (leading or is_start) and len(outs) != 1:
        who = ", ".join(f"{s} ({k.replace('.next', '')})" for s, k in leading)
        who = (who + ", " if who else "") + ("the start" if is_start else "")
        ways = "is an end" if not outs else f"leads to {len(outs)} steps ({', '.join(outs)})"
        raise EditError(
            f"{step_id} {ways}, so what leads to it ({who.rstrip(', ')}) would lead nowhere: "
            f"point those at another step first, then remove {step_id}"
        )
    for source, key in leading:
        _set(steps[source], key, outs[0])
    if is_start:
        found["start"] = outs[0]
    del steps[step_id]
    return found


def problems(journey: Journey, definition: Any) -> dict[str, list[str]]:
    """The draft's problems by place, as publishing would report them ({} when it would pass)."""
    try:
        services.definition_check(
            workspace=journey.workspace, definition=definition, journey=journey
        )
    except services.JourneyError as exc:
        return exc.errors
    return {}


# --- forms ----------------------------------------------------------------------------------


def _show_problems(form: forms.Form, problems_: list[tuple[str | None, str]]) -> None:
    """Puts the checker's problems on a form's fields. An unbound form (the stored draft's
    values) gets an empty error list first, so that showing them does not validate it."""
    if not form.is_bound:
        form._errors, form.cleaned_data = ErrorDict(), {}
    for name, message in problems_:
        form.add_error(name, message)


def _text(value: Any) -> str:
    """A setting as a form shows it: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _choices(rows, current) -> list[tuple[str, str]]:
    found = [("", "---------")] + [(str(pk), f"{name} (#{pk})") for pk, name in rows]
    shown = "" if current is None else _text(current)
    if shown and shown not in {pk for pk, _ in found}:
        found.append((shown, f"{shown} (not found)"))
    return found


class StepForm(forms.Form):
    """One step's settings; the fields are its type's (STEP_FIELDS)."""

    type = forms.ChoiceField(choices=[(k, k) for k in graph.SUCCESSORS])

    def __init__(self, *args, journey: Journey, step_id: str, step: dict, **kwargs):
        kind = step.get("type") if step.get("type") in STEP_FIELDS else "exit"
        initial = {"type": step.get("type")}
        for name in STEP_FIELDS[kind]:
            value = step.get(name)
            if isinstance(value, bool):
                initial[name] = "true" if value else "false"
            elif name in JSON_FIELDS or (name == "value" and not isinstance(value, str)):
                initial[name] = "" if value is None else json.dumps(value)
            else:
                initial[name] = "" if value is None else _text(value)
        super().__init__(*args, initial=initial, prefix="step", **kwargs)
        self.kind, self.step_id = kind, step_id
        steps = (journey.definition or {}).get("steps") or {}
        targets = [("", "---------")] + [(s, s) for s in steps]
        workspace = journey.workspace
        for name in STEP_FIELDS[kind]:
            if name in SUCCESSOR_FIELDS:
                current = initial.get(name, "")
                extra = [] if current == "" or current in steps else [(current, current)]
                field = forms.ChoiceField(choices=targets + extra, required=False)
            elif name == "campaign":
                rows = Campaign.objects.filter(
                    workspace=workspace, kind=Campaign.Kind.JOURNEY
                ).values_list("pk", "name")
                field = forms.ChoiceField(choices=_choices(rows, step.get(name)), required=False)
            elif name == "segment":
                rows = Segment.objects.filter(
                    workspace=workspace, kind=Segment.Kind.STATIC
                ).values_list("pk", "name")
                field = forms.ChoiceField(choices=_choices(rows, step.get(name)), required=False)
            elif name == "endpoint":
                rows = WebhookEndpoint.objects.filter(workspace=workspace).values_list("pk", "url")
                field = forms.ChoiceField(choices=_choices(rows, step.get(name)), required=False)
            elif name == "yearly":
                field = forms.ChoiceField(
                    choices=[("", "---------"), ("true", "yes"), ("false", "no")],
                    required=False,
                )
            elif name == "action":
                field = forms.ChoiceField(
                    choices=[("", "---------"), ("add", "add"), ("remove", "remove")],
                    required=False,
                )
            elif name in JSON_FIELDS:
                field = forms.CharField(
                    widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), required=False
                )
            else:
                field = forms.CharField(required=False, max_length=200)
            field.help_text = HELP.get(name, "")
            self.fields[name] = field

    def step(self) -> dict:
        """The step's settings from the valid form (a changed type keeps what both share)."""
        kind = self.cleaned_data["type"]
        step: dict[str, Any] = {"type": kind}
        for name in STEP_FIELDS[kind]:
            raw = (self.cleaned_data.get(name) or "").strip() if name in self.fields else ""
            if raw == "":
                continue
            if name in JSON_FIELDS:
                step[name] = loads(raw)
            elif name == "value":
                try:
                    step[name] = loads(raw)
                except ValueError:
                    step[name] = raw
            elif name in WHOLE_NUMBERS and re.fullmatch(r"-?[0-9]{1,12}", raw):
                step[name] = int(raw)
            elif name == "yearly":
                step[name] = raw == "true"
            else:
                step[name] = raw
        return step

    def clean(self):
        data = super().clean()
        for name in JSON_FIELDS & set(self.fields):
            raw = (data.get(name) or "").strip()
            if raw:
                try:
                    loads(raw)
                except ValueError as exc:
                    self.add_error(name, f"not JSON: {exc}")
        return data

    def show(self, errors: dict[str, list[str]]) -> None:
        """Puts the checker's problems of this step on its fields (the rest on the form)."""
        prefix = f"steps.{self.step_id}"
        shown: list[tuple[str | None, str]] = []
        for place, found in errors.items():
            if place != prefix and not place.startswith(prefix + "."):
                continue
            name = place[len(prefix) + 1 :].split(".")[0] if place != prefix else ""
            detail = place[len(prefix) + 1 :]
            for message in found:
                if name in self.fields:
                    shown.append((name, message if detail == name else f"{detail}: {message}"))
                else:
                    shown.append((None, f"{detail}: {message}" if detail else message))
        _show_problems(self, shown)


TRIGGER_TYPES = [
    ("event", "an event"),
    ("segment", "a segment entered or left"),
    ("date", "a date"),
    ("api", "the API only"),
]


class SettingsForm(forms.Form):
    """The journey's own settings: trigger, entry filter, re-entry, exits and holdout."""

    trigger_type = forms.ChoiceField(choices=TRIGGER_TYPES, label="Starts on")
    trigger_events = forms.CharField(
        required=False, label="Events", help_text="event types, comma separated"
    )
    trigger_segment = forms.CharField(required=False, label="Segment id")
    trigger_on = forms.ChoiceField(
        choices=[("enter", "entering"), ("leave", "leaving")], required=False, label="On"
    )
    trigger_date = forms.CharField(
        required=False, label="Date",
        help_text="signed_up, last_order or a date attribute (e.g. birthday)",
    )  # fmt: skip
    trigger_offset_days = forms.IntegerField(
        required=False, label="Days from the date", help_text="e.g. 30, or -7 for a week before"
    )
    trigger_yearly = forms.BooleanField(required=False, label="Every year")
    trigger_at = forms.CharField(
        required=False, label="At", help_text="their local time of day, default 09:00"
    )
    entry_filter = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="JSON segment rules, or empty for everyone",
    )  # fmt: skip
    reentry_policy = forms.ChoiceField(
        choices=[(p, p) for p in graph.REENTRY], label="Re-entry",
        help_text="not_inside: whenever not already inside; once: once ever; "
                  "after_days: again after N days",
    )  # fmt: skip
    reentry_days = forms.IntegerField(required=False, label="Days")
    exit_on = forms.CharField(
        required=False, label="Ends on events", help_text="comma separated, e.g. purchase"
    )
    holdout_percent = forms.FloatField(required=False, label="Holdout %", initial=0)

    PLACES = {
        "trigger.type": "trigger_type", "trigger.event": "trigger_events",
        "trigger.events": "trigger_events", "trigger.segment": "trigger_segment",
        "trigger.on": "trigger_on", "trigger.date": "trigger_date",
        "trigger.offset_days": "trigger_offset_days", "trigger.yearly": "trigger_yearly",
        "trigger.at": "trigger_at", "entry_filter": "entry_filter",
        "reentry.policy": "reentry_policy", "reentry.days": "reentry_days",
        "exit_on": "exit_on", "holdout_percent": "holdout_percent",
    }  # fmt: skip

    @classmethod
    def initial_for(cls, definition: dict) -> dict:
        """The form's values from a draft, whatever it holds (the checker names what is wrong)."""

        def mapping(value, default: dict) -> dict:
            return value if isinstance(value, dict) else default

        def listed(value) -> list:
            return value if isinstance(value, list) else []

        trigger = mapping(definition.get("trigger"), {"type": "api"})
        events = listed(trigger.get("events")) or (
            [trigger["event"]] if trigger.get("event") else []
        )
        reentry = mapping(definition.get("reentry"), {"policy": "not_inside"})
        rules = definition.get("entry_filter")
        return {
            "trigger_type": trigger.get("type"),
            "trigger_events": ", ".join(str(e) for e in events),
            "trigger_segment": trigger.get("segment", ""),
            "trigger_on": trigger.get("on", "enter"),
            "trigger_date": trigger.get("date", ""),
            "trigger_offset_days": trigger.get("offset_days"),
            "trigger_yearly": trigger.get("yearly") is True,
            "trigger_at": trigger.get("at", ""),
            "entry_filter": json.dumps(rules) if rules else "",
            "reentry_policy": reentry.get("policy"),
            "reentry_days": reentry.get("days"),
            "exit_on": ", ".join(str(e) for e in listed(definition.get("exit_on"))),
            "holdout_percent": definition.get("holdout_percent", 0),
        }

    def clean_entry_filter(self):
        raw = (self.cleaned_data.get("entry_filter") or "").strip()
        if not raw:
            return None
        try:
            return loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"not JSON: {exc}") from None

    def apply(self, definition: dict) -> dict:
        """`definition` with these settings (the steps untouched)."""
        data = self.cleaned_data
        found = dict(definition)
        kind = data["trigger_type"]
        old = definition.get("trigger") if isinstance(definition.get("trigger"), dict) else {}
        # Settings this form does not show (an event's `where`, a date's) stay as they were.
        trigger: dict[str, Any] = {**(old if old.get("type") == kind else {}), "type": kind}
        if kind == "event":
            events = [e.strip() for e in data["trigger_events"].split(",") if e.strip()]
            trigger.pop("event", None)
            trigger.pop("events", None)
            trigger.update({"events": events} if len(events) != 1 else {"event": events[0]})
        elif kind == "segment":
            raw = data["trigger_segment"].strip()
            trigger["segment"] = int(raw) if raw.isdigit() else raw
            trigger["on"] = data["trigger_on"] or "enter"
        elif kind == "date":
            trigger["date"] = data["trigger_date"].strip()
            trigger["yearly"] = data["trigger_yearly"]
            for name in ("offset_days", "at"):
                value = data[f"trigger_{name}"]
                if value in (None, ""):
                    trigger.pop(name, None)
                else:
                    trigger[name] = value.strip() if isinstance(value, str) else value
        found["trigger"] = trigger
        found["entry_filter"] = data["entry_filter"]
        reentry: dict[str, Any] = {"policy": data["reentry_policy"]}
        if data["reentry_policy"] == "after_days":
            reentry["days"] = data["reentry_days"]
        found["reentry"] = reentry
        found["exit_on"] = [e.strip() for e in data["exit_on"].split(",") if e.strip()]
        holdout = data.get("holdout_percent") or 0
        found["holdout_percent"] = int(holdout) if float(holdout).is_integer() else holdout
        return found

    def show(self, errors: dict[str, list[str]]) -> None:
        shown: list[tuple[str | None, str]] = []
        for place, found in errors.items():
            name = self.PLACES.get(place) or self.PLACES.get(re.sub(r"\.[0-9]+$", "", place))
            if name:
                shown += [(name, message) for message in found]
        _show_problems(self, shown)


class InstallForm(forms.Form):
    """A ready-made journey (campaigns.journeys.ready_made), installed as a draft."""

    workspace = forms.ModelChoiceField(queryset=None)
    template = forms.ChoiceField(
        choices=[(t.name, f"{t.title} ({t.name})") for t in ready_made.TEMPLATES.values()]
    )
    settings = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 40}),
        help_text="key=value, one a line; empty for the defaults: "
        + "; ".join(
            f"{t.name}: " + ", ".join(f"{k}={v}" for k, v in t.settings.items())
            for t in ready_made.TEMPLATES.values()
        ),
    )
    publish = forms.BooleanField(required=False, help_text="publish it at once")

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, prefix="install", **kwargs)
        self.fields["workspace"].queryset = user_workspaces(request)
        self.fields["workspace"].initial = current_workspace(request)

    def clean_settings(self) -> dict[str, str]:
        given = {}
        for line in (self.cleaned_data.get("settings") or "").splitlines():
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise forms.ValidationError(f"{line.strip()!r} is not key=value")
            given[key.strip()] = value.strip()
        return given


class JourneyForm(forms.ModelForm):
    class Meta:
        model = Journey
        fields = ["workspace", "name"]

    def clean(self):
        data = super().clean()
        workspace, name = data.get("workspace"), data.get("name")
        if workspace and name:
            others = Journey.objects.filter(workspace=workspace, name=name)
            if self.instance.pk:
                others = others.exclude(pk=self.instance.pk)
            if others.exists():
                self.add_error("name", "a journey with this name exists in the workspace")
        return data


# --- the journey admin ------------------------------------------------------------------------


@admin.register(Journey)
class JourneyAdmin(WorkspaceScopedAdmin):
    form = JourneyForm
    list_display = ["name", "status", "version_number", "inside", "entered", "finished",
                    "exited", "workspace", "updated_at"]  # fmt: skip
    list_filter = ["status"]
    search_fields = ["name"]
    change_form_template = "admin/campaigns/journey/change_form.html"

    def get_queryset(self, request):
        counted = {
            "n_entered": Count("enrolments"),
            "n_inside": Count("enrolments", filter=Q(enrolments__state__in=UNFINISHED)),
            "n_finished": Count("enrolments", filter=Q(enrolments__state="finished")),
            "n_exited": Count("enrolments", filter=Q(enrolments__state="exited")),
        }
        return super().get_queryset(request).select_related("version").annotate(**counted)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        if obj.status == Journey.Status.STOPPED:
            return ["workspace", "name"]
        return ["workspace"]

    @admin.display(description="version", ordering="version__number")
    def version_number(self, journey: Journey):
        return journey.version.number if journey.version_id else "–"

    @admin.display(description="inside now", ordering="n_inside")
    def inside(self, journey: Journey) -> int:
        return journey.n_inside

    @admin.display(description="entered", ordering="n_entered")
    def entered(self, journey: Journey) -> int:
        return journey.n_entered

    @admin.display(description="finished", ordering="n_finished")
    def finished(self, journey: Journey) -> int:
        return journey.n_finished

    @admin.display(description="exited", ordering="n_exited")
    def exited(self, journey: Journey) -> int:
        return journey.n_exited

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            return super().save_model(request, obj, form, change)
        # The form holds the name only: saving writes the name, not the status, version and
        # draft as this request loaded them (a publish or an edit may land in between).
        obj.save(update_fields=["name", "updated_at"])

    def get_actions(self, request):
        # Deleting goes one draft at a time from its page: the list's bulk delete would take
        # live journeys, their enrolments and history with it.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None) -> bool:
        # Only a draft goes (as the API has it); a journey that ran is stopped, and its
        # enrolments and history stay.
        if obj is not None and obj.status != Journey.Status.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    # --- adding: a blank journey, or a ready-made one ----------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        install = InstallForm(
            request.POST if "install-template" in request.POST else None, request=request
        )
        if request.method == "POST" and "install-template" in request.POST:
            if not self.has_add_permission(request):
                raise PermissionDenied
            if install.is_valid():
                data = install.cleaned_data
                try:
                    journey = ready_made.install(
                        workspace=data["workspace"], name=data["template"],
                        given=data["settings"], publish=data["publish"],
                    )  # fmt: skip
                except services.JourneyError as exc:
                    for field, found in exc.errors.items():
                        for message in found:
                            install.add_error(None, f"{field}: {message}")
                else:
                    messages.success(request, f"Installed {journey.name} ({journey.status}).")
                    return HttpResponseRedirect(self._url(journey))
            request.method = "GET"  # shows the add page again, with the install form's errors
        extra = {**(extra_context or {}), "install_form": install}
        return super().add_view(request, form_url, extra)

    # --- the builder ------------------------------------------------------------------------

    def _url(self, journey: Journey, query: str = "") -> str:
        url = reverse("admin:campaigns_journey_change", args=[journey.pk])
        return f"{url}?{query}" if query else url

    def change_view(self, request, object_id, form_url="", extra_context=None):
        journey = self.get_object(request, unquote(object_id))
        if journey is None:  # not there, or another workspace's: the admin's own answer
            return super().change_view(request, object_id, form_url, extra_context)
        if request.method == "POST" and "op" in request.POST:
            if not self.has_change_permission(request, journey):
                raise PermissionDenied
            answer = self._operate(request, journey)
            if answer is not None:
                return answer
            journey.refresh_from_db()
            # The builder's form did not validate: the page again, with its errors, and the
            # admin's own form left alone (as a GET shows it) rather than saved from this POST.
            request.method = "GET"
        extra = {**(extra_context or {}), **self._builder(request, journey)}
        return super().change_view(request, object_id, form_url, extra)

    def _operate(self, request: HttpRequest, journey: Journey):
        """A builder POST: a redirect, a page (the stop confirmation), or None to show the
        builder again with what was posted (a form that did not validate)."""
        op = request.POST["op"]
        if op in ("publish", "pause", "resume", "stop", "move"):
            return self._state(request, journey, op)
        if journey.status == Journey.Status.STOPPED:
            messages.error(request, "A stopped journey cannot be edited.")
            return HttpResponseRedirect(self._url(journey))
        definition = journey.definition if isinstance(journey.definition, dict) else {}
        try:
            if op == "add_step":
                after, _, key = request.POST.get("way", "").partition(":")
                changed = step_add(
                    definition, kind=request.POST.get("kind", ""),
                    new_id=request.POST.get("new_id", ""), after=after, key=key,
                )  # fmt: skip
                new = next(s for s in changed["steps"] if s not in (definition.get("steps") or {}))
                self._save(journey, changed)
                messages.success(request, f"Added step {new}.")
                return HttpResponseRedirect(self._url(journey, f"step={new}"))
            if op == "remove_step":
                step_id = request.POST.get("step", "")
                self._save(journey, step_remove(definition, step_id))
                messages.success(request, f"Removed step {step_id}.")
                return HttpResponseRedirect(self._url(journey))
        except EditError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(self._url(journey))
        if op == "save_step":
            step_id = request.POST.get("step", "")
            steps = definition.get("steps") if isinstance(definition.get("steps"), dict) else {}
            if step_id not in steps:
                messages.error(request, f"No step {step_id}.")
                return HttpResponseRedirect(self._url(journey))
            form = StepForm(request.POST, journey=journey, step_id=step_id, step=steps[step_id])
            if not form.is_valid():
                request.posted_step_form = form
                return None
            changed = copy.deepcopy(definition)
            changed["steps"][step_id] = form.step()
            self._save(journey, changed)
            if problems(journey, changed):
                messages.warning(request, f"Saved {step_id}; the draft has problems to fix.")
            else:
                messages.success(request, f"Saved {step_id}.")
            return HttpResponseRedirect(
                self._url(journey, f"step={step_id}") + "#journey-step-editor"
            )
        if op == "save_settings":
            form = SettingsForm(request.POST, prefix="settings")
            if not form.is_valid():
                request.posted_settings_form = form
                return None
            self._save(journey, form.apply(definition))
            messages.success(request, "Saved the journey's settings.")
            return HttpResponseRedirect(self._url(journey) + "#journey-settings")
        if op == "save_json":
            try:
                changed = loads(request.POST.get("definition", ""))
                if not isinstance(changed, dict):
                    raise ValueError("an object with trigger, start and steps")
                changed = validation.json_object(changed)
            except (ValueError, validation.Invalid) as exc:
                request.posted_json = (request.POST.get("definition", ""), str(exc))
                return None
            self._save(journey, changed)
            messages.success(request, "Saved the definition.")
            return HttpResponseRedirect(self._url(journey))
        messages.error(request, f"Unknown operation {op!r}.")
        return HttpResponseRedirect(self._url(journey))

    def _save(self, journey: Journey, definition: dict) -> None:
        Journey.objects.filter(pk=journey.pk).update(
            definition=definition, updated_at=timezone.now()
        )
        journey.definition = definition

    def _state(self, request: HttpRequest, journey: Journey, op: str):
        if op == "stop" and request.POST.get("confirm") != "yes":
            inside = Enrolment.objects.filter(journey=journey, state__in=UNFINISHED).count()
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": f"Stop {journey.name}?",
                "journey": journey,
                "inside": inside,
            }
            return TemplateResponse(request, "admin/campaigns/journey/stop_confirm.html", context)
        service = services.ACTIONS[op]
        try:
            outcome = service(journey=journey)
        except services.JourneyError as exc:
            for place, found in exc.errors.items():
                messages.error(request, f"Not {DONE[op]}: {place}: {' '.join(found)}")
            return HttpResponseRedirect(self._url(journey))
        journey.refresh_from_db()
        said = (
            _moved(outcome, journey)
            if op == "move"
            else {
                "publish": f"Published version {getattr(outcome, 'number', '')}; the journey is "
                f"{journey.status}.",
                "pause": "Paused: no one enters; those inside wait where they are.",
                "resume": "Resumed.",
                "stop": f"Stopped; {outcome} enrolments exited.",
            }[op]
        )
        messages.success(request, said)
        return HttpResponseRedirect(self._url(journey))

    def _builder(self, request: HttpRequest, journey: Journey) -> dict:
        definition = journey.definition if isinstance(journey.definition, dict) else {}
        steps = definition.get("steps") if isinstance(definition.get("steps"), dict) else {}
        found = problems(journey, definition)
        stats = selectors.journey_stats(journey=journey)
        step_form = getattr(request, "posted_step_form", None)
        selected = step_form.step_id if step_form is not None else request.GET.get("step")
        if step_form is None and selected in steps and isinstance(steps[selected], dict):
            step_form = StepForm(journey=journey, step_id=selected, step=steps[selected])
            step_form.show(found)
        settings_form = getattr(request, "posted_settings_form", None)
        if settings_form is None:
            settings_form = SettingsForm(
                initial=SettingsForm.initial_for(definition), prefix="settings"
            )
            settings_form.show(found)
        faulty = {p.split(".")[1] for p in found if p.startswith("steps.") and "." in p}
        ways = [("", "in front of the start", False)]
        chosen = False
        for s, step in steps.items():
            for edge in diagram.edges(s, step):
                first = s == selected and not chosen
                chosen = chosen or first
                ways.append((f"{s}:{edge.key}", f"after {s} ({edge.label})", first))
        placed = {f"steps.{s}" for s in steps}
        page_problems = {
            place: found_
            for place, found_ in found.items()
            if place not in SettingsForm.PLACES
            and not any(place == p or place.startswith(p + ".") for p in placed)
        }
        posted_json = getattr(request, "posted_json", None)
        context = {
            "journey": journey,
            "journey_actions": self._actions(request, journey),
            "diagram": diagram.svg(
                definition, counts=stats["steps"], selected=selected, faulty=faulty
            ),
            "stats": stats,
            "problems": found,
            "page_problems": page_problems,
            "step_form": step_form,
            "selected": selected if selected in steps else None,
            "settings_form": settings_form,
            "ways": ways,
            "kinds": list(graph.SUCCESSORS),
            "definition_json": posted_json[0]
            if posted_json
            else json.dumps(definition, indent=2, sort_keys=False),
            "json_error": posted_json[1] if posted_json else "",
            "draft_changed": journey.version_id is not None
            and _normalised(definition) != journey.version.definition,
            "can_edit": self.has_change_permission(request, journey)
            and journey.status != Journey.Status.STOPPED,
            "enrolments_url": reverse("admin:campaigns_enrolment_changelist")
            + f"?journey={journey.pk}",
            # Reading results attributes conversions first (a write), as the campaign results
            # page does; not while trying a customer, which writes nothing.
            "results": self._results(journey, attribute=not request.GET.get("try")),
        }
        context.update(self._try(request, journey, definition, found))
        return context

    def _actions(self, request, journey: Journey) -> list[tuple[str, str]]:
        if not self.has_change_permission(request, journey):
            return []
        names = {
            Journey.Status.DRAFT: [("publish", "Publish"), ("stop", "Stop")],
            Journey.Status.LIVE: [("publish", "Publish the draft"), ("pause", "Pause"),
                                  ("stop", "Stop")],
            Journey.Status.PAUSED: [("resume", "Resume"), ("publish", "Publish the draft"),
                                    ("stop", "Stop")],
        }  # fmt: skip
        found = names.get(journey.status, [])
        if journey.version_id and journey.status != Journey.Status.STOPPED:
            older = Enrolment.objects.filter(journey=journey, state__in=UNFINISHED).exclude(
                version_id=journey.version_id
            )
            if older.exists():
                label = f"Move those inside older versions to v{journey.version.number}"
                found.append(("move", label))
        return found

    def _results(self, journey: Journey, *, attribute: bool) -> list[dict]:
        """Each send step of the live version: its message's results against the journey's
        holdout at that step, per variant, with 95% intervals (the campaign results code)."""
        if journey.version_id is None:
            return []
        found = []
        for step_id, step in journey.version.definition["steps"].items():
            if step["type"] != "send":
                continue
            campaign = Campaign.objects.filter(
                pk=step["campaign"], workspace=journey.workspace
            ).first()
            if campaign is None:
                continue
            stats = campaign_stats(campaign=campaign, attribute=attribute)
            rows = [(f"Variant {v['name']}", v["conversions"]["rate"], v["conversions"]["ci95"])
                    for v in stats["variants"]]  # fmt: skip
            if stats["holdout"]:
                held = stats["holdout"]["conversions"]
                rows.append(("Holdout", held["rate"], held["ci95"]))
            chart = charts.rate_bars(rows, title="Conversion rate (95% interval)")
            found.append({"step": step_id, "campaign": campaign, "stats": stats, "chart": chart})
        return found

    def _try(self, request, journey: Journey, draft: dict, found: dict) -> dict:
        """*Try with a customer*, from the page's GET parameters; reads only."""
        who = (request.GET.get("try") or "").strip()
        source = request.GET.get("source") or ("live" if journey.version_id else "draft")
        context: dict[str, Any] = {"try_who": who, "try_source": source, "try_path": None,
                                   "try_error": "", "try_context": request.GET.get("context", ""),
                                   "try_stand_in": request.GET.get("stand_in", "")}  # fmt: skip
        if not who:
            return context
        customers = Customer.objects.filter(workspace=journey.workspace, erased_at__isnull=True)
        customer = (
            customers.filter(pk=validation.identifier(who)).first()
            if validation.is_identifier(who)
            else customers.filter(email=who.lower()).first()
        )
        if customer is None:
            context["try_error"] = f"No customer {who!r} in {journey.workspace.name}."
            return context
        if source == "live" and journey.version_id:
            definition = journey.version.definition
        else:
            if found:
                context["try_error"] = "The draft has problems (listed above): fix them first."
                return context
            definition = services.definition_check(
                workspace=journey.workspace, definition=draft, journey=journey
            )
        raw = context["try_context"].strip()
        if raw:
            try:
                trigger = loads(raw)
                if not isinstance(trigger, dict):
                    raise ValueError("an object")
            except ValueError as exc:
                context["try_error"] = f"The trigger context is not a JSON object: {exc}"
                return context
        else:
            trigger = preview.sample_context(journey, definition, customer)
            context["try_context"] = json.dumps(trigger)
        stand_in = context["try_stand_in"].strip()
        stand_in = int(stand_in) if validation.is_identifier(stand_in) else customer.pk
        context["try_stand_in"] = str(stand_in)
        context["try_path"] = preview.walk(
            journey=journey, definition=definition, customer=customer, context=trigger,
            stand_in=stand_in,
        )  # fmt: skip
        return context


def _normalised(definition: dict) -> Any:
    try:
        return graph.check(definition)
    except graph.GraphError:
        return definition


# --- enrolments ---------------------------------------------------------------------------


class JourneyFilter(admin.SimpleListFilter):
    """The journeys of the workspaces the user sees (not every journey's name)."""

    title = "journey"
    parameter_name = "journey"

    def lookups(self, request, model_admin):
        rows = Journey.objects.filter(workspace__in=visible_workspaces(request))
        return [(str(pk), name) for pk, name in rows.values_list("pk", "name")]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(journey_id=value) if value and value.isdigit() else queryset


class StepFilter(admin.SimpleListFilter):
    title = "step"
    parameter_name = "step"

    def lookups(self, request, model_admin):
        rows = model_admin.get_queryset(request)
        journey = request.GET.get("journey")
        if journey and journey.isdigit():
            rows = rows.filter(journey_id=journey)
        steps = rows.order_by("step").values_list("step", flat=True).distinct()[:100]
        return [(s, s) for s in steps]

    def queryset(self, request, queryset):
        return queryset.filter(step=self.value()) if self.value() else queryset


class HistoryInline(admin.TabularInline):
    model = EnrolmentStep
    fields = ["at", "step", "outcome"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    ordering = ["at", "id"]


@admin.register(Enrolment)
class EnrolmentAdmin(WorkspaceScopedAdmin):
    """Who is where in which journey; read-only (the engine moves them)."""

    list_display = ["id", "journey", "version_number", "customer_link", "state", "step",
                    "holdout", "entered_at", "finished_at", "exit_reason"]  # fmt: skip
    list_filter = ["state", JourneyFilter, StepFilter, "holdout"]
    list_select_related = ["journey", "version", "customer"]
    fields = ["journey", "version", "customer_link", "state", "step", "holdout", "context",
              "key", "entered_at", "finished_at", "exit_reason"]  # fmt: skip
    readonly_fields = fields
    inlines = [HistoryInline]
    show_full_result_count = False

    @admin.display(description="version")
    def version_number(self, enrolment: Enrolment) -> int:
        return enrolment.version.number

    @admin.display(description="customer")
    def customer_link(self, enrolment: Enrolment) -> str:
        url = reverse("admin:crm_customer_change", args=[enrolment.customer_id])
        return format_html('<a href="{}">{}</a>', url, enrolment.customer)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@customer_panel
def journeys_panel(request: HttpRequest, customer: Customer) -> str:
    """The customer page's panel: each of their enrolments with its history (for staff who
    may see enrolments)."""
    if not request.user.has_perm("campaigns.view_enrolment"):
        return ""
    rows = list(
        Enrolment.objects.filter(customer=customer, workspace_id=customer.workspace_id)
        .select_related("journey", "version")
        .prefetch_related("history")
        .order_by("-entered_at")[:50]
    )
    for row in rows:
        row.steps = sorted(row.history.all(), key=lambda h: (h.at, h.pk))
    return render_to_string(
        "admin/campaigns/journey/customer_panel.html", {"enrolments": rows}, request=request
    )


def _moved(outcome: dict, journey: Journey) -> str:
    said = f"Moved {outcome['moved']} to version {journey.version.number}."
    if outcome["stayed"]:
        where = ", ".join(f"{n} at {place}" for place, n in sorted(outcome["stayed"].items()))
        said += f" Staying in their version (their step is gone or another kind): {where}."
    return said
