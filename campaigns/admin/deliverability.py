"""Sending domains: a DKIM key made when staff add a domain (and again by the 'new key'
action), the DNS records to publish shown on the domain's page. The private key is in no form
and on no page. What comes back: delivery reports (read only), the suppressions they led to
(lifted by staff with a note, audited), each workspace's policy and its bounce mailboxes."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join

from campaigns import outbound
from campaigns.deliverability import policy, selectors, services
from campaigns.models import DeliveryReport, SendingDomain, Suppression
from campaigns.models.deliverability import BounceMailbox, DeliverabilityPolicy
from campaigns.protection import rates
from crm.admin.scope import WorkspaceScopedAdmin


class SendingDomainForm(forms.ModelForm):
    class Meta:
        model = SendingDomain
        fields = ["workspace", "domain", "bounce_domain", "signing"]

    def clean_domain(self) -> str:
        return self.cleaned_data["domain"].strip().lower()

    def clean_bounce_domain(self) -> str:
        return self.cleaned_data["bounce_domain"].strip().lower()


@admin.register(SendingDomain)
class SendingDomainAdmin(WorkspaceScopedAdmin):
    form = SendingDomainForm
    list_display = ["domain", "selector", "signing", "bounce_domain", "key_created_at", "workspace"]
    list_filter = ["signing"]
    search_fields = ["domain"]
    actions = ["new_key"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["workspace", "domain", "bounce_domain"]
        return ["workspace", "domain", "selector", "key_created_at", "signing", "bounce_domain",
                "dns_records", "sender_health"]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        # The key was made for this domain under this selector: another domain needs its own.
        shown = ["workspace", "domain", "selector", "key_created_at", "dns_records"]
        return [*shown, "sender_health"] if obj else []

    @admin.display(description="DNS records to publish")
    def dns_records(self, obj: SendingDomain) -> str:
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td>{}</td><td><code style='word-break:break-all'>{}"
            "</code></td><td>{}</td></tr>",
            ((r.name, r.type, r.value, r.why) for r in selectors.dns_records_for(obj)),
        )
        return format_html(
            "<table><tr><th>name</th><th>type</th><th>value</th><th>why</th></tr>{}</table>", rows
        )

    @admin.display(description="Bounces and complaints")
    def sender_health(self, obj: SendingDomain) -> str:
        figures = rates.sending_domain_rates(sending_domain=obj)
        if not figures.attempted:
            return "nothing sent from this domain yet"
        text = format_html(
            "hard bounces {} ({}% of {} attempted), complaints {} ({}% of {} sent)",
            figures.hard_bounces,
            figures.bounce_percent,
            figures.attempted,
            figures.complaints,
            "-" if figures.complaint_percent is None else figures.complaint_percent,
            figures.sent,
        )
        if figures.complaint_warning:
            limit = rates.thresholds_for(obj.workspace_id).complaint_warning_percent
            text = format_html(
                '{} <strong style="color:#ba2121">complaints at or above {}%: mailbox '
                "providers start filtering this domain's mail</strong>",
                text,
                limit,
            )
        return text

    def save_model(self, request, obj, form, change) -> None:
        if change:
            obj.save(update_fields=["signing", "bounce_domain"])
            return
        created = services.sending_domain_create(
            workspace=form.cleaned_data["workspace"],
            domain=form.cleaned_data["domain"],
            bounce_domain=form.cleaned_data["bounce_domain"],
        )
        obj.pk = created.pk
        messages.info(
            request,
            f"Key made for {created.domain}. Publish the records on its page, then tick 'signing'.",
        )

    @admin.action(description="Make a new DKIM key (signing stops until it is published)",
                  permissions=["change"])  # fmt: skip
    def new_key(self, request, queryset) -> None:
        for sending_domain in queryset:
            services.sending_domain_new_key(sending_domain=sending_domain)
        self.message_user(
            request,
            "New keys made under new selectors. Publish each domain's new DKIM record, then "
            "tick 'signing' again.",
            messages.WARNING,
        )


@admin.register(DeliveryReport)
class DeliveryReportAdmin(WorkspaceScopedAdmin):
    """What came back about sent messages, as received (read only)."""

    workspace_path = "message__campaign__workspace"
    list_display = ["received_at", "kind", "address", "status", "excerpt", "source", "campaign"]
    list_filter = ["kind", "source"]
    search_fields = ["address"]
    list_select_related = ["message__campaign"]
    fields = ["received_at", "kind", "address", "status", "excerpt", "source", "report_id",
              "campaign"]  # fmt: skip
    readonly_fields = fields

    @admin.display(description="campaign")
    def campaign(self, report: DeliveryReport) -> str:
        return report.message.campaign.name

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the record of what came back is evidence, kept with its message


class LiftForm(forms.Form):
    note = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="why it is lifted (kept in the audit log with your name and the time)",
    )


@admin.register(Suppression)
class SuppressionAdmin(WorkspaceScopedAdmin):
    """The addresses no campaign sends to, with why (the bounce or complaint report's excerpt);
    staff lift one with a note, recorded in the audit log."""

    list_display = ["address", "channel", "reason", "note", "report_excerpt", "created_at",
                    "workspace"]  # fmt: skip
    list_filter = ["channel", "reason"]
    search_fields = ["address"]
    list_select_related = ["report"]
    readonly_fields = ["report_excerpt"]
    actions = ["lift"]

    @admin.display(description="report")
    def report_excerpt(self, obj: Suppression) -> str:
        if obj.report is None:
            return "-"
        report = obj.report
        kind = report.get_kind_display()
        return f"{kind} {report.status or ''} via {report.source}: {report.excerpt}"

    @admin.action(
        description="Lift the selected suppressions (with a note)", permissions=["delete"]
    )
    def lift(self, request, queryset):
        form = LiftForm(request.POST if "note" in request.POST else None)
        if form.is_valid():
            actor = request.user.get_username()
            count = 0
            for suppression in queryset.select_related("report"):
                policy.suppression_lift(
                    suppression=suppression, actor=actor, note=form.cleaned_data["note"]
                )
                count += 1
            self.message_user(request, f"{count} suppression(s) lifted; the audit log says why.")
            return None
        return TemplateResponse(
            request,
            "admin/campaigns/suppression/lift.html",
            {
                **self.admin_site.each_context(request),
                "title": "Lift suppressions",
                "form": form,
                "addresses": [
                    {"pk": s.pk, "address": s.address, "reason": s.reason} for s in queryset[:200]
                ],
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "opts": self.model._meta,
            },
        )


@admin.register(DeliverabilityPolicy)
class DeliverabilityPolicyAdmin(WorkspaceScopedAdmin):
    """What a workspace does with reports: hard bounces and complaints suppress at once; soft
    bounces after this many in so many days (without a row: 3 in 7)."""

    list_display = ["workspace", "soft_bounce_limit", "soft_bounce_days"]


class BounceMailboxForm(forms.ModelForm):
    new_password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        label="password",
        help_text="stored encrypted; leave empty to keep the one stored",
    )

    class Meta:
        model = BounceMailbox
        fields = ["workspace", "protocol", "host", "port", "use_tls", "username", "folder",
                  "done_folder", "poll_seconds", "active"]  # fmt: skip

    def clean(self):
        cleaned = super().clean()
        if not self.instance.pk and not cleaned.get("new_password"):
            self.add_error("new_password", "a password is needed")
        host, port = cleaned.get("host"), cleaned.get("port")
        if host and port:
            try:
                outbound.resolve(host.strip(), port)
            except outbound.Refused as exc:
                self.add_error("host", str(exc))
        return cleaned


@admin.register(BounceMailbox)
class BounceMailboxAdmin(WorkspaceScopedAdmin):
    """Mailboxes the reports land in, polled over IMAP or POP3 by a beat entry each."""

    form = BounceMailboxForm
    list_display = ["__str__", "active", "poll_seconds", "last_polled_at", "last_error",
                    "workspace"]  # fmt: skip
    readonly_fields = ["last_polled_at", "last_error"]

    def save_model(self, request, obj, form, change) -> None:
        services.mailbox_save(mailbox=obj, password=form.cleaned_data.get("new_password") or None)

    def delete_model(self, request, obj) -> None:
        services.mailbox_delete(mailbox=obj)

    def delete_queryset(self, request, queryset) -> None:
        for mailbox in queryset:
            services.mailbox_delete(mailbox=mailbox)
