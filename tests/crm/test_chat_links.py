"""Signed chat links (crm.support.links) through a key rotation."""

import pytest

from crm.models import Customer
from crm.support import links

pytestmark = pytest.mark.django_db

OLD_KEY = "old-" + "k" * 60
NEW_KEY = "new-" + "n" * 60


def test_a_chat_link_signed_under_the_old_key_works_after_a_rotation(workspace, settings):
    ada = Customer.objects.create(workspace=workspace, email="ada@example.com")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = OLD_KEY, []
    token = links.customer_chat_token(ada)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW_KEY, [OLD_KEY]
    assert links.customer_from_token(token) == ada
    settings.SECRET_KEY_FALLBACKS = []
    assert links.customer_from_token(token) is None
