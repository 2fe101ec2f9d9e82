"""Segment writes: definitions, and the refresh of their materialised memberships."""

from collections.abc import Iterable

from django.db import connection, transaction
from django.utils import timezone

from crm import segments
from crm.models import Customer, Segment, SegmentMembership, Workspace


def segment_save(
    *,
    workspace: Workspace,
    name: str,
    rules: dict | None = None,
    kind: str = Segment.Kind.RULES,
    description: str = "",
    segment: Segment | None = None,
) -> Segment:
    """Creates or changes a segment; rules are compiled first, so a bad tree raises RuleError."""
    if kind == Segment.Kind.RULES:
        segments.compile_rules(workspace, rules)
    segment = segment or Segment(workspace=workspace)
    segment.name, segment.kind, segment.description = name, kind, description
    segment.rules = rules or {} if kind == Segment.Kind.RULES else {}
    with transaction.atomic():  # a duplicate name fails alone, not the caller's transaction
        segment.save()
    return segment


@transaction.atomic
def segment_refresh(*, segment: Segment, customer_ids: Iterable[int] | None = None) -> dict:
    """Brings a rules segment's memberships up to date; returns {"added": n, "removed": m}.

    With `customer_ids`, only those customers are re-evaluated (after new events); otherwise
    everyone. Two set-based statements: INSERT ... SELECT of new members and DELETE of those
    who no longer match, so the work stays in the database whatever the segment's size.
    """
    if segment.kind != Segment.Kind.RULES:
        return {"added": 0, "removed": 0}
    ids = None if customer_ids is None else list(customer_ids)
    matching = segments.customers_matching(segment.workspace, segment.rules, customer_ids=ids)
    match_sql, match_params = matching.values("id").query.sql_with_params()
    table = SegmentMembership._meta.db_table
    with connection.cursor() as cursor:
        # The rule is evaluated once into a temporary table; both statements read it.
        cursor.execute("DROP TABLE IF EXISTS segment_match")
        cursor.execute(f"CREATE TEMPORARY TABLE segment_match AS {match_sql}", match_params)
        cursor.execute(
            f"INSERT INTO {table} (segment_id, customer_id, added_at) "  # noqa: S608
            "SELECT %s, m.id, %s FROM segment_match m "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} s "
            "WHERE s.segment_id = %s AND s.customer_id = m.id)",
            [segment.pk, timezone.now(), segment.pk],
        )
        added = cursor.rowcount
        scope = "" if ids is None else f"AND customer_id IN ({', '.join(['%s'] * len(ids))})"
        cursor.execute(
            f"DELETE FROM {table} WHERE segment_id = %s {scope} "  # noqa: S608
            "AND customer_id NOT IN (SELECT id FROM segment_match)",
            [segment.pk, *(ids or [])],
        )
        removed = cursor.rowcount
        cursor.execute("DROP TABLE segment_match")
    count = SegmentMembership.objects.filter(segment=segment).count()
    Segment.objects.filter(pk=segment.pk).update(member_count=count, refreshed_at=timezone.now())
    return {"added": added, "removed": removed, "members": count}


def segments_refresh_for_customers(*, workspace: Workspace, customer_ids: list[int]) -> int:
    """Re-evaluates every rules segment of `workspace` for these customers (incremental refresh
    after their events, orders or scores changed); returns how many segments it looked at."""
    rule_segments = list(Segment.objects.filter(workspace=workspace, kind=Segment.Kind.RULES))
    for segment in rule_segments:
        segment_refresh(segment=segment, customer_ids=customer_ids)
    return len(rule_segments)


def segment_add_members(*, segment: Segment, customer_ids: list[int]) -> int:
    """Adds customers of the segment's workspace to a static segment; returns how many were new."""
    valid = Customer.objects.filter(
        workspace=segment.workspace, pk__in=customer_ids, erased_at__isnull=True
    ).values_list("pk", flat=True)
    existing = set(
        SegmentMembership.objects.filter(segment=segment, customer_id__in=valid).values_list(
            "customer_id", flat=True
        )
    )
    new = [SegmentMembership(segment=segment, customer_id=pk) for pk in valid if pk not in existing]
    SegmentMembership.objects.bulk_create(new, ignore_conflicts=True)
    count = SegmentMembership.objects.filter(segment=segment).count()
    Segment.objects.filter(pk=segment.pk).update(member_count=count, refreshed_at=timezone.now())
    return len(new)
