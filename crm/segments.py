"""The segment rule language, compiled to one SQL query over customers.

A rule tree is JSON:

    {"all": [
        {"attribute": "country", "op": "eq", "value": "GB"},
        {"orders": {"op": "gte", "value": 2}, "within_days": 90},
        {"score": "churn_risk", "op": "gt", "value": 0.6}
    ]}

Nodes:
- groups: {"all": [...]}, {"any": [...]}, {"not": node}
- {"attribute": name, "op": op, "value": v} over the customer's fields (email, country, locale,
  time_zone, first_name, last_name, phone, created_at) or custom ones as "attributes.<key>";
  ops eq, ne, in, not_in, contains, gt, gte, lt, lte, exists, not_exists
- {"event": type, "count": {"op": op, "value": n}, "within_days": d} (count defaults to >= 1)
- {"orders": {"op": op, "value": n}, "within_days": d, "metric": "count" | "revenue"}
- {"score": kind, "op": op, "value": x} over the customer's latest model score
- {"segment": id} membership of another segment of the same workspace
- {"bought_forecast": "slowing" | "rising", "within_days": d, "measure": "units" | "revenue"}
  customers who bought (within d days, optional) a product whose weekly forecast in the
  workspace's active forecast version is slowing (clearance) or rising; measure defaults to units.
  Before the first forecast run nobody matches.
The root may carry "as_of" (ISO date-time): the moment `within_days` counts back from (default:
now), so rules can be tried on historical data.

Behaviour conditions compile to `id IN (SELECT customer_id ... GROUP BY customer_id HAVING ...)`
(or NOT IN its complement when customers with nothing qualify, e.g. "fewer than 2 orders"), which
PostgreSQL runs as a hash semi-join: no per-customer subquery, no Python loop.
"""

import math
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from crm import validation as v
from crm.models import (
    Customer,
    CustomerScore,
    Event,
    ForecastTrend,
    Order,
    OrderLine,
    Segment,
    SegmentMembership,
    Workspace,
)
from crm.models.forecasts import Frequency, Level, Measure
from crm.selectors import forecasts

FIELDS = {"email", "country", "locale", "time_zone", "first_name", "last_name", "phone",
          "created_at"}  # fmt: skip
COMPARE = {"eq": "exact", "gt": "gt", "gte": "gte", "lt": "lt", "lte": "lte"}
MAX_NODES = 200


class RuleError(v.Invalid):
    pass


def customers_matching(
    workspace: Workspace,
    rules: dict,
    *,
    now: datetime | None = None,
    customer_ids: list[int] | None = None,
    check_references: bool = False,
) -> QuerySet[Customer]:
    """The live customers of `workspace` that `rules` select (a lazy queryset: one query).

    With `customer_ids`, only those customers are considered, and every behaviour subquery is
    narrowed to them too, so re-checking a thousand customers reads their rows, not everyone's.
    `check_references`: refuse segment ids that are not the workspace's (as compile_rules does);
    off for rules already saved, where a segment deleted since simply has no members: one
    dangling reference must not stop the nightly refresh of every other segment.
    """
    customers = Customer.objects.filter(workspace=workspace, erased_at__isnull=True)
    if customer_ids is not None:
        customers = customers.filter(pk__in=customer_ids)
    where = compile_rules(
        workspace, rules, now=now, customer_ids=customer_ids, check_references=check_references
    )
    return customers.filter(where)


def compile_rules(
    workspace: Workspace,
    rules: Any,
    *,
    now: datetime | None = None,
    customer_ids: list[int] | None = None,
    check_references: bool = True,
) -> Q:
    """A Q over Customer for the rule tree; raises RuleError naming the bad node. This is what
    a rule tree is checked with before it is saved, so by default a {"segment": id} must name a
    segment of `workspace` (one query per such node)."""
    if not isinstance(rules, dict) or not rules:
        raise RuleError("rules must be a non-empty JSON object")
    try:  # NUL in a value, integers beyond bigint: they would reach the SQL
        v.json_value(rules)
    except v.Invalid as exc:
        raise RuleError(f"rules: {exc}") from None
    rules = dict(rules)
    if "as_of" in rules:
        try:
            now = v.moment(rules.pop("as_of"))
        except v.Invalid as exc:
            raise RuleError(f"as_of: {exc}") from None
    compiler = _Compiler(workspace, now or timezone.now(), customer_ids, check_references)
    return compiler.node(rules, "rules")


class _Compiler:
    def __init__(
        self, workspace: Workspace, now: datetime, customer_ids=None, check_references=True
    ) -> None:
        self.workspace = workspace
        self.now = now
        self.customer_ids = customer_ids
        self.check_references = check_references
        self.nodes = 0
        # True while compiling the children of an "all" group that also filters on customer
        # attributes: behaviour counts are then checked per remaining customer (see _per_customer).
        self.correlated = False

    def _narrow(self, rows: QuerySet) -> QuerySet:
        return rows if self.customer_ids is None else rows.filter(customer_id__in=self.customer_ids)

    def node(self, node: Any, path: str) -> Q:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise RuleError(f"at most {MAX_NODES} conditions")
        if not isinstance(node, dict) or not node:
            raise RuleError(f"{path}: each condition must be a JSON object")
        if "all" in node or "any" in node:
            key = "all" if "all" in node else "any"
            children = node[key]
            if not isinstance(children, list) or not children:
                raise RuleError(f"{path}.{key}: must be a non-empty list")
            outer = self.correlated
            self.correlated = key == "all" and any(
                isinstance(child, dict) and "attribute" in child for child in children
            )
            parts = [self.node(child, f"{path}.{key}[{i}]") for i, child in enumerate(children)]
            self.correlated = outer
            combined = parts[0]
            for part in parts[1:]:
                combined = combined & part if key == "all" else combined | part
            return combined
        if "not" in node:
            return ~self.node(node["not"], f"{path}.not")
        for kind in ("attribute", "event", "orders", "score", "segment", "bought_forecast"):
            if kind in node:
                return getattr(self, kind)(node, path)
        raise RuleError(
            f"{path}: expected one of all, any, not, attribute, event, orders, score, segment, "
            "bought_forecast"
        )

    # --- conditions on the customer row ---------------------------------------------------
    def attribute(self, node: dict, path: str) -> Q:
        name, op, value = node["attribute"], node.get("op", "eq"), node.get("value")
        if not isinstance(name, str):
            raise RuleError(f"{path}.attribute: must be a field name")
        if name in FIELDS:
            lookup = name
            value = self._field_value(name, value, op, path)
        elif name.startswith("attributes.") and len(name) > len("attributes."):
            key = name[len("attributes.") :]
            if "__" in key:
                raise RuleError(f"{path}.attribute: custom attribute names may not contain '__'")
            lookup = f"attributes__{key}"
        else:
            raise RuleError(
                f"{path}.attribute: unknown field {name!r}; use one of "
                f"{', '.join(sorted(FIELDS))} or attributes.<key>"
            )
        if op in ("exists", "not_exists"):
            present = Q(**{f"{lookup}__isnull": False})
            if name in FIELDS and name != "created_at":
                present &= ~Q(**{lookup: ""})
            return present if op == "exists" else ~present
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                raise RuleError(f"{path}.value: '{op}' needs a non-empty list")
            q = Q(**{f"{lookup}__in": value})
            return q if op == "in" else ~q
        if op == "ne":
            return ~Q(**{lookup: value})
        if op == "contains":
            if not isinstance(value, str):
                raise RuleError(f"{path}.value: 'contains' needs a string")
            return Q(**{f"{lookup}__icontains": value})
        if op not in COMPARE:
            raise RuleError(f"{path}.op: unknown operator {op!r}")
        if value is None or isinstance(value, dict | list):
            raise RuleError(f"{path}.value: needs a single value")
        return Q(**{f"{lookup}__{COMPARE[op]}": value})

    def _field_value(self, name: str, value: Any, op: str, path: str) -> Any:
        if op in ("exists", "not_exists"):
            return None
        cleaners = {"email": lambda x: str(x).lower(), "country": lambda x: str(x).upper()}
        if name == "created_at":
            cleaners[name] = v.moment
        clean = cleaners.get(name, lambda x: x)
        try:
            return [clean(x) for x in value] if isinstance(value, list) else clean(value)
        except v.Invalid as exc:
            raise RuleError(f"{path}.value: {exc}") from None

    # --- behaviour: events and orders ------------------------------------------------------
    def _since(self, node: dict, path: str) -> datetime | None:
        days = node.get("within_days")
        if days is None:
            return None
        if isinstance(days, bool) or not isinstance(days, int | float) or not 0 < days <= 36500:
            raise RuleError(f"{path}.within_days: a number of days between 1 and 36500")
        try:
            return self.now - timedelta(days=days)
        except OverflowError:  # as_of in year 1
            raise RuleError(f"{path}.within_days: reaches back before year 1 from as_of") from None

    def _threshold(self, spec: Any, path: str, default=("gte", 1)) -> tuple[str, float]:
        if spec is None:
            return default
        if not isinstance(spec, dict) or spec.get("op") not in COMPARE or "value" not in spec:
            raise RuleError(f"{path}: use {{'op': 'gte', 'value': 2}} (op: eq, gt, gte, lt, lte)")
        value = spec["value"]
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise RuleError(f"{path}.value: a number, 0 or more")
        return spec["op"], value

    @staticmethod
    def _having(op: str, value: float, zero_matches: bool, grouped: QuerySet, agg: str) -> Q:
        """Customers whose aggregate satisfies `op value`, where customers with no rows count as
        zero. Written as IN (...) of the rows that qualify, or NOT IN (...) of those that don't,
        whichever needs no row for customers without any."""
        negate = {"lt": "gte", "lte": "gt", "eq": None}
        if not zero_matches:
            ids = grouped.filter(**{f"{agg}__{COMPARE[op]}": value}).values("customer_id")
            return Q(pk__in=ids)
        if op == "eq":  # value is 0 here: nobody with a non-zero aggregate
            ids = grouped.exclude(**{agg: 0}).values("customer_id")
        else:
            ids = grouped.filter(**{f"{agg}__{negate[op]}": value}).values("customer_id")
        return ~Q(pk__in=ids)

    @staticmethod
    def _zero_matches(op: str, value: float) -> bool:
        return {
            "eq": value == 0,
            "gt": False,
            "gte": value <= 0,
            "lt": value > 0,
            "lte": value >= 0,
        }[op]

    def event(self, node: dict, path: str) -> Q:
        event_type = node["event"]
        if not isinstance(event_type, str) or not event_type:
            raise RuleError(f"{path}.event: an event type such as 'view'")
        op, value = self._threshold(node.get("count"), f"{path}.count")
        # No workspace filter inside: a customer's events are all in its workspace, and the
        # per-customer probe then reads the (customer, occurred_at) index alone.
        rows = Event.objects.filter(type=event_type)
        since = self._since(node, path)
        if since is not None:
            rows = rows.filter(occurred_at__gte=since, occurred_at__lte=self.now)
        where = node.get("where")
        if where is not None:
            if not isinstance(where, dict):
                raise RuleError(f"{path}.where: an object of property: value")
            for key, expected in where.items():
                if not isinstance(key, str) or "__" in key:
                    raise RuleError(f"{path}.where: property names may not contain '__'")
                rows = rows.filter(**{f"properties__{key}": expected})
        if self.correlated:
            return self._per_customer(rows, op, value)
        rows = self._narrow(rows.filter(workspace=self.workspace))
        grouped = rows.values("customer_id").annotate(n=Count("*"))
        return self._having(op, value, self._zero_matches(op, value), grouped, "n")

    @staticmethod
    def _per_customer(rows: QuerySet, op: str, value: float) -> Q:
        """The count condition as "at least k rows" probes per customer: EXISTS (... OFFSET k-1
        LIMIT 1) stops at the k-th row it finds on the customer's own index entries. Cheaper than
        aggregating everyone's rows once attribute conditions have narrowed the customers."""
        mine = rows.filter(customer_id=OuterRef("pk")).order_by().values("pk")

        def at_least(k: int) -> Q:
            return Q(pk__isnull=False) if k <= 0 else Q(Exists(mine[k - 1 : k]))

        if op == "gte":
            return at_least(math.ceil(value))
        if op == "gt":
            return at_least(math.floor(value) + 1)
        if op == "lt":
            return ~at_least(math.ceil(value))
        if op == "lte":
            return ~at_least(math.floor(value) + 1)
        if value != int(value):  # eq with a fraction: no count equals it
            return Q(pk__in=[])
        return at_least(int(value)) & ~at_least(int(value) + 1)

    def orders(self, node: dict, path: str) -> Q:
        op, value = self._threshold(node.get("orders"), f"{path}.orders")
        metric = node.get("metric", "count")
        if metric not in ("count", "revenue"):
            raise RuleError(f"{path}.metric: 'count' or 'revenue'")
        rows = Order.objects.filter(customer__isnull=False, status=Order.Status.PLACED)
        since = self._since(node, path)
        if since is not None:
            rows = rows.filter(placed_at__gte=since, placed_at__lte=self.now)
        if metric == "count":
            rows = rows.filter(kind=Order.Kind.ORDER)
            if self.correlated:
                return self._per_customer(rows, op, value)
        rows = self._narrow(rows.filter(workspace=self.workspace))
        if metric == "count":
            grouped = rows.values("customer_id").annotate(n=Count("*"))
        else:  # returns subtract from revenue
            grouped = rows.values("customer_id").annotate(n=Sum("total"))
        return self._having(op, value, self._zero_matches(op, value), grouped, "n")

    # --- model scores and other segments ----------------------------------------------------
    def score(self, node: dict, path: str) -> Q:
        kind, op, value = node["score"], node.get("op"), node.get("value")
        if not isinstance(kind, str) or not kind:
            raise RuleError(f"{path}.score: a score kind such as 'churn_risk'")
        if op not in COMPARE:
            raise RuleError(f"{path}.op: one of {', '.join(COMPARE)}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RuleError(f"{path}.value: a number")
        ids = self._narrow(
            CustomerScore.objects.filter(
                workspace=self.workspace, kind=kind, **{f"value__{COMPARE[op]}": value}
            )
        ).values("customer_id")
        return Q(pk__in=ids)

    def segment(self, node: dict, path: str) -> Q:
        try:
            segment_id = v.identifier(node["segment"])
        except v.Invalid as exc:
            raise RuleError(f"{path}.segment: a segment id: {exc}") from None
        if self.check_references and not (
            Segment.objects.filter(pk=segment_id, workspace=self.workspace).exists()
        ):
            # Another workspace's segment is named the same way as one that never existed.
            raise RuleError(f"{path}.segment: no segment {segment_id} in this workspace")
        ids = self._narrow(
            SegmentMembership.objects.filter(
                segment_id=segment_id, segment__workspace=self.workspace
            )
        ).values("customer_id")
        return Q(pk__in=ids)

    def bought_forecast(self, node: dict, path: str) -> Q:
        direction = node["bought_forecast"]
        if direction not in (ForecastTrend.Direction.SLOWING, ForecastTrend.Direction.RISING):
            raise RuleError(f"{path}.bought_forecast: 'slowing' or 'rising'")
        measure = node.get("measure", Measure.UNITS)
        if measure not in Measure.values:
            raise RuleError(f"{path}.measure: 'units' or 'revenue'")
        since = self._since(node, path)
        version = forecasts.active_version(self.workspace.pk)
        if version is None:  # no forecast yet: a refresh after the first run fills the segment
            return Q(pk__in=[])
        # The version is fixed when the rule compiles (each refresh, each live count), so a
        # segment follows the forecast that is active then, not the one it was saved under.
        skus = ForecastTrend.objects.filter(
            workspace=self.workspace,
            model_version=version,
            level=Level.PRODUCT,
            measure=measure,
            frequency=Frequency.WEEK,
            direction=direction,
        ).values("key")
        lines = OrderLine.objects.filter(
            order__workspace=self.workspace,
            order__status=Order.Status.PLACED,
            order__kind=Order.Kind.ORDER,
            order__customer__isnull=False,
            product__sku__in=skus,
        )
        if since is not None:
            lines = lines.filter(order__placed_at__gte=since, order__placed_at__lte=self.now)
        if self.customer_ids is not None:
            lines = lines.filter(order__customer_id__in=self.customer_ids)
        return Q(pk__in=lines.values("order__customer_id"))


def uses_behaviour(rules: Any) -> bool:
    """Whether the tree looks at events, orders or scores (so new events may change it)."""
    if isinstance(rules, dict):
        if {"event", "orders", "score", "segment", "bought_forecast"} & set(rules):
            return True
        return any(uses_behaviour(child) for child in rules.values())
    if isinstance(rules, list):
        return any(uses_behaviour(child) for child in rules)
    return False


def windows(rules: Any) -> list[float]:
    """Every `within_days` in the tree (rules already checked by compile_rules)."""
    if isinstance(rules, dict):
        found = [rules["within_days"]] if isinstance(rules.get("within_days"), int | float) else []
        return found + [d for child in rules.values() for d in windows(child)]
    if isinstance(rules, list):
        return [d for child in rules for d in windows(child)]
    return []


def as_of(rules: Any) -> datetime | None:
    """The root's `as_of` moment, or None where the windows count back from now."""
    if not isinstance(rules, dict) or "as_of" not in rules:
        return None
    try:
        return v.moment(rules["as_of"])
    except v.Invalid:
        return None
