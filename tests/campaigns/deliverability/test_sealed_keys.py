"""campaigns migration 0019: DKIM keys stored in clear before it are sealed, and opened again
going back; a key already sealed is left as it is."""

import importlib

import pytest
from django.apps import apps

from campaigns.deliverability import signing
from campaigns.deliverability.services import sending_domain_create
from campaigns.models import SendingDomain
from marketing_ai import sealed

pytestmark = pytest.mark.django_db

migration = importlib.import_module("campaigns.migrations.0019_seal_dkim_keys")


def test_keys_in_clear_are_sealed_and_opened_again_going_back(workspace):
    pem = signing.key_generate().private_pem
    old = SendingDomain.objects.create(
        workspace=workspace, domain="old.example", selector="s1", private_key=pem,
        public_key="-", key_created_at="2026-01-01T00:00:00Z",
    )  # fmt: skip
    new = sending_domain_create(workspace=workspace, domain="new.example")
    token = new.private_key
    migration.seal_keys(apps, None)
    old.refresh_from_db(), new.refresh_from_db()
    assert "PRIVATE KEY" not in old.private_key and sealed.unseal(old.private_key) == pem
    assert new.private_key == token  # sealed already: not sealed twice
    migration.open_keys(apps, None)
    old.refresh_from_db(), new.refresh_from_db()
    assert old.private_key == pem and new.private_key.startswith("-----BEGIN RSA PRIVATE KEY")
