"""campaigns.admin.campaigns in a real browser (headless Chromium through Selenium): create a
campaign with a variant, preview it for a customer, approve, launch (after the page saying to how
many), a real worker sends it; the results page shows it sent and the sent mail shows a message.
Needs Debian's chromium and chromium-driver (.ci/run installs them)."""

import pytest
from django.contrib.auth import get_user_model

from campaigns.models import Campaign
from tests.browser import admin_login, click_and_load, needs_chromium
from tests.campaigns.factories import make_audience
from tests.conftest import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def notice(b) -> str:
    """The admin's message list of the page that the last click loaded (waits for it)."""
    from selenium.webdriver.common.by import By

    return b.find_element(By.CSS_SELECTOR, "ul.messagelist").text


def test_marketer_creates_previews_approves_launches_and_reads_results(
    live_server, browser, workspace, live_worker
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    segment = make_audience(workspace, 25, name="Newsletter")
    get_user_model().objects.create_superuser("marketer", "m@example.com", "pw-for-tests-1")
    b = browser
    admin_login(b, live_server.url, "marketer", "pw-for-tests-1")

    b.get(f"{live_server.url}/admin/campaigns/campaign/add/")
    Select(b.find_element(By.ID, "id_workspace")).select_by_visible_text(workspace.name)
    b.find_element(By.ID, "id_name").send_keys("Winter sale")
    Select(b.find_element(By.ID, "id_include_segments")).select_by_visible_text(segment.name)
    b.find_element(By.ID, "id_holdout_percent").clear()
    b.find_element(By.ID, "id_holdout_percent").send_keys("20")
    b.find_element(By.ID, "id_variants-0-name").clear()
    b.find_element(By.ID, "id_variants-0-name").send_keys("A")
    b.find_element(By.ID, "id_variants-0-subject").send_keys("{{ first_name }}, winter is here")
    b.find_element(By.ID, "id_variants-0-body_html").send_keys(
        '<p>Hello {{ customer.first_name }}! <a href="https://shop.example.com/">Shop now</a></p>'
    )
    click_and_load(b, b.find_element(By.NAME, "_continue"))
    assert "was added successfully" in notice(b)
    campaign = Campaign.objects.get(name="Winter sale")

    click_and_load(b, b.find_element(By.CSS_SELECTOR, "a[href$='/preview/']"))
    b.find_element(By.NAME, "customer").send_keys("person3@example.com")
    click_and_load(b, b.find_element(By.CSS_SELECTOR, "form[method=get] button"))
    assert b.find_element(By.ID, "preview-subject").text == "P3, winter is here"
    assert "Hello P3!" in b.find_element(By.ID, "preview-text").text

    b.get(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    click_and_load(b, b.find_element(By.XPATH, "//button[text()='Approve variants']"))
    assert "Variant A approved." in notice(b)
    click_and_load(b, b.find_element(By.XPATH, "//button[text()='Launch']"))
    # Launch asks first: how many get it (the holdout left out) and a sample of them.
    shown = int(b.find_element(By.ID, "launch-recipients").text)
    assert 0 < shown <= 25 and b.find_elements(By.CSS_SELECTOR, "#launch-sample li")
    assert campaign.messages.count() == 0
    click_and_load(b, b.find_element(By.ID, "launch-confirm"))
    assert "Launched" in notice(b)

    b.get(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/results/")

    def shows_sent() -> bool:
        b.refresh()
        return b.find_element(By.ID, "results-status").text == "sent"

    # The results page says "sent" within a minute (the worker sends 25 messages).
    wait_until(shows_sent, timeout=60, interval=1)
    campaign.refresh_from_db()
    sent = int(b.find_element(By.ID, "results-sent").text)
    held = campaign.messages.filter(holdout=True).count()
    assert sent == campaign.messages.filter(state="sent").count() == 25 - held == shown > 0
    assert "Holdout" in b.find_element(By.ID, "results-variants").text
    assert b.find_elements(By.CSS_SELECTOR, "svg[role=img]")

    # The sent mail: each message as its recipient got it, the HTML in a sandboxed frame.
    b.get(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    click_and_load(b, b.find_element(By.CSS_SELECTOR, "a[href$='/messages/']"))
    assert len(b.find_elements(By.CSS_SELECTOR, "#sent-mail tbody tr")) == shown
    click_and_load(b, b.find_element(By.LINK_TEXT, "view as sent"))
    subject = b.find_element(By.ID, "message-subject").text
    assert subject.endswith(", winter is here") and subject.startswith("P")
    frame = b.find_element(By.ID, "message-html")
    assert frame.get_attribute("sandbox") == ""
    b.switch_to.frame(frame)
    assert "Shop now" in b.find_element(By.TAG_NAME, "body").text
    b.switch_to.default_content()
