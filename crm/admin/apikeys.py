from django import forms
from django.contrib import admin, messages

from crm import services
from crm.admin.scope import WorkspaceScopedAdmin
from crm.models import ApiKey


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in ApiKey.SCOPES], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ["workspace", "name", "scopes"]


@admin.register(ApiKey)
class ApiKeyAdmin(WorkspaceScopedAdmin):
    form = ApiKeyForm
    list_display = ["name", "prefix", "workspace", "scope_list", "last_used_at", "revoked_at"]
    list_filter = ["workspace", ("revoked_at", admin.EmptyFieldListFilter)]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        # A key's secret is shown once at creation; afterwards only its name may change.
        return ["workspace", "prefix", "scopes", "last_used_at", "revoked_at"] if obj else []

    @admin.display(description="scopes")
    def scope_list(self, key: ApiKey) -> str:
        return ", ".join(key.scopes)

    def save_model(self, request, obj, form, change) -> None:
        if change:
            obj.save(update_fields=["name"])
            return
        key, secret = services.api_key_create(
            workspace=form.cleaned_data["workspace"],
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
        )
        obj.pk = key.pk
        obj.prefix = key.prefix
        messages.warning(
            request, f"Copy this key now; it is not shown again: {secret}", extra_tags="safe"
        )

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset) -> None:
        for key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(key=key)
        self.message_user(request, "Revoked.")
