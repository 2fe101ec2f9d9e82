"""Schemathesis over the whole OpenAPI schema: every operation, then stateful sequences through
the links schemathesis infers (create -> read / change / delete), with a key of one workspace
that has every scope, over seeded data. Any 5xx fails the test.

Fixed seed (`derandomize`) so CI runs the same requests every time. The number of requests
sent is printed and written to var/fuzz-api.json (under MARKETING_AI_DATA_DIR).
"""

import json
import logging
import os
import time
import traceback
from pathlib import Path

import pytest
import schemathesis
from django.core.signals import got_request_exception, request_finished, request_started
from django.db import close_old_connections, transaction
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FlakyStrategyDefinition

from campaigns.models import Campaign, Variant, WebhookEndpoint
from crm import services
from crm.models import ApiKey, CustomerScore, Segment, Workspace
from marketing_ai.wsgi import application
from workers.models import TaskRun

pytestmark = pytest.mark.django_db

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))  # per operation and generation mode
STATEFUL_EXAMPLES = int(os.environ.get("FUZZ_STATEFUL_EXAMPLES", "40"))  # scenarios
FUZZ_SETTINGS = dict(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],  # no shrinking: failures are collected, not raised
    print_blob=False,
)


def seed(workspace: Workspace) -> dict:
    """A few of everything the API addresses, and the path values that reach them."""
    customers = services.customer_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "source": "shop",
                "external_id": f"c{i}",
                "email": f"c{i}@acme.io",
                "attributes": {"tier": "gold" if i % 2 else "silver", "visits": i},
                "consent": {"email": "subscribed"},
            }
            for i in range(3)
        ],
    ).ids.values()
    customers = list(customers)
    products = services.product_bulk_upsert(
        workspace=workspace,
        rows=[{"sku": f"P{i}", "name": f"Teapot {i}", "price": 10 + i} for i in range(3)],
    ).ids.values()
    orders = services.order_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "external_id": f"o{i}",
                "customer": customers[i],
                "placed_at": "2026-01-01T10:00:00Z",
                "lines": [{"sku": f"P{i}", "quantity": 2, "unit_price": 10}],
            }
            for i in range(3)
        ],
    ).ids.values()
    events = services.event_bulk_create(
        workspace=workspace,
        rows=[
            {
                "customer": customers[i],
                "type": "view",
                "occurred_at": "2026-01-02T10:00:00Z",
                "properties": {"sku": f"P{i}"},
            }
            for i in range(3)
        ],
    ).ids.values()
    CustomerScore.objects.create(
        workspace=workspace,
        customer_id=customers[0],
        kind="churn_risk",
        value=0.7,
        reasons=[{"feature": "recency_days", "contribution": 0.4}],
        computed_at=timezone.now(),
    )
    segment = Segment.objects.create(
        workspace=workspace,
        name="Gold",
        kind="rules",
        rules={
            "all": [
                {"attribute": "attributes.tier", "op": "eq", "value": "gold"},
                {"orders": {"op": "gte", "value": 1}, "within_days": 3650},
            ]
        },
    )
    static = Segment.objects.create(workspace=workspace, name="Picked", kind="static")
    campaign = Campaign.objects.create(workspace=workspace, name="Spring", channel="email")
    campaign.include_segments.add(segment)
    variant = Variant.objects.create(
        campaign=campaign,
        name="A",
        subject="Hello {{ customer.first_name }}",
        body_html="<p>Hi</p>",
        body_text="Hi",
    )
    webhook = WebhookEndpoint.objects.create(
        workspace=workspace,
        url="https://hooks.example.com/in",
        secret="s" * 32,
        events=["message.sent"],
    )
    run = TaskRun.objects.create(kind="x", workspace=workspace)
    return {
        "customer": [str(customers[0]), "ext:shop:c1", "email:c2@acme.io"],
        "product": list(products),
        "order": list(orders),
        "event": list(events),
        "segment": [segment.pk, static.pk],
        "campaign": [campaign.pk],
        "variant": [variant.pk],
        "webhook": [webhook.pk],
        "run": [str(run.pk)],
    }


def seeded_values(path: str, name: str, ids: dict) -> list:
    """The seeded objects a path parameter may name, by the resource its path is about."""
    if name == "ref":
        return ids["customer"]
    if name == "variant_pk":
        return ids["variant"]
    if name == "run_id":
        return ids["run"]
    resource = path.split("/")[3]  # /api/v1/<resource>/...
    key = {
        "products": "product",
        "orders": "order",
        "events": "event",
        "segments": "segment",
        "campaigns": "campaign",
        "webhooks": "webhook",
    }.get(resource)
    return ids[key] if key else []


class Recorder:
    """Counts requests and keeps each 5xx with its request and the server's traceback."""

    def __init__(self) -> None:
        self.requests = 0
        self.server_errors = 0
        self._seen: set[tuple[str, str]] = set()
        self.failures: list[str] = []
        self.by_operation: dict[str, int] = {}
        self._last_error = ""

    def on_exception(self, sender, request=None, **kwargs) -> None:
        self._last_error = traceback.format_exc(limit=-4)

    def record(self, label: str, case, response) -> None:
        self.requests += 1
        self.by_operation[label] = self.by_operation.get(label, 0) + 1
        if response.status_code >= 500:
            self.server_errors += 1
            cause = (self._last_error.strip().splitlines() or ["?"])[-1]
            if (label, cause) not in self._seen:  # one example of each fault per operation
                self._seen.add((label, cause))
                request = response.request
                self.failures.append(
                    f"{label} -> {response.status_code}\n  {request.method} {request.url}\n"
                    f"  body: {(request.body or b'')[:500]!r}\n{self._last_error}"
                )
        self._last_error = ""


@pytest.fixture
def fuzz_env(db, settings):
    workspace = Workspace.objects.create(slug="acme", name="Acme")
    settings.ALLOWED_HOSTS = ["*"]
    settings.CHAT_WAIT_SECONDS = 0  # no worker runs here: nothing waits for a chat reply
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "1000000/min"},
    }
    scopes = list(ApiKey.SCOPES)
    _, secret = services.api_key_create(workspace=workspace, name="fuzz", scopes=scopes)
    recorder = Recorder()
    quiet = logging.getLogger("django.request")
    level, quiet.level = quiet.level, logging.CRITICAL  # thousands of 4xx warnings otherwise
    got_request_exception.connect(recorder.on_exception)
    # As Django's test client does: the handler would otherwise close the connection that
    # holds the test's transaction after every request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield {
        "ids": seed(workspace),
        "headers": {"Authorization": f"Bearer {secret}"},
        "recorder": recorder,
    }
    got_request_exception.disconnect(recorder.on_exception)
    quiet.setLevel(level)
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def fuzz_operation(operation, mode, recorder: Recorder, headers: dict, ids: dict) -> None:
    """EXAMPLES requests to one operation in one generation mode (positive or negative)."""
    label = f"{operation.method.upper()} {operation.path}"
    names = [p.name for p in operation.path_parameters]
    choices = {n: seeded_values(operation.path, n, ids) for n in names}

    @settings(max_examples=EXAMPLES, **FUZZ_SETTINGS)
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def check(case, data):
        # Half the requests name seeded objects, so the fuzzing gets past the 404s.
        for name, values in choices.items():
            if values and data.draw(st.booleans()):
                case.path_parameters[name] = data.draw(st.sampled_from(values))
        recorder.record(label, case, case.call(headers=headers))

    check()


def test_fuzz_every_operation_without_5xx(fuzz_env):
    started = time.monotonic()
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    recorder, headers, ids = fuzz_env["recorder"], fuzz_env["headers"], fuzz_env["ids"]
    operations = [result.ok() for result in schema.get_all_operations()]
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]

    for operation in operations:
        for mode in modes:
            fuzz_operation(operation, mode, recorder, headers, ids)

    class Stateful(schema.as_state_machine()):
        # Each scenario starts from the seeded rows: Hypothesis replays the start of scenarios
        # and expects the same answers, so what one scenario wrote is rolled back after it.
        def setup(self):
            self.scenario = transaction.atomic()
            self.scenario.__enter__()

        def teardown(self):
            transaction.set_rollback(True)
            self.scenario.__exit__(None, None, None)

        def get_call_kwargs(self, case):
            return {"headers": headers}

        def validate_response(self, response, case, **kwargs):
            recorder.record(f"stateful {case.operation.label}", case, response)

    stopped = ""
    try:
        Stateful.run(
            settings=settings(
                max_examples=STATEFUL_EXAMPLES, stateful_step_count=6, **FUZZ_SETTINGS
            )
        )
    except FlakyStrategyDefinition as exc:
        # Not a server error: a replayed scenario met other answers than the first time (ids
        # from a PostgreSQL sequence, say). Every 5xx so far is recorded and still fails below.
        stopped = str(exc).splitlines()[0]

    seconds = round(time.monotonic() - started, 1)
    links = len(Stateful.setup_state().rules)  # transitions schemathesis inferred, and roots
    report = {
        "requests": recorder.requests,
        "operations": len(operations),
        "seconds": seconds,
        "stateful_transitions": links,
        "stateful_stopped_early": stopped,
        "server_errors": recorder.server_errors,
        "by_operation": recorder.by_operation,
    }
    out = Path(os.environ.get("MARKETING_AI_DATA_DIR", "var")) / "fuzz-api.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(
        f"\nschemathesis: {recorder.requests} requests over {len(operations)} operations "
        f"and {links} stateful transitions in {seconds} s, {recorder.server_errors} server "
        f"errors ({out}){'; stateful stopped early: ' + stopped if stopped else ''}"
    )
    assert not recorder.failures, "5xx answers:\n\n" + "\n\n".join(recorder.failures)
