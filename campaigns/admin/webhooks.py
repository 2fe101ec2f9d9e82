from django.contrib import admin

from campaigns.models import Suppression, WebhookDelivery, WebhookEndpoint
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


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(WorkspaceScopedAdmin):
    list_display = ["url", "events", "active", "workspace", "created_at"]
    list_filter = ["active"]
    inlines = [DeliveryInline]


@admin.register(Suppression)
class SuppressionAdmin(WorkspaceScopedAdmin):
    list_display = ["address", "channel", "reason", "note", "created_at", "workspace"]
    list_filter = ["channel", "reason"]
    search_fields = ["address"]
