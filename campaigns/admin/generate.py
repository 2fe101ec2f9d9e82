"""The generate-variants page's form: the brief's fields, drawn as the admin draws its own
forms, and a product picker that searches the campaign's workspace's catalogue as staff type
(the admin's select2 autocomplete, fed by CampaignAdmin.generate_products: that workspace's
products only)."""

import json

from django import forms
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AutocompleteSelectMultiple
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse

from crm.models import Workspace
from crm.selectors.products import product_labels, product_pick
from crm.selectors.trending_products import TrendingProduct
from marketing_ai.ml.language import copywriter

TERM_LENGTH = 100
MAX_PICKED = 20  # the brief takes 5 at most; the service says so beyond that


class ProductPicker(AutocompleteSelectMultiple):
    """The admin's autocomplete widget over products of one workspace, searched at `url`. Only
    the chosen products are rendered as options; the others come from `url` as staff type."""

    def __init__(self, url: str = "", attrs=None, choices=()) -> None:
        super().__init__(field=None, admin_site=None, attrs=attrs, choices=choices)
        self.url = url

    def get_url(self) -> str:
        return self.url

    def build_attrs(self, base_attrs, extra_attrs=None):
        attrs = forms.SelectMultiple.build_attrs(self, base_attrs, extra_attrs=extra_attrs)
        css = attrs.get("class", "")
        attrs.update(
            {
                "data-ajax--cache": "true",
                "data-ajax--delay": 250,
                "data-ajax--type": "GET",
                "data-ajax--url": self.get_url(),
                "data-theme": "admin-autocomplete",
                "data-allow-clear": json.dumps(not self.is_required),
                "data-placeholder": "Search by SKU or name",
                "data-width": "30em",
                "lang": self.i18n_name,
                "class": f"{css} admin-autocomplete".strip(),
            }
        )
        return attrs

    def optgroups(self, name, value, attrs=None):
        return forms.SelectMultiple.optgroups(self, name, value, attrs)


class ProductsField(forms.Field):
    """The SKUs picked, in order, each once."""

    widget = ProductPicker

    def to_python(self, value) -> list[str]:
        values = [value] if isinstance(value, str) else list(value or [])
        picked = list(dict.fromkeys(str(v).strip() for v in values if str(v).strip()))
        if len(picked) > MAX_PICKED:
            raise forms.ValidationError(f"name at most 5 products (got {len(picked)})")
        if any(len(sku) > 64 for sku in picked):
            raise forms.ValidationError("a SKU has at most 64 characters")
        return picked


class GenerateForm(forms.Form):
    products = ProductsField(
        required=False,
        label="Products",
        help_text="type a SKU or part of a name to search this workspace's catalogue "
        "(1 to 5 in all, with those ticked below)",
    )
    rising = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Forecast to rise",
        help_text="products whose weekly units the forecast puts above their recent level (the "
        "whole 80% band of the change above zero); those ticked are featured in the brief",
    )
    goal = forms.CharField(max_length=500, help_text="what the campaign should achieve")
    tone = forms.CharField(max_length=100, required=False, help_text="empty: the brand's tone")
    language = forms.ChoiceField(choices=[(k, v) for k, v in copywriter.LANGUAGES.items()])
    offer = forms.CharField(
        max_length=300, required=False, help_text="the only discount, code or deadline to mention"
    )
    show_prices = forms.BooleanField(required=False, help_text="allow the catalogue prices")
    k = forms.IntegerField(min_value=1, max_value=8, initial=4, label="Variants")

    def __init__(
        self,
        *args,
        workspace: Workspace,
        products_url: str,
        rising: list[TrendingProduct] = (),
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        picker = self.fields["products"].widget
        picker.url = products_url
        # The options drawn are the products picked (after an error, what was sent), named.
        picked = self.data.getlist("products") if self.is_bound else []
        picked = [str(p).strip() for p in picked if str(p).strip()][:MAX_PICKED]
        labels = product_labels(workspace_id=workspace.pk, skus=picked)
        picker.choices = [(sku, labels.get(sku, sku)) for sku in dict.fromkeys(picked)]
        if rising:
            self.fields["rising"].choices = [(p.sku, p.label()) for p in rising]
        else:  # no forecast yet, or nothing rising: nothing to offer, and the form says why
            del self.fields["rising"]
            self.fields["products"].help_text += (
                "; no product is forecast to rise now (none has the whole 80% band of its change "
                "above zero in the active forecast, or there is no forecast yet)"
            )

    def admin_form(self) -> helpers.AdminForm:
        """The form as the admin's own pages lay one out (admin/includes/fieldset.html)."""
        return helpers.AdminForm(self, [("Brief", {"fields": list(self.fields)})], {})


def products_answer(request: HttpRequest, workspace: Workspace) -> HttpResponse:
    """GET ?term=&page=: the picker's search over `workspace`'s products; 400 with the field's
    message for a term over TERM_LENGTH characters or a page that is not a whole number."""
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    term = request.GET.get("term", "")
    page = request.GET.get("page", "1") or "1"
    errors = {}
    if len(term) > TERM_LENGTH:
        errors["term"] = [f"at most {TERM_LENGTH} characters"]
    if not (page.isascii() and page.isdigit() and 1 <= int(page) <= 10_000):
        errors["page"] = ["a whole number from 1 to 10000"]
    if errors:
        return JsonResponse({"errors": errors}, status=400)
    return JsonResponse(product_pick(workspace_id=workspace.pk, term=term, page=int(page)))
