"""`{% recommend customer 4 as products %}` in e-mail and page templates.

    {% load recommendations %}
    {% recommend customer 4 as picks %}
    {% for p in picks %}<a href="...">{{ p.name }}</a> {{ p.price }} {{ p.currency }}{% endfor %}

`{{ picks|product_names }}` renders them as a comma-separated list of names. Customers the model
has not seen get the most popular products; a workspace without a trained recommender gets
nothing (the loop is empty).
"""

from django import template
from django.utils.html import format_html_join

from crm.models import Customer

register = template.Library()


@register.simple_tag
def recommend(customer: Customer, count: int = 4) -> list[dict] | str:
    # Imported here: Django loads every tag library when templates start, and the
    # recommendation service brings numpy with it.
    from crm.services.recommendations import recommendations_for

    if not isinstance(customer, Customer):
        return []
    return recommendations_for(customer=customer, limit=max(1, min(int(count), 20)))["results"]


@register.filter
def product_names(products: list[dict]) -> str:
    return format_html_join(", ", "{}", ((p["name"],) for p in products))
