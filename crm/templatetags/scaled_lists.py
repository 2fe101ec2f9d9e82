"""The admin's date drill-down for big tables (crm.admin.lists.span_date_hierarchy): a change
list template puts `{% span_date_hierarchy cl %}` where Django's has `{% date_hierarchy cl %}`."""

from django import template
from django.contrib.admin.templatetags.base import InclusionAdminNode

from crm.admin.lists import span_date_hierarchy

register = template.Library()


@register.tag(name="span_date_hierarchy")
def span_date_hierarchy_tag(parser, token):
    return InclusionAdminNode(
        parser,
        token,
        func=span_date_hierarchy,
        template_name="date_hierarchy.html",
        takes_context=False,
    )
