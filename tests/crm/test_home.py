"""crm/admin/home.py and crm/admin_site.py: the admin index is the chosen workspace's home page
(sales, audience, campaigns and journeys, models, task runs, needs attention, with charts), it
shows no other workspace's numbers, and the menu is grouped by what a marketer does."""

import os
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.utils import timezone

from campaigns.models import Campaign, Message
from crm.admin.home_charts import hbars, week_bars
from crm.models import Order
from tests.browser import admin_login, needs_chromium
from tests.campaigns.factories import sent_campaign
from tests.crm.factories import seed
from workers.models import ModelVersion, TaskRun

pytestmark = pytest.mark.django_db


def shop(workspace, *, orders: int, total: int, campaign: str) -> None:
    """`orders` orders of `total` each, weeks apart, a campaign sent with clicks, a model and a
    failed run: every part of the home page has something to show."""
    seed(workspace)  # one order of 20 on 2026-01-01
    customer = workspace.customers.first()
    last = Order.objects.get(workspace=workspace).placed_at
    Order.objects.bulk_create(
        Order(
            workspace=workspace,
            customer=customer,
            external_id=f"w{i}",
            placed_at=last - timedelta(weeks=i + 1),
            total=total,
            currency="GBP",
        )
        for i in range(orders)
    )
    sent = sent_campaign(workspace, n=4, name=campaign)
    Campaign.objects.filter(pk=sent.pk).update(launched_at=timezone.now())
    first = Message.objects.filter(campaign=sent).first()
    Message.objects.filter(pk=first.pk).update(opened_at=timezone.now(), clicked_at=timezone.now())
    ModelVersion.objects.create(
        workspace=workspace,
        family="predict.churn",
        version=1,
        status=ModelVersion.Status.ACTIVE,
        metrics={"auc": 0.8123},
    )
    TaskRun.objects.create(
        kind="crm.tasks.models.train_clv", workspace=workspace, status=TaskRun.Status.FAILED
    )


@pytest.fixture
def marketer(client, workspace, other_workspace):
    user = get_user_model().objects.create_user("m", password="pw-for-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    workspace.members.add(user)
    client.force_login(user)
    return client


def test_home_shows_the_chosen_workspace_only(admin_client, workspace, other_workspace):
    shop(workspace, orders=3, total=100, campaign="Acme spring sale")
    shop(other_workspace, orders=5, total=7000, campaign="Globex winter")

    page = admin_client.get("/admin/").content.decode()
    assert 'id="home-choose"' in page  # a superuser sees two: the page asks which

    admin_client.post("/admin/crm/workspace/switch/", {"workspace": workspace.pk})
    page = admin_client.get("/admin/").content.decode()
    assert ">Acme</h2>" in page
    assert 'id="home-revenue">320<' in page  # 20 + 3 x 100
    assert 'id="home-orders">4<' in page
    assert 'id="home-customers">5<' in page  # the seed's customer and the campaign's 4
    assert "Acme spring sale" in page and "Globex winter" not in page
    assert "35,020" not in page and "35020" not in page  # Globex's revenue
    assert page.count('class="home-chart') >= 4  # revenue, orders, audience, campaigns
    assert 'class="bar"' in page
    assert "predict.churn" in page and "auc 0.812" in page
    assert "1 task run failed in the last 7 days" in page
    assert "crm.tasks.models.train_clv" in page
    assert "4 sent · 25% opened · 25% clicked" in page

    admin_client.post("/admin/crm/workspace/switch/", {"workspace": other_workspace.pk})
    page = admin_client.get("/admin/").content.decode()
    assert 'id="home-revenue">35,020<' in page and "Globex winter" in page
    assert "Acme spring sale" not in page


def test_a_member_of_one_workspace_gets_its_home_and_no_other(marketer, workspace, other_workspace):
    shop(workspace, orders=1, total=10, campaign="Mine")
    shop(other_workspace, orders=1, total=10, campaign="Theirs")
    marketer.post("/admin/crm/workspace/switch/", {"workspace": other_workspace.pk})  # refused
    page = marketer.get("/admin/").content.decode()
    assert ">Acme</h2>" in page and "Mine" in page and "Theirs" not in page


def test_paused_campaign_needs_attention(admin_client, workspace):
    shop(workspace, orders=0, total=0, campaign="Halted")
    Campaign.objects.filter(workspace=workspace).update(status=Campaign.Status.PAUSED)
    admin_client.post("/admin/crm/workspace/switch/", {"workspace": workspace.pk})
    page = admin_client.get("/admin/").content.decode()
    assert "Campaign “Halted” is paused" in page


def test_menu_is_grouped_by_what_a_marketer_does(admin_client, workspace):
    page = admin_client.get("/admin/").content.decode()
    groups = ["Audience", "Campaigns &amp; journeys", "Content", "AI models", "Support"]
    at = [page.index(f">{name}</a>") for name in [*groups, "Settings", "Platform"]]
    assert at == sorted(at)
    platform = page[at[-1] :]
    assert "Crontabs" in platform and "Periodic tasks" in platform
    assert "Crontabs" not in page[: at[-1]]
    # An app's own page still lists its models.
    assert "Crontabs" in admin_client.get("/admin/django_celery_beat/").content.decode()


def test_charts_escape_labels_and_draw_nothing_for_no_data():
    assert week_bars([], [], title="x") == ""
    assert hbars([], title="x") == ""
    svg = hbars([("<script>", 0.5, "a&b")], title="<t>")
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a&amp;b" in svg


@needs_chromium
@pytest.mark.django_db(transaction=True)
def test_home_page_charts_in_a_browser(live_server, browser, workspace, other_workspace):
    """A member of one workspace logs in and lands on its home page with its charts drawn."""
    from selenium.webdriver.common.by import By

    shop(workspace, orders=6, total=50, campaign="Acme spring sale")
    user = get_user_model().objects.create_user("m", password="pw-for-tests-1", is_staff=True)
    user.user_permissions.set(Permission.objects.all())
    workspace.members.add(user)
    admin_login(browser, live_server.url, "m", "pw-for-tests-1")
    assert browser.find_element(By.ID, "home-workspace").text == "Acme"
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.home-chart")
    assert {c.get_attribute("aria-label") for c in charts} >= {
        "Revenue by week",
        "Orders by week",
        "Audience",
        "Latest campaigns: share clicked",
    }
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.revenue rect.bar")
    assert len(bars) == 26 and max(b.size["height"] for b in bars) > 50
    shots = os.environ.get("BROWSER_SCREENSHOTS")
    if shots:
        browser.save_screenshot(os.path.join(shots, "home.png"))
