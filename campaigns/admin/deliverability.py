"""Sending domains: a DKIM key made when staff add a domain (and again by the 'new key'
action), the DNS records to publish shown on the domain's page. The private key is in no form
and on no page."""

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from campaigns.deliverability import selectors, services
from campaigns.models import DeliveryReport, SendingDomain
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
                "dns_records"]  # fmt: skip

    def get_readonly_fields(self, request, obj=None):
        # The key was made for this domain under this selector: another domain needs its own.
        return ["workspace", "domain", "selector", "key_created_at", "dns_records"] if obj else []

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
