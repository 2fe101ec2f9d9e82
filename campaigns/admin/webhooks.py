from django import forms
from django.contrib import admin

from campaigns import outbound
from campaigns.models import WebhookDelivery, WebhookEndpoint
from crm.admin.scope import WorkspaceScopedAdmin


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ["created_at", "event", "state", "attempts", "status_code", "error", "delivered_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    ordering = ["-id"]
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-id")


class WebhookEndpointForm(forms.ModelForm):
    """Staff get the same refusal as the API: no internal or plain-http URLs (SSRF)."""

    class Meta:
        model = WebhookEndpoint
        fields = ["workspace", "url", "secret", "events", "active"]

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        problem = outbound.url_problem(url)
        if problem:
            raise forms.ValidationError(problem)
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(WorkspaceScopedAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "events", "active", "workspace", "created_at"]
    list_filter = ["active"]
    inlines = [DeliveryInline]
