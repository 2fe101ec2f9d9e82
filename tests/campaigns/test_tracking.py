"""campaigns.tracking: signed tracking links through a key rotation: links in e-mails already sent
keep working when the old key is in SECRET_KEY_FALLBACKS, and stop working without it."""

from urllib.parse import urlsplit

import pytest

from campaigns import tracking
from campaigns.models import Message
from campaigns.services.recipients import build_ledger
from tests.campaigns.factories import make_audience, make_campaign

pytestmark = pytest.mark.django_db

OLD_KEY = "old-" + "k" * 60
NEW_KEY = "new-" + "n" * 60


def path(url: str) -> str:
    return urlsplit(url).path


@pytest.fixture
def message(workspace) -> Message:
    campaign = make_campaign(workspace, make_audience(workspace, 1))
    build_ledger(campaign=campaign)
    return Message.objects.get(campaign=campaign)


def test_links_signed_under_the_old_key_work_after_a_rotation(client, message, settings):
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD_KEY, []
    token = message.token.hex
    links = {
        "click": path(tracking.click_url(token, "https://shop.example.com/new")),
        "open": path(tracking.open_url(token)),
        "unsubscribe": path(tracking.unsubscribe_url(token)),
        "preferences": path(tracking.preferences_url(token)),
    }

    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    clicked = client.get(links["click"])
    assert clicked.status_code == 302 and clicked["Location"] == "https://shop.example.com/new"
    assert client.get(links["open"]).status_code == 200
    assert client.get(links["unsubscribe"]).status_code == 200
    assert client.get(links["preferences"]).status_code == 200
    # New links are signed with the new key, and the new key alone verifies them.
    fresh = path(tracking.unsubscribe_url(token))
    assert fresh != links["unsubscribe"]
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(fresh).status_code == 200

    # The old key dropped from the fallbacks: every old link is refused.
    assert client.get(links["click"]).status_code == 400
    assert client.get(links["open"]).status_code == 404
    assert client.get(links["unsubscribe"]).status_code == 404
    assert client.get(links["preferences"]).status_code == 404
