"""Brand rules for generated copy, one row per workspace."""

from django.contrib import admin

from campaigns.models import BrandRules
from crm.admin.scope import WorkspaceScopedAdmin


@admin.register(BrandRules)
class BrandRulesAdmin(WorkspaceScopedAdmin):
    """The checks every generated variant must pass (banned words and claims, required lines,
    lengths, language); facts — prices, discounts, dates, names — are always checked against
    the brief."""

    list_display = ["workspace", "brand_name", "language", "updated_at"]
    fieldsets = [
        (None, {"fields": ["workspace", "brand_name", "tone", "language"]}),
        (
            "Words",
            {"fields": ["banned_words", "banned_claims", "required_phrases", "allowed_terms"]},
        ),
        (
            "Lengths (characters)",
            {"fields": ["max_subject", "max_preheader", "max_body", "max_sms"]},
        ),
    ]
