"""The segment builder's pick-lists on PostgreSQL at scale: the workspace's countries, event
types and score kinds and its newest data (crm.selectors.segment_choices, loose index scans),
against the plain-Django way (SELECT DISTINCT and MAX over the workspace's rows), in one run.

    .venv/bin/python bench/segment_builder.py            # 1,000,000 customers / 5,000,000 events
    .venv/bin/python bench/segment_builder.py --quick    # 100,000 / 500,000

Starts its own PostgreSQL 15 cluster (or uses BENCH_DATABASE_URL); the data are generated inside
PostgreSQL as bench/crm.py does (five countries, seven event types, one score kind).
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUICK = "--quick" in sys.argv
os.environ.setdefault("BENCH_SEGMENT_CUSTOMERS", str(100_000 if QUICK else 1_000_000))
os.environ.setdefault("BENCH_SEGMENT_EVENTS", str(500_000 if QUICK else 5_000_000))

from bench import services  # noqa: E402
from bench.crm import SEGMENT_CUSTOMERS, SEGMENT_EVENTS, generate_segment_data, timed  # noqa: E402


def plain_choices(workspace) -> dict:
    """The anchor: what the builder needs, asked the obvious way."""
    from django.db.models import Max

    from crm.models import Customer, CustomerScore, Event, Order

    def distinct(model, column):
        rows = model.objects.filter(workspace=workspace).exclude(**{column: ""})
        return list(rows.values_list(column, flat=True).distinct().order_by(column))

    newest = [
        Order.objects.filter(workspace=workspace).aggregate(m=Max("placed_at"))["m"],
        Event.objects.filter(workspace=workspace).aggregate(m=Max("occurred_at"))["m"],
    ]
    return {
        "countries": distinct(Customer, "country"),
        "event_types": distinct(Event, "type"),
        "scores": distinct(CustomerScore, "kind"),
        "newest": max(m for m in newest if m is not None),
    }


def run(database_url: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MARKETING_AI_DATA_DIR": tempfile.mkdtemp(prefix="bench-segment-builder-"),
        "MARKETING_AI_ENV": "development",
        "DEBUG": "False",
    }
    os.environ.update(env)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=services.ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "marketing_ai.settings")
    django.setup()
    from crm.models import Workspace
    from crm.selectors import segment_choices

    workspace = Workspace.objects.create(slug=f"builder-{int(time.time())}", name="Builder")
    started = time.perf_counter()
    generate_segment_data(workspace.pk)
    generated = time.perf_counter() - started

    ours_s, ours = timed(lambda: segment_choices.builder_choices(workspace=workspace))
    plain_s, plain = timed(lambda: plain_choices(workspace), repeat=3)
    for key in ("countries", "event_types", "scores", "newest"):
        assert ours[key] == plain[key], (key, ours[key], plain[key])
    newest_s, _ = timed(lambda: segment_choices.newest_data(workspace=workspace))

    size = f"{SEGMENT_CUSTOMERS:,} customers / {SEGMENT_EVENTS:,} events"
    figures = {
        "customers": SEGMENT_CUSTOMERS,
        "events": SEGMENT_EVENTS,
        "data_generation_seconds": round(generated, 1),
        "choices_ms": round(ours_s * 1000, 1),
        "choices_plain_ms": round(plain_s * 1000, 1),
        "newest_data_ms": round(newest_s * 1000, 1),
    }
    rows = [
        (
            f"builder pick-lists (countries, event types, scores, segments, newest), {size}, ms",
            f"{ours_s * 1000:.1f}",
            f"SELECT DISTINCT / MAX: {plain_s * 1000:.1f}",
            f"{plain_s / ours_s:.0f}x faster (target < 100 ms)",
        ),
        (
            "newest event or order (the live count's as-of note), ms",
            f"{newest_s * 1000:.1f}",
            "-",
            "-",
        ),
    ]
    services.print_table("Segment builder", rows)
    if not QUICK:
        print(services.write_results("segment_builder", figures))


def main() -> None:
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        run(url)
        return
    with services.postgres() as database_url:
        run(database_url)


if __name__ == "__main__":
    main()
