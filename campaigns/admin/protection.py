"""A workspace's circuit-breaker thresholds (one row per workspace; without one the defaults
of campaigns.models.protection apply) and the pauses the breaker made, read only."""

from django.contrib import admin

from campaigns.models import CampaignPause, SenderProtection
from crm.admin.scope import WorkspaceScopedAdmin


@admin.register(SenderProtection)
class SenderProtectionAdmin(WorkspaceScopedAdmin):
    list_display = ["workspace", "breaker_on", "min_sends", "hard_bounce_percent",
                    "complaint_percent", "complaint_warning_percent"]  # fmt: skip


@admin.register(CampaignPause)
class CampaignPauseAdmin(WorkspaceScopedAdmin):
    workspace_path = "campaign__workspace"
    list_display = ["campaign", "reason", "created_at", "lifted_at"]
    readonly_fields = ["campaign", "reason", "figures", "created_at", "lifted_at"]

    def has_add_permission(self, request) -> bool:
        return False  # the breaker makes them

    def has_change_permission(self, request, obj=None) -> bool:
        return False
