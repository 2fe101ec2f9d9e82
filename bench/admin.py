"""The admin at scale: every admin list, search, filter and detail page timed over a workspace
of 1,000,000 customers and 10,000,000 events (orders, scores, messages, runs and chats in
proportion), generated inside PostgreSQL, with the API's list of the same rows as the anchor.

    flock /work/briefs/bench-lock .venv/bin/python bench/admin.py              # 1M / 10M
    .venv/bin/python bench/admin.py --customers 20000 --events 200000         # a dev run
    .venv/bin/python bench/admin.py --reuse --label after                     # keep the data

The database (--database, default mai_scale_bench, on the server $BENCH_POSTGRES names, else
127.0.0.1:55432) is dropped and generated again unless --reuse finds it holding these sizes.
Pages are requested through Django's test Client by a logged-in staff user (a superuser with
the workspace switcher on the big workspace), in process: the time is the server's (URL
routing, middleware, queries, templates), not a browser's. Each run's p50 / p95 are stored under
its --label ("before" on the code the issue measured, "after" on today's), so the table shows
both; bench/results/admin.json keeps every label's figures.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402

ROOT = services.ROOT
TARGET_MS = 500
SERVER = "postgres://postgres@127.0.0.1:55432"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=20, help="requests per page (timed)")
    parser.add_argument("--database", default="mai_scale_bench")
    parser.add_argument("--reuse", action="store_true", help="keep a database of these sizes")
    parser.add_argument("--label", default="after", help="name of this run in the results")
    parser.add_argument("--only", default="", help="comma-separated page names to time")
    return parser.parse_args()


def database_url(name: str) -> str:
    return f"{os.environ.get('BENCH_POSTGRES', SERVER).rstrip('/')}/{name}"


def psql(url: str, sql: str) -> str:
    result = subprocess.run(["psql", url, "-Atc", sql], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else ""


# --- data ------------------------------------------------------------------------------------


def insert_select(model, values: dict[str, str], source: str, params: list | tuple = ()) -> int:
    """INSERT INTO `model`'s table SELECT ... FROM `source`: the columns named in `values` take
    that SQL expression (no parameters: `params` are `source`'s); the others take the field's
    default (now() for auto timestamps, NULL where nullable), so a column someone adds to the
    model later needs nothing here."""
    from django.db import connection
    from django.db.models import AutoField, BigAutoField
    from django.db.models.fields import NOT_PROVIDED

    columns, expressions, defaults = [], [], []
    for field in model._meta.concrete_fields:
        if field.name in values or field.column in values:
            columns.append(field.column)
            expressions.append(values.get(field.name, values.get(field.column)))
        elif isinstance(field, (AutoField, BigAutoField)) or field.db_default is not NOT_PROVIDED:
            continue
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            columns.append(field.column)
            expressions.append("now()")
        elif field.has_default() or not field.null:
            columns.append(field.column)
            expressions.append("%s")
            defaults.append(field.get_db_prep_save(field.get_default(), connection))
        else:
            columns.append(field.column)
            expressions.append("NULL")
    # Our own names and expressions; values go as parameters.
    table, names, selected = model._meta.db_table, ", ".join(columns), ", ".join(expressions)
    sql = f"INSERT INTO {table} ({names}) SELECT {selected} FROM {source}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [*defaults, *params])
        return cursor.rowcount


def generate(customers: int, events: int) -> dict[str, int]:
    """The big workspace's rows, generated inside PostgreSQL; a second, small workspace beside
    it, so every query has another workspace's rows to leave out. Answers the row counts."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from campaigns.models import Campaign, Message, Variant
    from crm.models import (
        Customer,
        CustomerScore,
        Event,
        Order,
        OrderLine,
        Product,
        Segment,
        Workspace,
    )
    from crm.support.models import ChatMessage, Conversation
    from workers.models import ModelVersion, TaskRun

    big = Workspace.objects.create(slug="scale", name="Scale")
    other = Workspace.objects.create(slug="other", name="Other")
    counts: dict[str, int] = {}
    for workspace, n, m in ((other, 2_000, 20_000), (big, customers, events)):
        ws = workspace.pk
        first_names = "ARRAY['Ada','Ben','Chloe','Dev','Emma','Femi','Grace','Hugo','Isla','Jon']"
        last_names = "ARRAY['Smith','Jones','Brown','Taylor','Wilson','Evans','Khan','Lee']"
        countries = "ARRAY['GB','GB','GB','US','US','FR','DE','NL','IE','ES','IT','SE']"
        counts[f"customers_{workspace.slug}"] = insert_select(
            Customer,
            {
                "workspace": f"{ws}",
                # Every tenth customer has no address (a phone-only contact).
                "email": f"CASE WHEN i %% 10 = 7 THEN NULL ELSE 'user' || i || '@{workspace.slug}"
                ".example.com' END",
                "first_name": f"({first_names})[1 + i %% 10]",
                "last_name": f"({last_names})[1 + (i / 10) %% 8]",
                "phone": "'+4477' || lpad(i::text, 8, '0')",
                "country": f"({countries})[1 + abs(hashint4(i)) %% 12]",
                "time_zone": "'Europe/London'",
                "attributes": "jsonb_build_object('plan', (ARRAY['free','pro'])[1 + i %% 2])",
                "created_at": f"now() - make_interval(secs => ({n} - i) * 90)",
            },
            "generate_series(1, %s) AS i",
            [n],
        )
        first = Customer.objects.filter(workspace=workspace).order_by("pk").first().pk
        counts[f"events_{workspace.slug}"] = insert_select(
            Event,
            {
                "workspace": f"{ws}",
                "customer": f"{first} + (h %% {n})",
                "type": "(ARRAY['view','view','view','add_to_cart','purchase','open','click'])"
                "[1 + (h / 7 %% 7)]",
                "properties": "'{}'",
                "occurred_at": "now() - make_interval(secs => (h %% (365 * 86400)))",
                "idempotency_key": "NULL",
            },
            "(SELECT abs(hashint4(i)) AS h FROM generate_series(1, %s) AS i) AS g",
            [m],
        )
        products = max(200, n // 200)
        insert_select(
            Product,
            {
                "workspace": f"{ws}",
                "sku": "'SKU-' || lpad(i::text, 6, '0')",
                "name": "(ARRAY['Mug','Lamp','Scarf','Candle','Tote','Print'])[1 + i %% 6] "
                "|| ' no. ' || i",
                "description": "'A well-made thing, number ' || i",
                "category": "(ARRAY['Home','Kitchen','Garden','Gifts','Fashion'])[1 + i %% 5]",
                "price": "(5 + i %% 95)::numeric",
                "active": "i %% 20 <> 0",
            },
            "generate_series(1, %s) AS i",
            [products],
        )
        first_product = Product.objects.filter(workspace=workspace).order_by("pk").first().pk
        orders = n // 2
        counts[f"orders_{workspace.slug}"] = insert_select(
            Order,
            {
                "workspace": f"{ws}",
                "customer": f"{first} + (abs(hashint4(i + 7)) %% {n})",
                "external_id": "'ORD-' || i",
                "kind": "CASE WHEN i %% 25 = 0 THEN 'return' ELSE 'order' END",
                "status": "CASE WHEN i %% 40 = 0 THEN 'cancelled' ELSE 'placed' END",
                "placed_at": f"now() - make_interval(secs => ({orders} - i) * 120)",
                "total": "(10 + i %% 190)::numeric",
            },
            "generate_series(1, %s) AS i",
            [orders],
        )
        first_order = Order.objects.filter(workspace=workspace).order_by("pk").first().pk
        insert_select(
            OrderLine,
            {
                "order": f"{first_order} + i - 1",
                "product": f"{first_product} + (abs(hashint4(i)) %% {products})",
                "quantity": "1 + i %% 3",
                "unit_price": "(10 + i %% 190)::numeric",
                "amount": "(10 + i %% 190)::numeric * (1 + i %% 3)",
            },
            "generate_series(1, %s) AS i",
            [orders],
        )
        insert_select(
            CustomerScore,
            {
                "workspace": f"{ws}",
                "customer": "id",
                "kind": "'churn_risk'",
                "value": "abs(hashint4(id::int)) / 2147483647.0",
                "reasons": '\'[{"feature": "recency_days", "value": 40, "contribution": 0.12}]\'',
                "computed_at": "now()",
            },
            "crm_customer WHERE workspace_id = %s",
            [ws],
        )
        for k in range(5):
            Segment.objects.create(
                workspace=workspace,
                name=f"segment {k}",
                rules={
                    "all": [
                        {"attribute": "country", "op": "eq", "value": ("GB", "FR", "DE")[k % 3]},
                        {"score": "churn_risk", "op": "gt", "value": 0.5 + k / 10},
                    ]
                },
            )
        campaigns = [
            Campaign.objects.create(
                workspace=workspace, name=f"campaign {k}", status="sent" if k < 10 else "draft"
            )
            for k in range(30)
        ]
        for campaign in campaigns:
            for name in ("A", "B"):
                Variant.objects.create(campaign=campaign, name=name, subject=f"Hello {name}")
        # One message per customer, spread over the ten sent campaigns.
        counts[f"messages_{workspace.slug}"] = insert_select(
            Message,
            {
                "token": "gen_random_uuid()",
                "campaign": f"{campaigns[0].pk} + (i %% 10)",
                "customer": f"{first} + i - 1",
                "state": "'sent'",
                "send_at": "now() - make_interval(secs => i)",
                "sent_at": "now() - make_interval(secs => i)",
                "address": f"'user' || i || '@{workspace.slug}.example.com'",
                "opened_at": "CASE WHEN i %% 4 = 0 THEN now() END",
            },
            "generate_series(1, %s) AS i",
            [n],
        )
        insert_select(
            TaskRun,
            {
                "id": "gen_random_uuid()",
                "kind": "(ARRAY['crm.tasks.train','campaigns.tasks.send','crm.tasks.score'])"
                "[1 + i %% 3]",
                "workspace": f"{ws}",
                "status": "(ARRAY['succeeded','succeeded','failed','cancelled'])[1 + i %% 4]",
                "progress": "100",
                "message": "'done ' || i",
                "created_at": "now() - make_interval(secs => i * 60)",
                "started_at": "now() - make_interval(secs => i * 60)",
                "finished_at": "now() - make_interval(secs => i * 60 - 30)",
            },
            "generate_series(1, %s) AS i",
            [max(100, n // 50)],
        )
        for k in range(40):
            ModelVersion.objects.create(
                workspace=workspace,
                family=("predict.churn", "predict.clv", "recommend.ease", "segment.rfm")[k % 4],
                version=k // 4 + 1,
                status="retired",
                metrics={"auc": 0.7},
            )
        conversations = max(100, n // 100)
        insert_select(
            Conversation,
            {
                "workspace": f"{ws}",
                "customer": f"{first} + i - 1",
                "token": f"'{ws}-' || md5(i::text)",
                "status": "(ARRAY['open','waiting','closed','closed'])[1 + i %% 4]",
                "updated_at": "now() - make_interval(secs => i * 30)",
            },
            "generate_series(1, %s) AS i",
            [conversations],
        )
        insert_select(
            ChatMessage,
            {
                "conversation": "c.id",
                "role": "(ARRAY['customer','assistant'])[1 + k %% 2]",
                "text": "'Where is my order? ' || k",
                "answered": "true",
            },
            f"{Conversation._meta.db_table} AS c CROSS JOIN generate_series(1, 4) AS k "
            "WHERE c.workspace_id = %s",
            [ws],
        )
    user_model = get_user_model()
    user_model.objects.create_superuser("bench", "bench@example.com", "bench-password")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_admin_sizes (name text, value bigint)")
        cursor.execute(
            "INSERT INTO bench_admin_sizes VALUES ('customers', %s), ('events', %s)",
            [customers, events],
        )
    return counts


def vacuum() -> None:
    # Outside a transaction: VACUUM sets the visibility map that index-only scans rely on, as
    # autovacuum would after a load this size, and ANALYZE gives the planner (and the estimated
    # counts) their statistics.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def prepared(url: str, customers: int, events: int) -> bool:
    sizes = psql(
        url, "SELECT string_agg(name || '=' || value, ',' ORDER BY name) FROM bench_admin_sizes"
    )
    return sizes == f"customers={customers},events={events}"


# --- pages -----------------------------------------------------------------------------------


def pages(workspace) -> list[tuple[str, str, str, dict | None, str | None]]:
    """(name, method, path, POST body, text the page must contain) for every page timed."""
    from django.contrib import admin
    from django.urls import reverse

    from campaigns.models import Campaign
    from crm.models import Customer, Event, Order, Product, Segment
    from crm.support.models import Conversation

    ws = workspace.slug
    customer = Customer.objects.filter(workspace=workspace).order_by("pk")[345:][:1].get()
    deep = (
        Customer.objects.filter(workspace=workspace, email__isnull=False)
        .order_by("-pk")[Customer.objects.filter(workspace=workspace).count() // 2 :][:1]
        .get()
    )
    order = Order.objects.filter(workspace=workspace).order_by("-pk").first()
    event = Event.objects.filter(workspace=workspace).order_by("-pk").first()
    product = Product.objects.filter(workspace=workspace).order_by("pk").first()
    segment = Segment.objects.filter(workspace=workspace).order_by("pk").first()
    campaign = Campaign.objects.filter(workspace=workspace).order_by("pk").first()
    conversation = Conversation.objects.filter(workspace=workspace).order_by("pk").first()

    def changelist(model) -> str:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")

    def change(obj) -> str:
        return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])

    customers = changelist(Customer)
    # Page 500 of 50 rows at full size; the middle page on a smaller dev database.
    page = max(1, min(500, Customer.objects.filter(workspace=workspace).count() // 100))
    named = [
        ("admin home", "GET", reverse("admin:index"), None, None),
        ("customers list", "GET", customers, None, None),
        ("customers page 500", "GET", f"{customers}?p={page}", None, None),
        # A middle customer's exact address, and a prefix of another's.
        ("customers search by e-mail", "GET", f"{customers}?q={deep.email}", None, deep.email),
        (
            "customers search by e-mail prefix",
            "GET",
            f"{customers}?q=user12345",
            None,
            f"user12345@{ws}",
        ),
        ("customers country filter", "GET", f"{customers}?country__exact=FR", None, None),
        (
            "customers country filter page 50",
            "GET",
            f"{customers}?country__exact=FR&p={max(1, page // 10)}",
            None,
            None,
        ),
        ("customer detail", "GET", change(customer), None, None),
        ("events list", "GET", changelist(Event), None, None),
        ("events type filter", "GET", f"{changelist(Event)}?type__exact=purchase", None, None),
        ("event detail", "GET", change(event), None, None),
        ("orders list", "GET", changelist(Order), None, None),
        ("orders status filter", "GET", f"{changelist(Order)}?status__exact=cancelled", None, None),
        ("order detail", "GET", change(order), None, None),
        ("products list", "GET", changelist(Product), None, None),
        ("products search", "GET", f"{changelist(Product)}?q=SKU-00012", None, "SKU-00012"),
        ("product detail", "GET", change(product), None, None),
        ("segments list", "GET", changelist(Segment), None, None),
        ("segment detail", "GET", change(segment), None, None),
        (
            "segment live count",
            "POST",
            reverse("admin:crm_segment_live"),
            {"workspace": workspace.pk, "rules": LIVE_RULE},
            '"count"',
        ),
        ("campaigns list", "GET", changelist(Campaign), None, None),
        ("campaign detail", "GET", change(campaign), None, None),
        ("conversations list", "GET", changelist(Conversation), None, None),
        ("conversation detail", "GET", change(conversation), None, None),
    ]
    # Every other registered admin's list (task runs, model versions, messages where the admin
    # shows them, ...): a page added later is timed without a change here.
    seen = {path.split("?")[0] for _, _, path, _, _ in named}
    for model in sorted(admin.site._registry, key=lambda m: m._meta.label):
        path = changelist(model)
        if path not in seen:
            named.append((f"{model._meta.verbose_name_plural} list", "GET", path, None, None))
    return named


# The API's lists of the same rows: what a page could cost (not "API keys list", an admin page).
ANCHORS = {
    "API customers list": "/api/v1/customers?limit=50",
    "API events list": "/api/v1/events?limit=50",
}

LIVE_RULE = {
    "all": [
        {"attribute": "country", "op": "eq", "value": "GB"},
        {"event": "view", "count": {"op": "gte", "value": 2}, "within_days": 90},
        {"score": "churn_risk", "op": "gt", "value": 0.6},
    ]
}


def time_page(client, method: str, path: str, body, expect: str | None, repeat: int):
    """Milliseconds of each of `repeat` requests, after one untimed (its first plans and
    templates); raises if the page does not answer 200 or lacks `expect`."""
    times = []
    for attempt in range(repeat + 1):
        started = time.perf_counter()
        if method == "POST":
            response = client.post(path, json.dumps(body), content_type="application/json")
        else:
            response = client.get(path)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path} answered {response.status_code}")
        if attempt == 0 and expect and expect not in response.content.decode():
            raise RuntimeError(f"{method} {path} does not show {expect!r}")
        if attempt:
            times.append(elapsed)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")


# Measured in issue 20 on the code of the time, 1M customers / 5M events (seconds).
ISSUE = {
    "customers list": 1.8,
    "customers page 500": 2.7,
    "customers search by e-mail": 3.5,
    "customers country filter": 2.1,
    "events list": 7.2,
    "segment live count": 1.2,
}


def main() -> None:
    args = arguments()
    url = database_url(args.database)
    if not (args.reuse and prepared(url, args.customers, args.events)):
        server = url.rsplit("/", 1)[0] + "/postgres"
        psql(server, f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
        subprocess.run(["psql", server, "-qc", f"CREATE DATABASE {args.database}"], check=True)
        fresh = True
    else:
        fresh = False

    with services.redis() as redis_url:
        os.environ.update(
            {
                "DATABASE_URL": url,
                "REDIS_URL": redis_url,
                "MARKETING_AI_ENV": "development",
                "DEBUG": "False",
                "API_RATE_LIMIT": "1000000/min",
                "DJANGO_SETTINGS_MODULE": "marketing_ai.settings",
            }
        )
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client

        from crm.admin.scope import SESSION_KEY
        from crm.models import Customer, Event, Workspace
        from crm.services import api_key_create

        call_command("migrate", "--noinput", verbosity=0)  # a reused database gets new indexes
        figures: dict[str, float] = {}
        if fresh:
            started = time.perf_counter()
            counts = generate(args.customers, args.events)
            vacuum()
            figures["generation_seconds"] = round(time.perf_counter() - started, 1)
            print(f"generated in {figures['generation_seconds']} s: {counts}", flush=True)
        else:
            vacuum()  # new indexes from migrate need statistics too

        workspace = Workspace.objects.get(slug="scale")
        client = Client()
        client.force_login(get_user_model().objects.get(username="bench"))
        session = client.session
        session[SESSION_KEY] = workspace.pk
        session.save()
        api_key = api_key_create(
            workspace=workspace, name=f"bench {time.time()}", scopes=["crm:read"]
        )[1]
        api = Client(HTTP_AUTHORIZATION=f"Bearer {api_key}")

        only = {name.strip() for name in args.only.split(",") if name.strip()}
        label = slug(args.label)
        results: dict[str, tuple[float, float]] = {}
        for name, method, path, body, expect in pages(workspace):
            if only and name not in only:
                continue
            times = time_page(client, method, path, body, expect, args.repeat)
            results[name] = (statistics.median(times), percentile(times, 0.95))
            figures[f"{slug(name)}_p50_ms_{label}"] = round(results[name][0], 1)
            figures[f"{slug(name)}_p95_ms_{label}"] = round(results[name][1], 1)
            print(
                f"{name:45} p50 {results[name][0]:8.1f}  p95 {results[name][1]:8.1f}  {path}",
                flush=True,
            )
        for name, path in ANCHORS.items():
            times = time_page(api, "GET", path, None, None, args.repeat)
            results[name] = (statistics.median(times), percentile(times, 0.95))
            figures[f"{slug(name)}_p50_ms_{label}"] = round(results[name][0], 1)
            figures[f"{slug(name)}_p95_ms_{label}"] = round(results[name][1], 1)
            print(
                f"{name:45} p50 {results[name][0]:8.1f}  p95 {results[name][1]:8.1f}  {path}",
                flush=True,
            )

        figures["customers"] = Customer.objects.filter(workspace=workspace).count()
        figures["events"] = Event.objects.filter(workspace=workspace).count()

    previous = {}
    path = ROOT / "bench" / "results" / "admin.json"
    if path.exists():
        previous = {k: v for k, v in json.loads(path.read_text()).items() if k != "machine"}
    merged = {**previous, **figures}
    rows = []
    for name in results:
        before = merged.get(f"{slug(name)}_p95_ms_before")
        issue = f"{ISSUE[name] * 1000:,.0f}" if name in ISSUE else "-"
        p50, p95 = results[name]
        verdict = (
            "API anchor"
            if name in ANCHORS
            else ("ok" if p95 < TARGET_MS else f"OVER {TARGET_MS} ms")
        )
        rows.append(
            (
                name,
                f"p50 {p50:,.0f} / p95 {p95:,.0f}",
                f"before p95 {before:,.0f} (issue {issue})"
                if before is not None
                else f"(issue {issue})",
                verdict,
            )
        )
    services.print_table(
        f"Admin pages ({args.label}), {figures['customers']:,} customers / "
        f"{figures['events']:,} events, ms over {args.repeat} requests",
        rows,
    )
    if args.customers == 1_000_000 and args.events == 10_000_000 and not only:
        print(f"\nwrote {services.write_results('admin', merged)}")
    else:
        print("\n(not written: results are kept for the full size and every page)")


if __name__ == "__main__":
    main()
