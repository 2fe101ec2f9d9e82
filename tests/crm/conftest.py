import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from tests.crm.factories import WorkspaceFactory


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(slug="acme", name="Acme")


@pytest.fixture
def other_workspace(db):
    return WorkspaceFactory(slug="globex", name="Globex")


@pytest.fixture
def staff(client, workspace, other_workspace):
    """A client logged in as a staff member of `workspace` only, with the CRM's permissions."""
    user = get_user_model().objects.create_user("marketer", password="pw-for-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="crm"))
    workspace.members.add(user)
    client.force_login(user)
    return client
