"""What the segment builder offers to pick from: the workspace's countries, event types, score
kinds and segments, and how new its data are (so a count of "within 90 days" on old data can
say why it finds nobody).

Each list is read with a loose index scan: a recursive query that jumps from one distinct value
to the next along the (workspace, column) index, one index probe per value, so a workspace of a
million customers or ten million events answers in as many probes as it has countries or event
types, not a scan of every row (SELECT DISTINCT would read them all). Both PostgreSQL and
SQLite run it.
"""

from datetime import datetime

from django.db import connection
from django.db.models import Max

from crm.models import Customer, CustomerScore, Event, Order, Segment, Workspace

# A builder's list, not a report: more than this many choices is a free-text field anyway.
MAX_CHOICES = 300


def distinct_values(model, column: str, workspace_id: int, limit: int = MAX_CHOICES) -> list[str]:
    """The distinct non-empty values of `column` among `model`'s rows of the workspace, in order,
    at most `limit` of them (one index probe each)."""
    table = connection.ops.quote_name(model._meta.db_table)
    col = connection.ops.quote_name(model._meta.get_field(column).column)
    ws = connection.ops.quote_name(model._meta.get_field("workspace").column)
    sql = f"""
        WITH RECURSIVE seen(v, n) AS (
            SELECT (SELECT MIN({col}) FROM {table} WHERE {ws} = %s AND {col} > ''), 1
            UNION ALL
            SELECT (SELECT MIN({col}) FROM {table} WHERE {ws} = %s AND {col} > seen.v), n + 1
            FROM seen WHERE seen.v IS NOT NULL AND n < %s
        )
        SELECT v FROM seen WHERE v IS NOT NULL
    """  # noqa: S608 (names from the model's own meta, values as parameters)
    with connection.cursor() as cursor:
        cursor.execute(sql, [workspace_id, workspace_id, limit])
        return [row[0] for row in cursor.fetchall()]


def builder_choices(*, workspace: Workspace) -> dict:
    """The pick-lists of the segment builder for `workspace`, as plain data."""
    event_types = distinct_values(Event, "type", workspace.pk)
    return {
        "countries": distinct_values(Customer, "country", workspace.pk),
        "event_types": event_types,
        "scores": distinct_values(CustomerScore, "kind", workspace.pk),
        "segments": [
            {"id": pk, "name": name}
            for pk, name in Segment.objects.filter(workspace=workspace)
            .order_by("name")
            .values_list("pk", "name")[:MAX_CHOICES]
        ],
        "newest": newest_data(workspace=workspace, event_types=event_types),
    }


def newest_data(*, workspace: Workspace, event_types: list[str] | None = None) -> datetime | None:
    """When the workspace's newest event or order happened (None with neither). Per event type
    so that each maximum is read off the end of the (workspace, type, occurred_at) index."""
    if event_types is None:
        event_types = distinct_values(Event, "type", workspace.pk)
    moments = [
        Order.objects.filter(workspace=workspace).aggregate(m=Max("placed_at"))["m"],
        *(
            Event.objects.filter(workspace=workspace, type=t).aggregate(m=Max("occurred_at"))["m"]
            for t in event_types
        ),
    ]
    moments = [m for m in moments if m is not None]
    return max(moments) if moments else None
