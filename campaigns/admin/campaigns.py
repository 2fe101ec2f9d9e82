"""Campaign admin: editor with variants, approval, preview and test send, launch and the other
state changes, live delivery progress and the results page with charts."""

from django import forms
from django.contrib import admin, messages
from django.core.mail import get_connection
from django.db.models import Count
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from campaigns import charts, rendering, uplift_charts
from campaigns.admin.generate import GenerateForm, products_answer
from campaigns.channels import Outgoing
from campaigns.channels.email import EmailChannel
from campaigns.models import Campaign, Message, Variant
from campaigns.models.broadcasts import WAVE_HOURS, validate_wave_hours
from campaigns.protection import breaker
from campaigns.selectors import sent_mail
from campaigns.services import copy, lifecycle
from campaigns.services.recipients import launch_preview
from campaigns.services.results import campaign_stats
from campaigns.services.revenue_plan import campaign_revenue_plan
from campaigns.services.uplift import UpliftError, uplift_training_start
from campaigns.services.variants import variant_approve, variant_update
from crm import validation
from crm.admin.scope import WorkspaceScopedAdmin, visible_workspaces
from crm.models import Customer
from crm.selectors.trending_products import rising_products
from workers.models import TaskRun

ACTIONS = {
    "approve": "Approve variants",
    "launch": "Launch",
    "pause": "Pause",
    "resume": "Resume",
    "cancel": "Cancel",
    "resend": "Resend to failed",
}


def _bandit():
    # numpy comes with it: loaded when a bandit's page is shown, kept out of the web process
    from campaigns.services import bandit

    return bandit


def _policy_eval():
    # numpy/LightGBM with it: loaded on use, not in the web process
    from campaigns.services import policy_eval

    return policy_eval


def available_actions(campaign: Campaign) -> list[tuple[str, str]]:
    status = campaign.status
    names = {
        Campaign.Status.DRAFT: ["approve", "launch", "cancel"],
        Campaign.Status.SCHEDULED: ["pause", "cancel"],
        Campaign.Status.SENDING: ["pause", "cancel", "resend"],
        Campaign.Status.PAUSED: ["resume", "cancel"],
        Campaign.Status.SENT: ["resend"],
    }.get(status, [])
    return [(n, ACTIONS[n]) for n in names]


class VariantInline(admin.StackedInline):
    model = Variant
    extra = 0
    fields = [
        "name",
        "subject",
        "preheader",
        "body_html",
        "body_text",
        "weight",
        "status",
        "approved_at",
        "written_by",
    ]
    readonly_fields = ["status", "approved_at", "written_by"]

    @admin.display(description="written by")
    def written_by(self, variant: Variant) -> str:
        """For generated copy: who wrote it (which model, or the fill-in template) and how it
        did on each check when it was written, in words."""
        provenance = variant.provenance or {}
        if not provenance.get("generated"):
            return "staff"
        return written_by(provenance)

    def _draft(self, obj) -> bool:
        return obj is None or obj.status == Campaign.Status.DRAFT

    def get_extra(self, request, obj=None, **kwargs) -> int:
        return 1 if obj is None else 0

    def has_add_permission(self, request, obj=None) -> bool:
        return self._draft(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._draft(obj) and super().has_delete_permission(request, obj)


def written_by(provenance: dict) -> str:
    """A generated variant's provenance in words: the model (saying so when it is the small
    offline default) or the template, its scores, and every check's verdict."""
    scores = provenance.get("scores") or {}
    if provenance.get("source") == "template":
        who = (
            "A fill-in template, not the language model: offered beside the model's drafts "
            "because they failed the checks or were less relevant to the products than this"
        )
    else:
        model = str(provenance.get("model") or "an unnamed model").rstrip("/").rsplit("/", 1)[-1]
        where = provenance.get("device") or "an unknown device"
        who = f"The language model {model} ({provenance.get('backend', 'in-process')}, {where})"
        if _offline_default(provenance):
            who += (
                ", the small offline default (135 million parameters): expect plain, often "
                "repetitive copy to edit"
            )
        who += f", attempt {provenance.get('attempts')}"
    if scores.get("relevance") is not None:
        who += f"; relevance to the products {scores['relevance']:.2f}"
    return f"{who}. {_verdict(provenance)}"


def _offline_default(provenance: dict) -> bool:
    if "offline_default" in provenance:
        return bool(provenance["offline_default"])
    # Variants written before the backends said so: the packaged model's file name.
    return copy.OFFLINE_DEFAULT.lower() in str(provenance.get("model", "")).lower()


def _verdict(provenance: dict) -> str:
    checks = provenance.get("checks")
    if checks is None:  # written before checks were recorded one by one
        report = provenance.get("guardrails") or {}
        if report.get("passed"):
            return "Passed the brand rules."
        return "FAILED: " + "; ".join(
            f"{f['rule']} ({f['field']}): {f['detail']}" for f in report.get("failures", [])
        )
    failed = [c["words"] for c in checks if not c["passed"]]
    passed = [c["name"].replace("_", " ") for c in checks if c["passed"]]
    if not failed:
        return f"Passed all {len(passed)} checks: {', '.join(passed)}."
    return f"FAILED {len(failed)} of {len(checks)} checks: {' '.join(failed)} Passed: " + (
        ", ".join(passed) + "."
    )


def _or_default(value, name: str):
    return Campaign._meta.get_field(name).get_default() if value is None else value


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "workspace",
            "name",
            "channel",
            "from_email",
            "include_segments",
            "exclude_segments",
            "consent_rule",
            "frequency_cap",
            "frequency_days",
            "timing",
            "send_at",
            "local_date",
            "local_time",
            "quiet_start",
            "quiet_end",
            "window_hours",
            "explore_percent",
            "goal_event",
            "attribution_days",
            "holdout_percent",
            "seed",
            "targeting",
            "targeting_percent",
            "targeting_control_percent",
            "ab_test_percent",
            "ab_metric",
            "ab_wait_hours",
            "bandit",
            "waves",
            "wave_hours",
        ]
        widgets = {"from_email": forms.TextInput(attrs={"size": 50})}

    # The bandit's knobs: optional (their defaults kept when left empty), as in the API.
    waves = forms.IntegerField(
        required=False, initial=_or_default(None, "waves"), help_text="2 to 20"
    )
    wave_hours = forms.FloatField(
        required=False,
        initial=_or_default(None, "wave_hours"),
        help_text="hours between waves, 1 to 168",
        widget=forms.NumberInput(attrs={"min": WAVE_HOURS[0], "max": WAVE_HOURS[1], "step": "any"}),
    )

    def clean_waves(self):
        return _or_default(self.cleaned_data.get("waves"), "waves")

    def clean_wave_hours(self):
        hours = _or_default(self.cleaned_data.get("wave_hours"), "wave_hours")
        validate_wave_hours(hours)
        return hours

    # Best-hour timing's knobs: optional in the form (their defaults kept when left empty), as
    # they are in the API.
    BEST_HOUR = ("window_hours", "explore_percent")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in self.BEST_HOUR:
            if name in self.fields:
                self.fields[name].required = False

    def clean(self):
        data = super().clean()
        for name in self.BEST_HOUR:
            if name in data and data[name] is None:
                data[name] = Campaign._meta.get_field(name).get_default()
        workspace = data.get("workspace")
        for field in ("include_segments", "exclude_segments"):
            if workspace and any(s.workspace_id != workspace.pk for s in data.get(field) or []):
                self.add_error(field, "choose segments of the campaign's workspace")
        bandit = lifecycle.bandit_problems(
            data.get("bandit"), data.get("ab_test_percent"), None, data.get("timing") or ""
        )
        for field, problems in bandit.items():
            self.add_error(field, problems)
        return data


def _health_shown(health: dict) -> dict:
    """The campaign page's line: rates as text, the warning, and the breaker's pause."""

    def percent(value) -> str:
        return "-" if value is None else f"{value:.2f}%"

    return {
        "bounces": f"{health['hard_bounces']} ({percent(health['bounce_percent'])} of "
        f"{health['attempted']} attempted)",
        "complaints": f"{health['complaints']} ({percent(health['complaint_percent'])} of "
        f"{health['sent']} sent)",
        "warning": health["complaint_warning"],
        "warning_percent": health["thresholds"]["complaint_warning_percent"],
        "pause": health["paused_by_breaker"],
    }


@admin.register(Campaign)
class CampaignAdmin(WorkspaceScopedAdmin):
    form = CampaignForm
    list_display = ["name", "channel", "status", "progress", "launched_at", "workspace"]
    list_filter = ["status", "channel", "workspace"]
    search_fields = ["name"]
    inlines = [VariantInline]
    actions = ["train_uplift"]
    change_form_template = "admin/campaigns/campaign/change_form.html"
    fieldsets = [
        (None, {"fields": ["workspace", "name", "channel", "status", "from_email"]}),
        (
            "Audience",
            {
                "fields": [
                    "include_segments",
                    "exclude_segments",
                    "consent_rule",
                    "frequency_cap",
                    "frequency_days",
                ]
            },
        ),
        (
            "Schedule",
            {
                "fields": [
                    "timing",
                    "send_at",
                    "local_date",
                    "local_time",
                    "quiet_start",
                    "quiet_end",
                    "window_hours",
                    "explore_percent",
                ]
            },
        ),
        ("Measurement", {"fields": ["goal_event", "attribution_days", "holdout_percent", "seed"]}),
        (
            "Targeting by uplift",
            {"fields": ["targeting", "targeting_percent", "targeting_control_percent"]},
        ),
        (
            "A/B test",
            {
                "fields": ["ab_test_percent", "ab_metric", "ab_wait_hours", "winner"],
                "classes": ["collapse"],
            },
        ),
        ("Bandit (waves)", {"fields": ["bandit", "waves", "wave_hours", "bandit_waves"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        if obj is None or obj.status == Campaign.Status.DRAFT:
            return ["status", "winner", "bandit_waves"]
        return [f.name for f in Campaign._meta.fields] + [
            "include_segments",
            "exclude_segments",
            "bandit_waves",
        ]

    def save_model(self, request, obj, form, change) -> None:
        if obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is not Variant:
            return super().save_formset(request, form, formset, change)
        # Edits of existing variants go through the service that takes an approval back when
        # the copy changed (as the API's edits do); new and deleted ones are plain rows.
        formset.save(commit=False)
        for variant in formset.deleted_objects:
            variant.delete()
        for variant in formset.new_objects:
            variant.save()
        for variant, changed in formset.changed_objects:
            try:
                variant_update(
                    variant=variant, fields={name: getattr(variant, name) for name in changed}
                )
            except lifecycle.CampaignError as exc:  # launched while the form was open
                messages.error(request, f"Variant {variant.name} was not changed: {exc}")
        formset.save_m2m()

    def annotate_page(self, request, rows: list[Campaign]) -> list[Campaign]:
        """The list's delivery column for the page's campaigns, in one query: counted in the
        list's own query it would aggregate every campaign's ledger before paging."""
        by_campaign: dict[int, dict[str, int]] = {c.pk: {} for c in rows}
        counted = (
            Message.objects.filter(campaign_id__in=list(by_campaign))
            .values_list("campaign_id", "state")
            .annotate(n=Count("id"))
            .order_by()
        )
        for campaign_id, state, n in counted:
            by_campaign[campaign_id][state] = n
        for campaign in rows:
            campaign.delivery_counts = by_campaign[campaign.pk]
        return rows

    @admin.display(description="Delivery")
    def progress(self, obj: Campaign) -> str:
        if hasattr(obj, "delivery_counts"):
            counts = obj.delivery_counts
        else:
            counts = dict(
                Message.objects.filter(campaign=obj)
                .values_list("state")
                .annotate(n=Count("id"))
                .order_by()
            )
        total = sum(counts.values())
        if not total:
            return "-"
        done = total - counts.get("queued", 0) - counts.get("sending", 0)
        return format_html(
            '<progress value="{}" max="{}"></progress> {} sent, {} failed',
            done,
            total,
            counts.get("sent", 0),
            counts.get("failed", 0),
        )

    @admin.display(description="Waves and policies")
    def bandit_waves(self, obj: Campaign) -> str:
        if obj is None or obj.pk is None:
            return "-"
        link = format_html(
            '<a href="{}">Judge other policies on these logs (off-policy evaluation)</a>',
            reverse("admin:campaigns_campaign_policy_evaluation", args=[obj.pk]),
        )
        if not obj.bandit:
            return link
        return render_to_string(
            "admin/campaigns/campaign/bandit_waves.html",
            {"summary": _bandit().bandit_summary(obj), "link": link},
        )

    @admin.action(
        description="Train an uplift model for the selected campaigns' goals",
        permissions=["change"],
    )
    def train_uplift(self, request: HttpRequest, queryset) -> None:
        """One run per workspace and goal event among the selection: each trains on every
        sent campaign of that goal with a holdout, not only the selected ones."""
        pairs = sorted(set(queryset.values_list("workspace", "goal_event")))
        for workspace_id, goal in pairs:
            workspace = visible_workspaces(request).filter(pk=workspace_id).first()
            if workspace is None:
                continue
            try:
                run = uplift_training_start(workspace=workspace, goal=goal, user=request.user)
            except UpliftError as exc:
                self.message_user(request, f"{goal}: {exc}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"Training the uplift model for {goal!r} on {workspace.name} on an {run.queue} "
                f"worker (task {run.pk}); the version appears under Model versions.",
            )

    def _uplift_section(self, campaign: Campaign) -> dict:
        # numpy and the metrics: loaded by the page that needs them, not by the web process
        from campaigns.services.uplift_results import uplift_results

        section = uplift_results(campaign=campaign, attribute=False)
        if not section or not section["qini"]:
            return {"uplift": section}
        chart = uplift_charts.qini_chart(
            section["qini"]["observed"],
            section["qini"]["predicted"],
            title="Qini curve: extra conversions by predicted uplift",
        )
        return {"uplift": section, "uplift_chart": chart}

    # --- extra pages ------------------------------------------------------------------------

    def get_urls(self):
        view = self.guarded_view
        # Launch, pause, cancel, approve... and generating variants change the campaign; the
        # preview shows for view but its test send (POST) needs change.
        return [
            path(
                "<int:pk>/act/<str:action>/",
                view(self.act, "change"),
                name="campaigns_campaign_act",
            ),
            path(
                "<int:pk>/preview/",
                view(self.preview, "view", write_action="change"),
                name="campaigns_campaign_preview",
            ),
            path(
                "<int:pk>/results/", view(self.results, "view"), name="campaigns_campaign_results"
            ),
            path(
                "<int:pk>/policy-evaluation/",
                view(self.policy_evaluation, "view"),
                name="campaigns_campaign_policy_evaluation",
            ),
            path(
                "<int:pk>/messages/",
                view(self.sent_mail, "view"),
                name="campaigns_campaign_messages",
            ),
            path(
                "<int:pk>/messages/<int:message_id>/",
                view(self.sent_message, "view"),
                name="campaigns_campaign_message",
            ),
            path(
                "<int:pk>/generate/",
                view(self.generate, "change"),
                name="campaigns_campaign_generate",
            ),
            path(
                "<int:pk>/generate/products/",
                view(self.generate_products, "change"),
                name="campaigns_campaign_generate_products",
            ),
            *super().get_urls(),
        ]

    def _campaign(self, request: HttpRequest, pk: int) -> Campaign:
        return get_object_or_404(self.get_queryset(request), pk=pk)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = extra_context or {}
        campaign = self.get_object(request, object_id)  # None for "abc" or "²", not a 500
        if campaign is not None:
            # The state buttons only for those who may press them (the view answers 403 anyway).
            can_change = self.has_change_permission(request, campaign)
            extra["campaign_actions"] = available_actions(campaign) if can_change else []
            extra["delivery"] = self.progress(campaign)
            extra["sender_health"] = _health_shown(breaker.campaign_health(campaign))
            if (campaign.status, campaign.kind) == (Campaign.Status.DRAFT, Campaign.Kind.BROADCAST):
                extra["revenue_plan"] = campaign_revenue_plan(campaign=campaign).sentences()
        return super().change_view(request, object_id, form_url, extra)

    def act(self, request: HttpRequest, pk: int, action: str):
        campaign = self._campaign(request, pk)
        back = reverse("admin:campaigns_campaign_change", args=[pk])
        if request.method != "POST" or action not in dict(available_actions(campaign)):
            messages.error(request, f"{ACTIONS.get(action, action)} is not possible now.")
            return HttpResponseRedirect(back)
        try:
            if action == "approve":
                self._approve_all(request, campaign)
            elif action == "launch":
                # Nothing is sent before the marketer has seen who it goes to and said yes.
                if request.POST.get("confirm") != "yes":
                    return self._launch_confirm(request, campaign)
                run = lifecycle.campaign_launch(campaign=campaign, user=request.user)
                messages.success(request, f"Launched: writing the send list (task {run.pk}).")
            elif action == "pause":
                lifecycle.campaign_pause(campaign=campaign)
                messages.success(request, "Paused: messages in flight finish, the rest wait.")
            elif action == "resume":
                lifecycle.campaign_resume(campaign=campaign)
                messages.success(request, "Resumed.")
            elif action == "cancel":
                n = lifecycle.campaign_cancel(campaign=campaign)
                messages.success(request, f"Cancelled; {n} unsent messages skipped.")
            elif action == "resend":
                n = lifecycle.campaign_resend_failed(campaign=campaign)
                messages.success(request, f"{n} failed messages queued again.")
        except lifecycle.CampaignError as exc:
            for field, problems in exc.errors.items():
                for problem in problems:
                    messages.error(request, f"{field.replace('_', ' ')}: {problem}")
        return HttpResponseRedirect(back)

    def _launch_confirm(self, request: HttpRequest, campaign: Campaign):
        """The page that asks before a launch: how many get the message (after consent,
        suppression, the frequency cap, targeting and the holdout), who does not and why, and
        a sample of recipients. A campaign that cannot launch goes back with the reasons."""
        problems = lifecycle.launch_problems(campaign)
        if problems:
            raise lifecycle.CampaignError(problems)
        preview = launch_preview(campaign=campaign)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Launch {campaign.name}?",
            "campaign": {"pk": campaign.pk, "name": campaign.name, "channel": campaign.channel},
            "preview": preview,
        }
        return TemplateResponse(request, "admin/campaigns/campaign/launch_confirm.html", context)

    def _approve_all(self, request: HttpRequest, campaign: Campaign) -> None:
        drafts = campaign.variants.filter(status=Variant.Status.DRAFT)
        if not drafts:
            messages.info(request, "Every variant is approved already.")
        for variant in drafts:
            try:
                variant_approve(variant=variant, user=request.user)
                messages.success(request, f"Variant {variant.name} approved.")
            except lifecycle.CampaignError as exc:
                messages.error(request, f"Variant {variant.name}: {exc}")

    def preview(self, request: HttpRequest, pk: int):
        campaign = self._campaign(request, pk)
        variants = list(campaign.variants.order_by("name"))
        variant = next(
            (v for v in variants if str(v.pk) == request.GET.get("variant")),
            variants[0] if variants else None,
        )
        who = (request.GET.get("customer") or "").strip()
        customers = Customer.objects.filter(workspace=campaign.workspace, erased_at__isnull=True)
        # An id in ASCII digits within bigint ("²".isdigit() is True, then the query fails),
        # anything else an e-mail address; nothing, the first customer with one.
        customer = (
            customers.filter(pk=validation.identifier(who)).first()
            if validation.is_identifier(who)
            else customers.filter(email=who.lower()).first()
            if who
            else customers.exclude(email=None).order_by("pk").first()
        )
        rendered, error = None, ""
        if variant and customer:
            try:
                rendered = rendering.compiled(variant).render_for(
                    customer, unsubscribe_url="#", preferences_url="#"
                )
            except Exception as exc:  # shown to staff, who are fixing the template
                error = f"{type(exc).__name__}: {exc}"
        if request.method == "POST" and rendered is not None:
            self._test_send(request, campaign, rendered, request.POST.get("address", ""))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Preview: {campaign.name}",
            "campaign": campaign,
            "variants": variants,
            "variant": variant,
            "customer": customer,
            "who": who,
            "rendered": rendered,
            "error": error,
        }
        return TemplateResponse(request, "admin/campaigns/campaign/preview.html", context)

    def generate(self, request: HttpRequest, pk: int):
        """The brief for AI-written variants; they arrive as drafts in the editor to review."""
        campaign = self._campaign(request, pk)
        form = GenerateForm(
            request.POST or None,
            initial={"goal": campaign.name},
            workspace=campaign.workspace,
            products_url=reverse("admin:campaigns_campaign_generate_products", args=[pk]),
            rising=rising_products(campaign.workspace_id),
        )
        if request.method == "POST" and form.is_valid():
            params = dict(form.cleaned_data)
            try:
                run = copy.copy_generation_start(
                    campaign=campaign, params=params, user=request.user
                )
            except copy.BriefError as exc:
                for field, problems in exc.errors.items():
                    for problem in problems:
                        form.add_error(field if field in form.fields else None, problem)
            else:
                model = copy.configured_model()
                note = f"Writing {params['k']} variants with {model['model']}"
                if model["offline_default"]:
                    note += " (the small offline default)"
                note += f", queued for the generation workers (task {run.pk})"
                messages.success(request, f"{note}; they appear below as drafts.")
                return HttpResponseRedirect(
                    reverse("admin:campaigns_campaign_change", args=[campaign.pk])
                )
        runs = TaskRun.objects.filter(
            kind=copy.GENERATE_COPY, workspace=campaign.workspace, params__campaign=campaign.pk
        ).order_by("-created_at")[:5]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Generate variants: {campaign.name}",
            "campaign": campaign,
            "form": form,
            "adminform": form.admin_form(),
            "runs": runs,
            "model": copy.configured_model(campaign.workspace),
        }
        return TemplateResponse(request, "admin/campaigns/campaign/generate.html", context)

    def generate_products(self, request: HttpRequest, pk: int):
        """The generate form's product search: the campaign's own workspace's catalogue only."""
        return products_answer(request, self._campaign(request, pk).workspace)

    def _test_send(self, request, campaign: Campaign, rendered, address: str) -> None:
        address = address.strip()
        if "@" not in address:
            messages.error(request, "Give an e-mail address for the test send.")
            return
        outgoing = Outgoing(
            message_id=0,
            token="test-send",  # noqa: S106
            address=address,
            subject=f"[TEST] {rendered.subject}",
            html=rendered.html,
            text=rendered.text,
            from_email=campaign.from_email,
        )
        try:
            EmailChannel().build(outgoing).send(fail_silently=False)
        except Exception as exc:  # the mail server's answer is what staff need to see
            messages.error(request, f"Test send failed: {exc}")
            return
        get_connection().close()
        messages.success(request, f"Test sent to {address}.")

    def sent_mail(self, request: HttpRequest, pk: int):
        """The campaign's messages that went out (or are on their way), newest first, each
        linking to the message as its recipient got it."""
        campaign = self._campaign(request, pk)
        page = request.GET.get("page", "1")
        page = int(page) if page.isascii() and page.isdigit() and 0 < int(page) < 10**6 else 1
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Sent mail: {campaign.name}",
            "campaign": {"pk": campaign.pk, "name": campaign.name},
            "listing": sent_mail.campaign_messages(campaign_id=campaign.pk, page=page),
        }
        return TemplateResponse(request, "admin/campaigns/campaign/sent_mail.html", context)

    def sent_message(self, request: HttpRequest, pk: int, message_id: int):
        """One message as its recipient got it; its HTML in a sandboxed frame (no script, no
        links followed, no open counted)."""
        campaign = self._campaign(request, pk)
        message = get_object_or_404(
            Message.objects.select_related("variant", "customer", "campaign"),
            pk=message_id,
            campaign=campaign,
        )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Sent mail: {campaign.name}",
            "campaign": {"pk": campaign.pk, "name": campaign.name},
            "shown": sent_mail.message_as_sent(message=message),
        }
        return TemplateResponse(request, "admin/campaigns/campaign/sent_message.html", context)

    def policy_evaluation(self, request: HttpRequest, pk: int):
        campaign = self._campaign(request, pk)
        metric = request.GET.get("metric")
        if metric not in Campaign.AbMetric.values:
            metric = campaign.ab_metric
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Policy evaluation: {campaign.name}",
            "campaign": campaign,
            "metrics": Campaign.AbMetric.values,
            "evaluation": _policy_eval().evaluate(campaign, metric),
        }
        return TemplateResponse(request, "admin/campaigns/campaign/policy_evaluation.html", context)

    def results(self, request: HttpRequest, pk: int):
        campaign = self._campaign(request, pk)
        stats = campaign_stats(campaign=campaign)
        chart_rows = {"opens": [], "clicks": [], "conversions": []}
        for v in stats["variants"]:
            for key in chart_rows:
                chart_rows[key].append((f"Variant {v['name']}", v[key]["rate"], v[key]["ci95"]))
        if stats["holdout"]:
            h = stats["holdout"]["conversions"]
            label = "Holdout, all" if stats["selected"] else "Holdout"
            chart_rows["conversions"].append((label, h["rate"], h["ci95"]))
        if stats["selected"]:  # the headline's like-for-like pair
            for label, group in (("Selected, sent", "sent"), ("Held out, selected", "held_out")):
                c = stats["selected"][group]["conversions"]
                chart_rows["conversions"].append((label, c["rate"], c["ci95"]))
        svg = {
            key: charts.rate_bars(rows, title=f"{key.title()} rate (95% interval)")
            for key, rows in chart_rows.items()
        }
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Results: {campaign.name}",
            "campaign": campaign,
            "stats": stats,
            "charts": [svg["conversions"], svg["clicks"], svg["opens"]],
            **self._uplift_section(campaign),
            "refresh": campaign.status in (Campaign.Status.SCHEDULED, Campaign.Status.SENDING),
        }
        return TemplateResponse(request, "admin/campaigns/campaign/results.html", context)
