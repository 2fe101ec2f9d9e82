from collections.abc import Callable

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import Count
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from crm import selectors
from crm import validation as v
from crm.admin.scope import (
    IndexedValuesFilter,
    ScopedInline,
    WorkspaceScopedAdmin,
    current_workspace,
    user_workspaces,
    visible_workspace_ids,
)
from crm.importers.customers_csv import cell_limit, decode_upload, import_customers_csv
from crm.models import Consent, Customer, CustomerScore, Event, ExternalIdentity, Order, OrderLine
from crm.selectors.reasons import model_segments, reason_sentences
from crm.selectors.search import customer_search
from crm.services import order_delete, privacy_erase
from crm.support.links import customer_chat_url

# Panels other apps add to the customer page (campaigns' journeys, say) without crm importing
# them: each is called with the request and the customer and answers HTML, or "" for nothing.
CUSTOMER_PANELS: list[Callable[[HttpRequest, Customer], str]] = []


def customer_panel(panel: Callable[[HttpRequest, Customer], str]):
    """Registers `panel` (a decorator) to be shown on every customer's page, in the order
    registered."""
    CUSTOMER_PANELS.append(panel)
    return panel


class IdentityInline(admin.TabularInline):
    model = ExternalIdentity
    fields = ["source", "external_id", "created_at"]
    readonly_fields = ["created_at"]
    extra = 0


class ConsentInline(admin.TabularInline):
    model = Consent
    fields = ["channel", "status", "source", "updated_at"]
    extra = 0


class ScoreInline(admin.TabularInline):
    model = CustomerScore
    fields = ["kind", "value", "why", "model_version", "computed_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    @admin.display(description="why")
    def why(self, score: CustomerScore) -> str:
        """The reasons in words (the stored data stay in the API and the export)."""
        sentences = reason_sentences(kind=score.kind, value=score.value, reasons=score.reasons)
        if not sentences:
            return "–"
        return format_html_join(mark_safe("<br>"), "{}", ((s,) for s in sentences))

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class ImportForm(forms.Form):
    workspace = forms.ModelChoiceField(queryset=None)
    file = forms.FileField(help_text="CSV with a header row, UTF-8 or Excel's Windows-1252")
    source = forms.CharField(initial="csv", help_text="system the external_id column comes from")

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workspace"].queryset = user_workspaces(request)
        self.fields["workspace"].initial = current_workspace(request)


class CustomerForm(forms.ModelForm):
    """The customer's edit form, holding attributes to the API's rules (crm.validation): a value
    nested too deep or with a NUL would be stored, then fail every list and export."""

    class Meta:
        model = Customer
        fields = ["attributes"]  # the admin adds the others

    def clean_attributes(self):
        try:
            return v.json_object(self.cleaned_data["attributes"])
        except v.Invalid as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(Customer)
class CustomerAdmin(WorkspaceScopedAdmin):
    form = CustomerForm
    list_display = ["__str__", "email", "country", "time_zone", "orders", "created_at"]
    list_filter = [
        "workspace",
        ("country", IndexedValuesFilter),
        ("erased_at", admin.EmptyFieldListFilter),
    ]
    # Searched by customer_search (indexed prefixes and exact ids); the names are for the admin.
    search_fields = ["email", "first_name", "last_name", "phone", "identities__external_id"]
    search_help_text = (
        "An e-mail address or its beginning, a first or last name's beginning, a phone number "
        "or an external id."
    )
    readonly_fields = ["created_at", "updated_at", "erased_at", "chat_link"]
    inlines = [IdentityInline, ConsentInline, ScoreInline]
    actions = ["erase"]
    change_form_template = "admin/crm/customer/change_form.html"
    change_list_template = "admin/crm/customer/change_list.html"
    list_per_page = 50
    show_full_result_count = False  # a COUNT(*) over a million rows on every page is waste

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(customer_search(term, visible_workspace_ids(request))), False

    def annotate_page(self, request, rows: list[Customer]) -> list[Customer]:
        counts = dict(
            Order.objects.filter(customer_id__in=[c.pk for c in rows])
            .values("customer_id")
            .annotate(n=Count("id"))
            .values_list("customer_id", "n")
        )
        for customer in rows:
            customer.order_count = counts.get(customer.pk, 0)
        return rows

    @admin.display(description="orders")
    def orders(self, customer: Customer) -> int:
        return getattr(customer, "order_count", "–")

    @admin.display(description="support chat as this customer")
    def chat_link(self, customer: Customer) -> str:
        """The signed link our e-mails carry ({{ chat_url }}): the chat knows who is asking."""
        if customer.pk is None or customer.erased_at:
            return "–"
        return format_html(
            '<a href="{}" target="_blank">open the chat</a>', customer_chat_url(customer)
        )

    def save_formset(self, request, form, formset, change):
        instances = formset.save(commit=False)
        for instance in instances:
            if isinstance(instance, ExternalIdentity):
                instance.workspace_id = form.instance.workspace_id
            if isinstance(instance, Consent) and not instance.updated_at:
                instance.updated_at = timezone.now()
            instance.save()
        for obj in formset.deleted_objects:
            obj.delete()

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if customer is not None:
            extra_context["timeline"] = selectors.customer_timeline(customer=customer, limit=100)
            extra_context["recommendations"] = selectors.recommendations_for(
                customer=customer, limit=8
            )
            extra_context["model_segments"] = model_segments(customer_id=customer.pk)
            extra_context["panels"] = [
                shown for panel in CUSTOMER_PANELS if (shown := panel(request, customer))
            ]
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        upload = path(
            "import/", self.guarded_view(self.import_view, "add"), name="crm_customer_import"
        )
        return [upload, *super().get_urls()]

    def import_view(self, request: HttpRequest) -> TemplateResponse:
        """Upload a CSV of customers; the page shows the row report."""
        report = None
        form = ImportForm(request.POST or None, request.FILES or None, request=request)
        if request.method == "POST" and form.is_valid():
            report = import_customers_csv(
                workspace=form.cleaned_data["workspace"],
                stream=decode_upload(form.cleaned_data["file"].read()),
                source=form.cleaned_data["source"],
            )
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "report": report,
            "opts": self.model._meta,
            "title": "Import customers from CSV",
            "cell_limit": f"{cell_limit():,}",
        }
        return TemplateResponse(request, "admin/crm/customer/import.html", context)

    # Deleting a customer here is the privacy erasure, as DELETE /api/v1/customers/<ref> is:
    # the same tombstone, the same audit entry. A plain row delete left no record of who removed
    # the person and took the campaigns' send ledger with it (messages cascade), which the
    # erasure keeps, anonymised. An erased tombstone stays: it keeps the person out of future
    # training data.
    def delete_model(self, request: HttpRequest, obj: Customer) -> None:
        if obj.erased_at is None:
            privacy_erase(customer=obj, actor=f"admin:{request.user.username}")

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        with transaction.atomic():
            for customer in queryset.filter(erased_at__isnull=True):
                privacy_erase(customer=customer, actor=f"admin:{request.user.username}")

    def get_deleted_objects(self, objs, request: HttpRequest):
        """The confirmation page lists the customers only: their orders are kept (detached), so
        the cascade Django would show, and the permissions it would ask for, are not what
        happens."""
        objs = list(objs)
        names = [str(obj) for obj in objs]
        return names, {self.model._meta.verbose_name_plural: len(objs)}, set(), []

    @admin.action(
        description="Erase selected customers (privacy erasure, cannot be undone)",
        permissions=["delete"],  # erasure deletes the person everywhere
    )
    def erase(self, request: HttpRequest, queryset) -> None:
        count = 0
        for customer in queryset.filter(erased_at__isnull=True):
            privacy_erase(customer=customer, actor=f"admin:{request.user.username}")
            count += 1
        self.message_user(request, f"Erased {count} customer(s).")


class OrderLineInline(ScopedInline):
    model = OrderLine
    fields = ["product", "quantity", "unit_price", "amount"]
    raw_id_fields = ["product"]
    extra = 0


@admin.register(Order)
class OrderAdmin(WorkspaceScopedAdmin):
    list_display = ["external_id", "kind", "customer", "placed_at", "total", "currency", "status"]
    # No currency filter: its choices are a scan of every order (the column shows it).
    list_filter = ["workspace", "kind", "status"]
    search_fields = ["external_id"]
    date_hierarchy = "placed_at"
    raw_id_fields = ["customer"]
    inlines = [OrderLineInline]
    list_select_related = ["customer"]
    show_full_result_count = False

    # Deleting goes through the service, which refreshes the customer's cached answers.
    def delete_model(self, request, obj: Order) -> None:
        order_delete(order=obj)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for order in queryset.select_related("workspace"):
                order_delete(order=order)


@admin.register(Event)
class EventAdmin(WorkspaceScopedAdmin):
    list_display = ["type", "customer", "occurred_at", "properties"]
    list_filter = ["workspace", ("type", IndexedValuesFilter)]
    # No date drill-down: its year list is a scan of every event (seconds at ten million).
    raw_id_fields = ["customer"]
    list_select_related = ["customer"]
    show_full_result_count = False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # events are append-only

    def has_add_permission(self, request) -> bool:
        return False
