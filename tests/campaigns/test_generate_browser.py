"""The generate form's product picker in a real browser (headless Chromium through Selenium):
typing part of a name lists the campaign's workspace's products, never another workspace's,
and the one picked goes into the brief. Needs Debian's chromium and chromium-driver."""

import pytest
from django.contrib.auth import get_user_model

from campaigns.services import copy
from crm import services
from tests.browser import admin_login, click_and_load, needs_chromium
from tests.campaigns.test_copy import setup_shop
from tests.conftest import wait_until
from tests.crm.factories import WorkspaceFactory
from workers.models import TaskRun

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]


def test_staff_pick_a_product_by_typing_part_of_its_name(live_server, browser, workspace):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    campaign = setup_shop(workspace)
    other = WorkspaceFactory(slug="other", name="Other shop")
    services.product_bulk_upsert(
        workspace=other, rows=[{"sku": "TEA-OTHER", "name": "ANOTHER SHOP'S TEACUP"}]
    )
    staff = get_user_model().objects.create_superuser("marketer", "m@x.io", "pw-for-tests-1")
    workspace.members.add(staff)
    other.members.add(staff)
    b = browser
    admin_login(b, live_server.url, "marketer", "pw-for-tests-1")
    b.get(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/generate/")

    # select2 has replaced the <select>: a search box in the admin's autocomplete style.
    b.find_element(By.CSS_SELECTOR, ".field-products .select2-container--admin-autocomplete")
    b.find_element(By.CSS_SELECTOR, ".field-products .select2-search__field").send_keys("teacup")

    def offered() -> list[str]:
        try:
            items = b.find_elements(By.CSS_SELECTOR, ".select2-results__option")
            return [i.text for i in items if "loading" not in i.get_attribute("class")]
        except StaleElementReferenceException:  # select2 redrew the list while it was read
            return []

    wait_until(lambda: "TEA — ROSES REGENCY TEACUP AND SAUCER" in offered(), timeout=15)
    shown = wait_until(offered, timeout=15)
    assert not any("TEA-OTHER" in text for text in shown)
    b.find_element(By.CSS_SELECTOR, ".select2-results__option--highlighted").click()
    chosen = b.find_element(By.CSS_SELECTOR, ".field-products .select2-selection__choice")
    assert "ROSES REGENCY TEACUP" in chosen.text
    click_and_load(b, b.find_element(By.CSS_SELECTOR, "#generate-form input[type=submit]"))
    run = TaskRun.objects.get(kind=copy.GENERATE_COPY)
    assert run.params["products"] == ["TEA"]
