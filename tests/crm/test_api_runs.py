"""crm.api.runs: GET /api/v1/tasks/<id>, a run's status and progress for staff and for keys
with tasks:read, and its place in the OpenAPI schema."""

import uuid

import pytest
from django.contrib.auth import get_user_model

from workers.models import TaskRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    user = get_user_model().objects.create_user("staff", password="pw-for-tests", is_staff=True)
    client.force_login(user)
    return client


def test_task_run_detail(staff_client):
    run = TaskRun.objects.create(kind="workers.tasks.selfcheck", progress=40, message="x")
    response = staff_client.get(f"/api/v1/tasks/{run.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(run.pk)
    assert body["progress"] == 40 and body["status"] == "queued" and body["message"] == "x"


def test_unknown_run_is_404(staff_client):
    assert staff_client.get(f"/api/v1/tasks/{uuid.uuid4()}").status_code == 404
    assert staff_client.get("/api/v1/tasks/not-a-uuid").status_code == 404


def test_anonymous_is_refused(client):
    run = TaskRun.objects.create(kind="x")
    response = client.get(f"/api/v1/tasks/{run.pk}")
    assert response.status_code in (401, 403)
    assert "detail" in response.json()


def test_openapi_schema_documents_tasks(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert "/api/v1/tasks/{run_id}" in response.json()["paths"]
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"swagger" in docs.content.lower()


def test_staff_see_only_their_workspaces_runs_and_the_platforms(staff_client):
    from crm.models import Workspace

    user = get_user_model().objects.get(username="staff")
    mine = Workspace.objects.create(slug="mine", name="Mine")
    mine.members.add(user)
    theirs = Workspace.objects.create(slug="theirs", name="Theirs")
    own = TaskRun.objects.create(kind="crm.tasks.models.forecast", workspace=mine)
    platform = TaskRun.objects.create(kind="workers.tasks.selfcheck")
    other = TaskRun.objects.create(kind="crm.tasks.models.forecast", workspace=theirs)
    assert staff_client.get(f"/api/v1/tasks/{own.pk}").status_code == 200
    assert staff_client.get(f"/api/v1/tasks/{platform.pk}").status_code == 200
    assert staff_client.get(f"/api/v1/tasks/{other.pk}").status_code == 404
    user.is_superuser = True
    user.save()
    assert staff_client.get(f"/api/v1/tasks/{other.pk}").status_code == 200
