"""A marketer's first hour in the admin, walked in a real browser (headless Chromium through
Selenium): log in, the home page's charts, a customer whose churn risk a real worker trained and
scored, with its reasons in words, a segment built with the builder's rows and its live count, a
campaign to it launched after the page saying to how many, the worker sending it to an SMTP
sink, a message as sent, and the results.

Each step's screenshot goes to $BROWSER_SCREENSHOTS when it is set (.ci/run keeps them). After
the walk each page it visited is requested again, 10 times, through Django's test client on the
walk's data; the table of server times is printed and every page's p95 must be under 500 ms.
Needs Debian's chromium and chromium-driver (.ci/run installs them)."""

import gc
import json
import math
import os
import re
import threading
import time
import uuid
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.signals import request_finished, request_started
from django.test import Client
from django.utils import timezone

from campaigns.models import Campaign, Message
from crm import segments, services
from crm.models import CustomerScore, Segment
from crm.tasks.models import train_churn
from tests.browser import admin_login, click_and_load, needs_chromium
from tests.campaigns.helpers import Sink
from tests.conftest import start_worker, stop_worker, wait_for_worker, wait_until
from tests.crm.factories import WorkspaceFactory
from workers import queues
from workers.models import TaskRun
from workers.services import task_run_start

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]

BUDGET_MS = 500
SAMPLES = 10
COUNTRIES = ("GB", "FR", "DE")


def shop(workspace, n: int = 120) -> None:
    """`n` subscribed customers in three countries, written through the import services:
    regulars who buy every 20 days up to this week, lapsers who stopped months ago (what the
    churn model learns to tell apart)."""
    services.product_bulk_upsert(
        workspace=workspace, rows=[{"sku": "TEA", "name": "Tea tin"}, {"sku": "MUG", "name": "Mug"}]
    )
    rows = [
        {
            "source": "shop",
            "external_id": f"c{i}",
            "email": f"c{i}@example.com",
            "first_name": f"P{i}",
            "country": COUNTRIES[i % 3],
            "consent": {"email": "subscribed"},
        }
        for i in range(n)
    ]
    ids = services.customer_bulk_upsert(workspace=workspace, rows=rows).ids  # row index -> id
    end = timezone.now() - timedelta(days=2)
    orders = []
    for i in range(n):
        last = 3 + i % 7 if i % 2 == 0 else 150 + (i * 37) % 100
        for j in range(2 + i % 4):
            orders.append(
                {
                    "external_id": f"o{i}-{j}",
                    "customer": ids[i],
                    "placed_at": (end - timedelta(days=last + 20 * j)).isoformat(),
                    "lines": [{"sku": ("TEA", "MUG")[j % 2], "quantity": 1, "unit_price": 12}],
                }
            )
    assert not services.order_bulk_upsert(workspace=workspace, rows=orders).errors


@pytest.fixture
def platform(own_redis, tmp_path):
    """An SMTP sink and a worker on every queue that sends to it, on a Redis server of this
    test's own (the suite's shared worker sends to the outbox, and must not take these tasks)."""
    sink = Sink(tmp_path)
    name = f"walk-{uuid.uuid4().hex[:6]}"
    worker = start_worker(
        ",".join(queues.ALL), name, {"REDIS_URL": own_redis.url, "EMAIL_URL": sink.url}
    )
    try:
        wait_for_worker(name)
        yield sink
    finally:
        stop_worker(worker)
        sink.stop()


class Screens:
    """Numbered screenshots into $BROWSER_SCREENSHOTS (01-login.png, 02-home.png, ...)."""

    def __init__(self, browser) -> None:
        self.browser = browser
        self.folder = os.environ.get("BROWSER_SCREENSHOTS")
        self.names: list[str] = []
        if self.folder:
            os.makedirs(self.folder, exist_ok=True)

    def take(self, step: str, focus=None) -> None:
        """Saves the window, scrolled to `focus` (an element) where the step's point is below
        the fold."""
        name = f"{len(self.names) + 1:02d}-{step}.png"
        if focus is not None:
            self.browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", focus)
        self.names.append(name)
        if self.folder:
            self.browser.save_screenshot(os.path.join(self.folder, name))


@pytest.fixture
def screens(browser, request):
    """Screens for the walk, and the page it stopped on as failed.png when it fails (pytest has
    counted the failure of the test's call by the time its fixtures are torn down)."""
    failed_before = request.session.testsfailed
    shots = Screens(browser)
    yield shots
    if request.session.testsfailed > failed_before and shots.folder:
        browser.save_screenshot(os.path.join(shots.folder, "failed.png"))


class ServerTimes:
    """Each page's server time through Django's test client (the whole middleware stack, no
    browser or socket): SAMPLES requests per page, p95 by nearest rank."""

    def __init__(self, user) -> None:
        self.client = Client()
        self.client.force_login(user)
        self.ms: dict[str, list[float]] = {}

    def measure(
        self,
        page: str,
        url: str,
        *,
        body: dict | None = None,
        json_body: bool = False,
        anonymous: bool = False,
    ) -> None:
        client = Client() if anonymous else self.client
        # The test process holds pytest's, Selenium's and the walk's objects: a full
        # collection over them (measured: 370 ms, once in 10 requests) is this process's cost,
        # not the page's, and a gunicorn worker holds far fewer. They are frozen out of the
        # collector while measuring; what the requests themselves allocate is still collected.
        gc.collect()
        gc.freeze()
        try:
            self._sample(client, page, url, body, json_body)
        finally:
            gc.unfreeze()

    def _sample(self, client, page, url, body, json_body) -> None:
        samples = self.ms.setdefault(page, [])
        for _ in range(SAMPLES):
            start = time.perf_counter()
            if body is None:
                response = client.get(url)
            elif json_body:
                response = client.post(url, body, content_type="application/json")
            else:
                response = client.post(url, body)
            samples.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 200, (page, url, response.status_code)

    def watch_submits(self) -> None:
        """Time every form the browser submits (each POST the live server answers), once each
        as it happens: a launch or a save cannot be repeated ten times, so its one real
        request is its sample. From Django's request_started to request_finished, in the
        live server's thread."""
        started: dict[int, float] = {}

        def start(sender, environ, **kwargs) -> None:
            # The browser's requests, not the test client's (its handler sends the signal too).
            if environ.get("REQUEST_METHOD") == "POST" and sender.__name__ != "ClientHandler":
                started[threading.get_ident()] = time.perf_counter()
                self._submitting[threading.get_ident()] = environ.get("PATH_INFO", "")

        def finish(sender, **kwargs) -> None:
            began = started.pop(threading.get_ident(), None)
            where = self._submitting.pop(threading.get_ident(), None)
            if began is not None and where is not None:
                page = f"submit {re.sub(r'/[0-9]+/', '/<id>/', where)}"
                self.ms.setdefault(page, []).append((time.perf_counter() - began) * 1000)

        self._submitting: dict[int, str] = {}
        self._hooks = (start, finish)  # connected weakly: held here for the walk's length
        request_started.connect(start)
        request_finished.connect(finish)

    @staticmethod
    def p95(samples: list[float]) -> float:
        return sorted(samples)[math.ceil(0.95 * len(samples)) - 1]

    def table(self) -> str:
        lines = [f"{'page':<46} {'median ms':>10} {'p95 ms':>8}"]
        for page, samples in self.ms.items():
            median = sorted(samples)[len(samples) // 2]
            lines.append(f"{page:<46} {median:>10.1f} {self.p95(samples):>8.1f}")
        return "\n".join(lines)

    # Logging in hashes the password with Django's PBKDF2 at its default iterations, about
    # 300 ms here by design (what makes a stolen hash slow to crack): shown, not held to the
    # page budget.
    EXEMPT = {"submit /admin/login/"}

    def over_budget(self) -> dict[str, float]:
        return {
            p: round(self.p95(s))
            for p, s in self.ms.items()
            if self.p95(s) >= BUDGET_MS and p not in self.EXEMPT
        }


def test_a_marketers_first_hour(live_server, browser, screens, platform, capsys):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    workspace = WorkspaceFactory(slug="tea", name="Tea Shop")
    shop(workspace)
    # The churn model trains on the worker while the marketer logs in and looks around.
    training = task_run_start(task=train_churn, workspace=workspace, params={"horizon_days": 60})
    user = get_user_model().objects.create_superuser("marketer", "m@example.com", "pw-first-hour")
    b, shots, base = browser, screens, live_server.url
    times = ServerTimes(user)
    times.watch_submits()
    pages: dict[str, str] = {}

    # 1. Log in.
    b.get(f"{base}/admin/login/")
    shots.take("login")
    admin_login(b, base, "marketer", "pw-first-hour")

    # 2. The home page: the workspace's sales drawn as bars.
    assert b.find_element(By.ID, "home-workspace").text == "Tea Shop"
    charts = {
        c.get_attribute("aria-label") for c in b.find_elements(By.CSS_SELECTOR, "svg.home-chart")
    }
    assert {"Revenue by week", "Orders by week", "Audience"} <= charts
    bars = b.find_elements(By.CSS_SELECTOR, "svg.revenue rect.bar")
    assert len(bars) == 26 and max(bar.size["height"] for bar in bars) > 20
    shots.take("home")

    # 3. A customer with scores and their reasons in words, once the worker has trained.
    wait_until(lambda: TaskRun.objects.get(pk=training.pk).status in TaskRun.FINISHED, timeout=60)
    training.refresh_from_db()
    assert training.status == TaskRun.Status.SUCCEEDED, training.error
    risky = CustomerScore.objects.filter(workspace=workspace, kind="churn_risk").order_by("-value")
    customer = risky.select_related("customer").first().customer
    pages["customer list (search)"] = f"/admin/crm/customer/?q={customer.email}"
    b.get(base + pages["customer list (search)"])
    pages["customer page"] = f"/admin/crm/customer/{customer.pk}/change/"
    click_and_load(
        b, b.find_element(By.CSS_SELECTOR, f"#result_list a[href*='{pages['customer page']}']")
    )
    page = b.find_element(By.TAG_NAME, "body").text
    assert "churn_risk" in page
    assert re.search(r"churn risk (up|down) [\d.]+ points", page), page[-2000:]
    assert '"contribution"' not in page  # words, not the raw JSON
    reason = b.find_element(By.XPATH, "//td[contains(., 'churn risk')]")
    shots.take("customer", focus=reason)

    # 4. A segment from the builder's rows: in GB and at churn risk above 0.5, its live count.
    pages["segment add"] = "/admin/crm/segment/add/"
    b.get(base + pages["segment add"])
    Select(b.find_element(By.ID, "id_workspace")).select_by_visible_text(workspace.name)
    b.find_element(By.ID, "id_name").send_keys("GB at risk")
    while b.find_elements(By.CSS_SELECTOR, ".seg-row .seg-remove"):
        b.find_element(By.CSS_SELECTOR, ".seg-row .seg-remove").click()
    b.find_element(By.CSS_SELECTOR, ".seg-add-row").click()
    b.find_element(By.CSS_SELECTOR, ".seg-add-row").click()
    rows = b.find_elements(By.CSS_SELECTOR, ".seg-row")
    rows[0].find_element(By.CSS_SELECTOR, ".seg-value").send_keys("GB")
    Select(rows[1].find_element(By.CSS_SELECTOR, ".seg-field")).select_by_value("score")
    row = b.find_elements(By.CSS_SELECTOR, ".seg-row")[1]  # drawn again for its new field
    row.find_element(By.CSS_SELECTOR, ".seg-value").send_keys("churn_risk")
    rules = {
        "all": [
            {"attribute": "country", "op": "eq", "value": "GB"},
            {"score": "churn_risk", "op": "gt", "value": 0.5},
        ]
    }
    expected = segments.customers_matching(workspace, rules).count()
    assert 0 < expected < 40
    wait_until(
        lambda: b.find_element(By.ID, "segment-count").text == str(expected),
        timeout=15,
        interval=0.2,
    )
    assert json.loads(b.find_element(By.ID, "id_rules").get_attribute("value")) == rules
    assert "@example.com" in b.find_element(By.ID, "segment-sample").text
    shots.take("segment-builder", focus=b.find_element(By.ID, "segment-count"))
    click_and_load(b, b.find_element(By.NAME, "_save"))
    segment = Segment.objects.get(name="GB at risk")
    assert segment.rules == rules and segment.member_count == expected

    # 5. A campaign to it: created, approved, and the launch page saying to how many.
    pages["campaign add"] = "/admin/campaigns/campaign/add/"
    b.get(base + pages["campaign add"])
    Select(b.find_element(By.ID, "id_workspace")).select_by_visible_text(workspace.name)
    b.find_element(By.ID, "id_name").send_keys("Come back for tea")
    Select(b.find_element(By.ID, "id_include_segments")).select_by_visible_text(segment.name)
    b.find_element(By.ID, "id_holdout_percent").clear()
    b.find_element(By.ID, "id_holdout_percent").send_keys("0")
    b.find_element(By.ID, "id_variants-0-name").clear()
    b.find_element(By.ID, "id_variants-0-name").send_keys("A")
    b.find_element(By.ID, "id_variants-0-subject").send_keys("{{ first_name }}, we miss you")
    b.find_element(By.ID, "id_variants-0-body_html").send_keys(
        "<p>Hello {{ customer.first_name }}! "
        '<a href="https://shop.example.com/">Tea is on us</a></p>'
    )
    shots.take("campaign")
    click_and_load(b, b.find_element(By.NAME, "_continue"))
    campaign = Campaign.objects.get(name="Come back for tea")
    pages["campaign page"] = f"/admin/campaigns/campaign/{campaign.pk}/change/"
    click_and_load(b, b.find_element(By.XPATH, "//button[text()='Approve variants']"))
    click_and_load(b, b.find_element(By.XPATH, "//button[text()='Launch']"))
    assert int(b.find_element(By.ID, "launch-recipients").text) == expected
    assert b.find_elements(By.CSS_SELECTOR, "#launch-sample li")
    shots.take("launch-confirm")
    # The confirmation page, timed before the launch makes it unavailable (nothing is sent
    # without confirm=yes).
    launch = f"/admin/campaigns/campaign/{campaign.pk}/act/launch/"
    times.measure("launch confirmation", launch, body={})
    assert campaign.messages.count() == 0
    click_and_load(b, b.find_element(By.ID, "launch-confirm"))
    assert "Launched" in b.find_element(By.CSS_SELECTOR, "ul.messagelist").text

    # 6. The worker sends it to the SMTP sink; a message as its recipient got it.
    wait_until(lambda: platform.count() >= expected, timeout=45, interval=0.2)
    wait_until(
        lambda: Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.SENT, timeout=15
    )
    recipients = set(segments.customers_matching(workspace, rules).values_list("email", flat=True))
    assert set(platform.received()) == recipients
    pages["sent mail"] = f"/admin/campaigns/campaign/{campaign.pk}/messages/"
    b.get(base + pages["campaign page"])
    click_and_load(b, b.find_element(By.CSS_SELECTOR, "a[href$='/messages/']"))
    assert len(b.find_elements(By.CSS_SELECTOR, "#sent-mail tbody tr")) == expected
    shots.take("sent-mail")
    click_and_load(b, b.find_element(By.LINK_TEXT, "view as sent"))
    message = Message.objects.get(pk=b.current_url.rstrip("/").rsplit("/", 1)[1])
    pages["sent message"] = f"/admin/campaigns/campaign/{campaign.pk}/messages/{message.pk}/"
    assert b.find_element(By.ID, "message-subject").text.endswith(", we miss you")
    frame = b.find_element(By.ID, "message-html")
    b.switch_to.frame(frame)
    assert "Tea is on us" in b.find_element(By.TAG_NAME, "body").text
    tracked = b.find_element(By.LINK_TEXT, "Tea is on us").get_attribute("href")
    b.switch_to.default_content()
    shots.take("message")
    # Its recipient clicks that link in their own mail client (the frame here follows none).
    answer = Client().get(urlsplit(tracked).path)
    assert answer.status_code == 302 and answer["Location"] == "https://shop.example.com/"
    wait_until(lambda: campaign.messages.filter(clicked_at__isnull=False).count() == 1, timeout=15)

    # 7. The results.
    pages["results"] = f"/admin/campaigns/campaign/{campaign.pk}/results/"
    b.get(base + pages["results"])
    assert b.find_element(By.ID, "results-status").text == "sent"
    assert int(b.find_element(By.ID, "results-sent").text) == expected
    variant = b.find_elements(
        By.XPATH, "//table[@id='results-variants']//tr[td[1][normalize-space()='Variant A']]/td"
    )
    assert [cell.text for cell in variant[1:3]] == [str(expected)] * 2
    assert variant[4].text == "1"  # the click
    assert b.find_elements(By.CSS_SELECTOR, "svg[role=img]")
    shots.take("results")

    # Server time of every page of the walk, on its data.
    times.measure("login page", "/admin/login/", anonymous=True)
    times.measure("home", "/admin/")
    for name, url in pages.items():
        times.measure(name, url)
    times.measure(
        "segment builder choices", f"/admin/crm/segment/choices/?workspace={workspace.pk}"
    )
    times.measure(
        "segment live count",
        "/admin/crm/segment/live/",
        body={"workspace": workspace.pk, "rules": rules},
        json_body=True,
    )
    table = times.table()
    if shots.folder:
        with open(os.path.join(shots.folder, "server-times.txt"), "w") as f:
            f.write(table + "\n")
    with capsys.disabled():
        print(f"\nServer time per page ({SAMPLES} requests each):\n{table}")
        print("Screenshots:", ", ".join(shots.names))
    assert not times.over_budget(), f"p95 over {BUDGET_MS} ms:\n{table}"
