"""Admin lists that stay fast at millions of rows.

Django's change list counts every list it shows (`SELECT COUNT(*)` over the whole filtered
table: seconds at a million customers or ten million events), offers every page number of it,
and lets anyone ask for facet counts per filter choice (one more count per choice). Here:

- a list is counted up to COUNT_CAP rows (reading at most that many index entries); beyond
  that, an unfiltered list shows PostgreSQL's estimate ("about 1,000,000 customers": the
  planner's row estimate for the list's query, from the table's statistics), and a filtered or
  searched one shows "10,000+", whose estimate could be far off;
- pages go as deep as MAX_PAGES (offsets past that read more rows than a page is worth; a
  filter, a search or the other sort order reaches the rest);
- facet counts are off.

ScaledLists is part of every WorkspaceScopedAdmin (crm.admin.scope); other admins over big
tables add it themselves.
"""

import copy
import json
from datetime import datetime, timedelta

from django.contrib import admin
from django.contrib.admin.templatetags import admin_list
from django.contrib.admin.views.main import ChangeList
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Max, Min
from django.utils import timezone
from django.utils.functional import cached_property

COUNT_CAP = 10_000
MAX_PAGES = 1_000


def estimated_rows(queryset) -> int | None:
    """PostgreSQL's estimate of how many rows `queryset` holds (no rows are read), or None on
    a database that gives none."""
    if connections[queryset.db].vendor != "postgresql":
        return None
    plan = json.loads(queryset.order_by().explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])


def _about(n: int) -> int:
    """`n` to three significant figures: an estimate shown to the unit would claim more than
    it knows."""
    digits = len(str(n))
    return n if digits <= 3 else round(n, 3 - digits)


class ScaledPaginator(Paginator):
    """Counts to COUNT_CAP at most; past it, the planner's estimate where `estimate` (an
    unfiltered list) or COUNT_CAP itself. `count_text` is what the page shows for the count;
    `exact` says whether it is one."""

    def __init__(self, object_list, per_page, orphans=0, allow_empty_first_page=True, **kwargs):
        self.estimate = kwargs.pop("estimate", False)
        super().__init__(object_list, per_page, orphans, allow_empty_first_page, **kwargs)
        self.exact = True
        self.count_text = ""

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if not hasattr(rows, "query") or rows.query.is_sliced:  # a list, or a bounded one
            n = len(rows) if not hasattr(rows, "query") else rows.count()
            self.count_text = f"{n:,}"
            return n
        # The slice makes Django count a LIMITed subquery: the database stops at the cap.
        counted = rows.order_by()[: COUNT_CAP + 1].count()
        if counted <= COUNT_CAP:
            self.count_text = f"{counted:,}"
            return counted
        self.exact = False
        estimated = estimated_rows(rows) if self.estimate else None
        if estimated is not None and estimated > COUNT_CAP:
            estimated = _about(estimated)
            self.count_text = f"about {estimated:,}"
            return estimated
        self.count_text = f"{COUNT_CAP:,}+"
        return COUNT_CAP

    @cached_property
    def num_pages(self) -> int:
        pages = Paginator.num_pages.func(self)
        return pages if self.exact else min(pages, MAX_PAGES)


class ScaledChangeList(ChangeList):
    """A change list paged by ScaledPaginator: estimated where nothing narrows the list."""

    def get_results(self, request) -> None:
        # Django's get_results asks the admin for its paginator; this one says whether the
        # list is narrowed (a filter, the date drill-down, any lookup in the query string, a
        # search), which the admin cannot.
        narrowed = bool(self.query or self.get_filters_params())
        request._scaled_list_estimate = not narrowed
        try:
            super().get_results(request)
        finally:
            del request._scaled_list_estimate
        self.count_text = getattr(self.paginator, "count_text", "") or f"{self.result_count:,}"
        self.count_exact = getattr(self.paginator, "exact", True)
        rows = getattr(self.model_admin, "annotate_page", None)
        if rows is not None:
            # Per-row figures (a customer's orders) for the page's rows only: as an annotation
            # on the list's query they would be computed for every row before the page.
            self.result_list = rows(request, list(self.result_list))


class ScaledLists:
    """For a ModelAdmin over a big table: ScaledChangeList, ScaledPaginator, no facet counts,
    no full-table count. An admin may define `annotate_page(request, rows) -> rows` to add
    per-row figures to the page it shows."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    paginator = ScaledPaginator

    def get_changelist(self, request, **kwargs):
        return ScaledChangeList

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        if not issubclass(self.paginator, ScaledPaginator):
            return super().get_paginator(
                request, queryset, per_page, orphans, allow_empty_first_page
            )
        return self.paginator(
            queryset,
            per_page,
            orphans,
            allow_empty_first_page,
            estimate=getattr(request, "_scaled_list_estimate", False),
        )


class _SpanDates:
    """A change list's queryset as Django's date drill-down sees it, with the years, months or
    days it offers read from the span of the rows (MIN and MAX, two probes of an index on the
    date) instead of SELECT DISTINCT date_trunc(...) over every row: half a million orders took
    a quarter of a second per page. A year, month or day in the span without rows is offered
    too; choosing it shows an empty list."""

    def __init__(self, queryset) -> None:
        self.queryset = queryset

    def aggregate(self, **kwargs):
        return self.queryset.aggregate(**kwargs)

    def _span(self, field_name: str, kind: str) -> list:
        bounds = self.queryset.aggregate(first=Min(field_name), last=Max(field_name))
        first, last = bounds["first"], bounds["last"]
        if first is None or last is None:
            return []
        if isinstance(first, datetime):
            first, last = timezone.localtime(first), timezone.localtime(last)
        if kind == "year":
            at = first.replace(month=1, day=1)
        elif kind == "month":
            at = first.replace(day=1)
        else:
            at = first
        end = last.date() if isinstance(last, datetime) else last
        steps = []
        while (at.date() if isinstance(at, datetime) else at) <= end:
            steps.append(at)
            if kind == "year":
                at = at.replace(year=at.year + 1)
            elif kind == "month":
                at = at.replace(year=at.year + at.month // 12, month=at.month % 12 + 1)
            else:
                at += timedelta(days=1)
        return steps

    def dates(self, field_name: str, kind: str) -> list:
        return self._span(field_name, kind)

    datetimes = dates


def span_date_hierarchy(cl) -> dict:
    """Django's date drill-down for `cl`, its choices read by _SpanDates."""
    spanned = copy.copy(cl)
    spanned.queryset = _SpanDates(cl.queryset)
    return admin_list.date_hierarchy(spanned)
