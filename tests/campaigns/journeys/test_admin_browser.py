"""The journey builder in a real browser (headless Chromium through Selenium): build a small
journey in the step editor, see the checker's error on the field, fix it, publish, and try it
with a customer, seeing the message rendered as it would be delivered; nothing is sent or
written by the try. Needs Debian's chromium and chromium-driver (.ci/run installs them)."""

import pytest
from django.contrib.auth import get_user_model

from campaigns.journeys.models import Enrolment, Journey
from campaigns.models import Message
from crm import services as crm
from crm.models import Product
from tests.browser import admin_login, click_and_load, needs_chromium
from tests.campaigns.journeys.helpers import journey_message

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]


def test_marketer_builds_fixes_publishes_and_tries_a_journey(live_server, browser, workspace):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    message = journey_message(workspace)
    crm.customer_bulk_upsert(
        workspace=workspace, rows=[{"email": "ada@example.com", "first_name": "Ada"}]
    )
    Product.objects.create(workspace=workspace, sku="T1", name="Teapot", price=20)
    get_user_model().objects.create_superuser("marketer", "m@example.com", "pw-for-tests-1")
    b = browser
    admin_login(b, live_server.url, "marketer", "pw-for-tests-1")

    b.get(f"{live_server.url}/admin/campaigns/journey/add/")
    Select(b.find_element(By.ID, "id_workspace")).select_by_visible_text(workspace.name)
    b.find_element(By.ID, "id_name").send_keys("Cart nudge")
    click_and_load(b, b.find_element(By.NAME, "_continue"))
    journey = Journey.objects.get(name="Cart nudge")

    def add_step(where: str, kind: str, new_id: str) -> None:
        form = b.find_element(By.ID, "journey-add-step")
        Select(form.find_element(By.NAME, "way")).select_by_visible_text(where)
        Select(form.find_element(By.NAME, "kind")).select_by_value(kind)
        form.find_element(By.NAME, "new_id").send_keys(new_id)
        click_and_load(b, form.find_element(By.CSS_SELECTOR, "button"))

    def field(name: str):
        return b.find_element(By.NAME, f"step-{name}")

    # The message, then its end; the diagram draws both.
    add_step("in front of the start", "send", "mail")
    Select(field("campaign")).select_by_value(str(message.pk))
    click_and_load(b, b.find_element(By.ID, "journey-save-step"))
    add_step("after mail (next)", "exit", "done")
    diagram = b.find_element(By.ID, "journey-diagram")
    assert {box.get_attribute("data-step") for box in diagram.find_elements(
        By.CSS_SELECTOR, "a.step")} == {"mail", "done"}  # fmt: skip

    # A wait in front: a timeout that is not a duration is refused on its field.
    add_step("in front of the start", "wait_event", "wait")
    field("event").send_keys("purchase")
    field("timeout").clear()
    field("timeout").send_keys("soon")
    Select(field("yes")).select_by_value("done")
    click_and_load(b, b.find_element(By.ID, "journey-save-step"))
    error = b.find_element(By.ID, "error-timeout").text
    assert "a duration such as 30s, 15m, 4h or 7d" in error
    assert "steps.wait.timeout" in b.find_element(By.ID, "journey-problems").text

    field("timeout").clear()
    field("timeout").send_keys("30s")
    click_and_load(b, b.find_element(By.ID, "journey-save-step"))
    assert not b.find_elements(By.ID, "error-timeout")
    assert not b.find_elements(By.ID, "journey-problems")

    click_and_load(b, b.find_element(By.ID, "journey-publish"))
    assert "Published version 1" in b.find_element(By.CSS_SELECTOR, "ul.messagelist").text
    assert b.find_element(By.ID, "journey-status").text == "live"
    journey.refresh_from_db()
    assert journey.version.definition["steps"]["wait"] == {
        "type": "wait_event", "event": "purchase", "timeout": "30s", "yes": "done", "no": "mail"
    }  # fmt: skip

    # Try it with Ada and a cart typed in as the trigger's context.
    b.find_element(By.ID, "journey-try-who").send_keys("ada@example.com")
    context = b.find_element(By.NAME, "context")
    context.clear()
    context.send_keys('{"event": "cart_updated", "properties": {"items": '
                      '[{"sku": "T1", "quantity": 2}]}}')  # fmt: skip
    click_and_load(b, b.find_element(By.ID, "journey-try-button"))
    path = b.find_element(By.ID, "journey-try-path")
    steps = [row.get_attribute("data-step") for row in path.find_elements(
        By.CSS_SELECTOR, "tr.journey-stop")]  # fmt: skip
    assert steps == ["wait", "mail", "done"]
    assert "yes → done (not taken)" in path.text
    assert path.find_element(By.CSS_SELECTOR, ".journey-message-subject").text == "Your cart"
    assert "2 x T1" in path.find_element(By.CSS_SELECTOR, ".journey-message-text").text
    assert "finishes at done" in b.find_element(By.ID, "journey-try-end").text
    assert not Message.objects.exists() and not Enrolment.objects.exists()
