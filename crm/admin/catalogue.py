from django.contrib import admin

from crm.admin.scope import WorkspaceScopedAdmin
from crm.models import Product
from crm.services import products_set_active


@admin.register(Product)
class ProductAdmin(WorkspaceScopedAdmin):
    list_display = ["sku", "name", "category", "price", "currency", "active"]
    list_filter = ["workspace", "active", "category"]
    search_fields = ["sku", "name", "description"]
    list_editable = ["active"]
    actions = ["deactivate", "activate"]

    @admin.action(description="Mark inactive (never recommended)", permissions=["change"])
    def deactivate(self, request, queryset) -> None:
        changed = products_set_active(products=queryset, active=False)
        self.message_user(request, f"Deactivated {changed} product(s).")

    @admin.action(description="Mark active", permissions=["change"])
    def activate(self, request, queryset) -> None:
        changed = products_set_active(products=queryset, active=True)
        self.message_user(request, f"Activated {changed} product(s).")
