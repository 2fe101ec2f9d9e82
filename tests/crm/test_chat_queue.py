"""A chat reply never waits behind a copy run: it has a queue of its own (`chat`) and `up`
starts a worker of its own for it, so a busy gpu worker holds no customer's answer."""

import uuid

import pytest
from rest_framework.test import APIClient

from crm import services
from tests.conftest import free_port, start_worker, stop_worker, wait_for_worker, wait_until
from tests.crm.factories import shop
from tests.crm.test_support import api_reply
from workers import queues, runtime
from workers.models import TaskRun
from workers.services import task_run_start
from workers.tasks import selfcheck


def test_up_runs_the_chat_queue_in_a_worker_of_its_own():
    workers = runtime.worker_services(queues=list(queues.ALL), concurrency=2)
    argv = {w.name: " ".join(w.argv) for w in workers}
    assert "-Q default,sends,ml,gpu --concurrency 2" in argv["worker:all"]
    assert "-Q chat --concurrency 1" in argv["worker:chat"]
    only_gpu = runtime.worker_services(queues=[queues.GPU], concurrency=1)
    assert [w.name for w in only_gpu] == ["worker:all"]


@pytest.mark.django_db(transaction=True)
def test_a_chat_reply_is_served_while_a_run_holds_the_gpu_worker(workspace, redis_url):
    # The two workers as `up` starts them, each with one slot; the chat worker's model server is
    # a closed port, so what it answers comes from the customer's orders, with no model loaded.
    name = uuid.uuid4().hex[:8]
    gpu = start_worker("default,sends,ml,gpu", f"gpu-{name}")
    chat = start_worker(
        "chat", f"chat-{name}", {"MARKETING_AI_LLM": f"openai:http://127.0.0.1:{free_port()}/v1"}
    )
    try:
        wait_for_worker(f"gpu-{name}")
        wait_for_worker(f"chat-{name}")
        # A run on the gpu queue standing in for a copy run: two minutes, one step at a time.
        busy = task_run_start(
            task=selfcheck, params={"steps": 600, "step_seconds": 0.2}, queue=queues.GPU
        )
        wait_until(lambda: TaskRun.objects.get(pk=busy.pk).status == "running", timeout=30)
        ada, _ = shop(workspace)
        _, secret = services.api_key_create(workspace=workspace, name="t", scopes=["chat"])
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        posted = api.post(
            "/api/v1/chat", {"message": "where is my order?", "customer": f"email:{ada.email}"}
        )
        reply = api_reply(api, posted, timeout=60)
        assert "581001" in reply["text"]
        assert TaskRun.objects.get(pk=busy.pk).status == "running"  # still holding its worker
    finally:
        stop_worker(gpu)
        stop_worker(chat)
