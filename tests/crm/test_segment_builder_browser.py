"""The segment builder in a real browser (headless Chromium through Selenium): the rules the
builder writes read back the same, rules it cannot show fall back to the JSON editor with the
reason, and a marketer builds a two-row segment and sees its live count, is told when a window
ends before the data do and counts as of the newest data instead, then saves it; a count
too slow to take exactly is shown as an estimate with its interval."""

import json
import re

import pytest
from django.contrib.auth import get_user_model

from crm import services
from crm.models import Customer, Segment
from tests.browser import admin_login, click_and_load, needs_chromium
from tests.conftest import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]

# Written by the builder (or as it would write them): each must come back unchanged.
SHOWABLE = [
    {"all": [{"attribute": "country", "op": "eq", "value": "GB"}]},
    {"orders": {"op": "gte", "value": 2}, "within_days": 90},
    {
        "any": [
            {"attribute": "country", "op": "in", "value": ["GB", "FR"]},
            {"all": [{"score": "churn_risk", "op": "gt", "value": 0.6}, {"segment": 3}]},
        ],
        "as_of": "2011-12-10T00:00:00Z",
    },
    {"all": [{"event": "view", "count": {"op": "gte", "value": 3}, "within_days": 30},
             {"event": "purchase"},
             {"orders": {"op": "gt", "value": 200}, "metric": "revenue"},
             {"attribute": "attributes.tier", "op": "exists"},
             {"bought_forecast": "slowing", "within_days": 180, "measure": "revenue"}]},
]  # fmt: skip
UNSHOWABLE = [
    ({"not": {"attribute": "country", "op": "eq", "value": "GB"}}, '"not"'),
    ({"event": "view", "where": {"sku": "85123A"}}, '"where"'),
    ({"all": [{"any": [{"all": [{"segment": 1}]}]}]}, "groups inside groups inside groups"),
    ({"attribute": "attributes.tier", "op": "eq", "value": 3}, "not text"),
]


def shop(workspace) -> None:
    """Four customers: three in GB, two of whom ordered, and one in FR who ordered."""
    ids = services.customer_bulk_upsert(
        workspace=workspace,
        rows=[
            {"source": "shop", "external_id": f"b{i}", "email": f"b{i}@x.io", "country": c}
            for i, c in enumerate(["GB", "GB", "GB", "FR"])
        ],
    ).ids
    services.product_bulk_upsert(workspace=workspace, rows=[{"sku": "P1", "name": "Mug"}])
    services.order_bulk_upsert(
        workspace=workspace,
        rows=[
            {
                "external_id": f"o{i}",
                "customer": ids[i],
                "placed_at": "2026-11-20T10:00:00Z",
                "lines": [{"sku": "P1", "quantity": 1, "unit_price": 5}],
            }
            for i in (0, 1, 3)
        ],
    )


def test_marketer_builds_a_two_row_segment_and_sees_its_count(live_server, browser, workspace):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    shop(workspace)
    get_user_model().objects.create_superuser("seg", "s@example.com", "pw-for-tests-1")
    b = browser
    admin_login(b, live_server.url, "seg", "pw-for-tests-1")
    b.get(f"{live_server.url}/admin/crm/segment/add/")

    # The builder's own reading and writing, as the page runs them.
    back = b.execute_script(
        "const sb = window.segmentBuilder;"
        "return arguments[0].map((r) => sb.toRules(sb.fromRules(r)));",
        SHOWABLE,
    )
    assert back == SHOWABLE
    reasons = b.execute_script(
        "const sb = window.segmentBuilder;"
        "return arguments[0].map((r) => { try { sb.fromRules(r); return null; }"
        " catch (e) { return e.message; } });",
        [rules for rules, _ in UNSHOWABLE],
    )
    for reason, (_, why) in zip(reasons, UNSHOWABLE, strict=True):
        assert reason and why in reason

    Select(b.find_element(By.ID, "id_workspace")).select_by_visible_text(workspace.name)
    b.find_element(By.ID, "id_name").send_keys("GB buyers")
    # The Add form starts from the example's three rows: take them away, then build two.
    while b.find_elements(By.CSS_SELECTOR, ".seg-row .seg-remove"):
        b.find_element(By.CSS_SELECTOR, ".seg-row .seg-remove").click()
    b.find_element(By.CSS_SELECTOR, ".seg-add-row").click()
    b.find_element(By.CSS_SELECTOR, ".seg-add-row").click()
    rows = b.find_elements(By.CSS_SELECTOR, ".seg-row")
    assert len(rows) == 2
    rows[0].find_element(By.CSS_SELECTOR, ".seg-value").send_keys("GB")  # country is GB
    Select(rows[1].find_element(By.CSS_SELECTOR, ".seg-field")).select_by_value("orders")

    def count() -> str:
        return b.find_element(By.ID, "segment-count").text

    wait_until(lambda: count() == "2", timeout=15, interval=0.2)
    sample = b.find_element(By.ID, "segment-sample").text
    assert "b0@x.io" in sample and "b1@x.io" in sample and "b3@x.io" not in sample
    written = json.loads(b.find_element(By.ID, "id_rules").get_attribute("value"))
    assert written == {
        "all": [
            {"attribute": "country", "op": "eq", "value": "GB"},
            {"orders": {"op": "gte", "value": 1}},
        ]
    }

    # AND to OR: everyone in GB or with an order.
    Select(b.find_element(By.CSS_SELECTOR, ".seg-join")).select_by_value("any")
    wait_until(lambda: count() == "4", timeout=15, interval=0.2)

    # Rules the builder cannot show: the JSON editor with the reason, the count still live.
    area = b.find_element(By.ID, "id_rules")
    area.clear()
    area.send_keys(json.dumps({"not": {"attribute": "country", "op": "eq", "value": "GB"}}))
    fallback = b.find_element(By.ID, "segment-builder-fallback")
    wait_until(lambda: fallback.is_displayed() and '"not"' in fallback.text, timeout=5)
    wait_until(lambda: count() == "1", timeout=15, interval=0.2)
    area.clear()
    area.send_keys(json.dumps(written))
    wait_until(lambda: not fallback.is_displayed() and count() == "2", timeout=15, interval=0.2)
    assert len(b.find_elements(By.CSS_SELECTOR, ".seg-row")) == 2

    # A window that ends before the data do: the note, and counting as of the newest data.
    area.clear()
    area.send_keys(json.dumps({"orders": {"op": "gte", "value": 1}, "within_days": 5}))
    note = b.find_element(By.ID, "segment-as-of")
    wait_until(lambda: note.is_displayed() and count() == "0", timeout=15, interval=0.2)
    assert "The newest event or order is from 2026-11-20" in note.text
    b.find_element(By.ID, "segment-as-of-apply").click()
    wait_until(lambda: count() == "3" and not note.is_displayed(), timeout=15, interval=0.2)
    assert b.find_element(By.CSS_SELECTOR, ".seg-as-of-input").get_attribute("value") == (
        "2026-11-21T00:00:00Z"
    )
    area.clear()
    area.send_keys(json.dumps(written))
    wait_until(lambda: count() == "2", timeout=15, interval=0.2)

    click_and_load(b, b.find_element(By.NAME, "_save"))
    segment = Segment.objects.get(name="GB buyers")
    assert segment.rules == written and segment.member_count == 2


def test_a_slow_count_is_shown_as_an_estimate_with_its_interval(
    live_server, browser, workspace, settings
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    services.customer_bulk_upsert(
        workspace=workspace,
        rows=[
            {"source": "shop", "external_id": f"e{i}", "email": f"e{i}@x.io", "country": "GB"}
            for i in range(200)
        ],
    )
    assert Customer.objects.filter(workspace=workspace, country="GB").count() == 200
    settings.SEGMENT_LIVE_EXACT_BUDGET_MS = 0  # as if an exact count took too long
    get_user_model().objects.create_superuser("est", "e@example.com", "pw-for-tests-1")
    b = browser
    admin_login(b, live_server.url, "est", "pw-for-tests-1")
    b.get(f"{live_server.url}/admin/crm/segment/add/")
    Select(b.find_element(By.ID, "id_workspace")).select_by_visible_text(workspace.name)
    area = b.find_element(By.ID, "id_rules")
    area.clear()
    area.send_keys(json.dumps({"attribute": "country", "op": "eq", "value": "GB"}))
    # The Add form's example rules are counted first: wait for these rules' answer.
    ids = Customer.objects.filter(workspace=workspace).values_list("pk", flat=True)
    expected = 16 * sum(1 for pk in ids if pk % 16 == 0)
    count = b.find_element(By.ID, "segment-count")
    wait_until(lambda: count.text == f"about {expected:,}", timeout=15, interval=0.2)
    estimate = b.find_element(By.ID, "segment-estimate")
    assert estimate.is_displayed()
    assert "estimated from 1 customer in 16" in estimate.text and "at 95%" in estimate.text
    low, high = (int(x.replace(",", "")) for x in re.findall(r"[\d,]+(?= to| at)", estimate.text))
    assert low <= 200 <= high, estimate.text
