import pytest

from crm.models import Workspace


@pytest.fixture
def workspace(db):
    return Workspace.objects.create(slug="acme", name="Acme")


@pytest.fixture
def other_workspace(db):
    return Workspace.objects.create(slug="globex", name="Globex")
