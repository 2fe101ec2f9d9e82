"""Honest labels on generated copy (issue #19): the provenance says who wrote a variant (the
model, as its backend describes itself, or the fill-in template offered beside it) and how it did
on every check; the admin says so in words, and says plainly when the configured model is the
small offline default."""

import json
import re
import threading
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.core.management import get_commands, load_command_class

from campaigns.admin.campaigns import written_by
from campaigns.models import Campaign, Variant
from campaigns.services import copy
from crm import services
from marketing_ai.ml.language import copywriter, guardrails
from tests.campaigns.test_copy import setup_shop
from tests.conftest import free_port


def admin_for(workspace, client, admin_user):
    workspace.members.add(admin_user)
    client.force_login(admin_user)
    return client


@pytest.mark.django_db
def test_the_packaged_model_writes_labelled_variants_and_templates_beside_them(workspace):
    from marketing_ai.ml.language import llm  # torch and transformers: only this test loads them

    services.product_bulk_upsert(
        workspace=workspace,
        rows=[{"sku": "LAMP", "name": "MOROCCAN METAL LANTERN", "description": "Metal lantern"}],
    )
    campaign = Campaign.objects.create(workspace=workspace, name="Lanterns", channel="sms")
    params = {"products": ["LAMP"], "goal": "Light up the evenings", "k": 1, "rounds": 1}
    done = copy.variants_generate(campaign=campaign, params=params, model=llm.language_model())
    (variant,) = Variant.objects.filter(pk__in=done["variants"])
    provenance = variant.provenance
    assert variant.name == "AI 1" and provenance["source"] == "model"
    # The backend's own description, the packaged model saying it is the offline default.
    assert provenance["backend"] == "in-process" and provenance["offline_default"] is True
    assert provenance["model"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    checks = {c["name"]: c for c in provenance["checks"]}
    assert {"unsupported", "season", "order_talk", "truncated", "names"} <= checks.keys()
    failed = [f["rule"] for f in provenance["guardrails"]["failures"]]
    assert {name for name, c in checks.items() if not c["passed"]} == set(failed)
    assert all(c["words"] for c in checks.values() if not c["passed"])
    assert -1 <= provenance["scores"]["relevance"] <= 1
    label = written_by(provenance)
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in label and "small offline default" in label
    assert ("Passed all" in label) == provenance["guardrails"]["passed"]
    # A template is offered where the model's draft failed or the template is more relevant.
    templates = list(Variant.objects.filter(pk__in=done["templates"]))
    if not provenance["guardrails"]["passed"]:
        assert templates
    for template in templates:
        assert template.name.startswith("Template ") and template.provenance["source"] == "template"
        assert template.provenance["guardrails"]["passed"]


@pytest.mark.django_db
def test_a_failing_draft_gets_a_template_marked_as_such(workspace, client, admin_user):
    campaign = setup_shop(workspace)
    campaign.send_at = datetime(2026, 12, 10, 9, tzinfo=UTC)
    brief = copy.copy_brief(campaign=campaign, params={"products": ["TEA"], "goal": "Tea time"})
    rules, _ = copy.brand_rules(workspace)
    failure = guardrails.Failure("category", "body", "glass")
    failing = copywriter.Draft(
        {"subject": "Tea", "preheader": "Tea", "body": "Smart glass."},
        guardrails.Report([failure]),
        2,
        0,
    )
    (template,) = copywriter.templates_beside(brief, [failing], rules)
    stored = copy._store(campaign, "Template 1", template, brief, None, {})
    provenance = stored.provenance
    assert provenance["source"] == "template" and provenance["backend"] == "template"
    assert all(c["passed"] for c in provenance["checks"])
    assert "Roses Regency Teacup And Saucer" in stored.subject
    label = written_by(provenance)
    assert label.startswith("A fill-in template, not the language model")
    assert "offline default" not in label
    # The failing draft's label says what it did wrong, in the checks' own words.
    words = copy.copy_checks(failing.report)
    assert not {c["name"]: c for c in words}["category"]["passed"]
    label = written_by({"generated": True, "source": "model", "model": "/m/big-model",
                        "backend": "openai", "device": "server http://gpu:8000/v1",
                        "offline_default": False, "attempts": 2, "checks": words})  # fmt: skip
    assert label.startswith("The language model big-model (openai, server http://gpu:8000/v1)")
    assert guardrails.describe(failure) in label and "FAILED 1 of" in label
    assert "offline default" not in label

    # The month it goes out in is kept, so approval checks the season as generation did.
    assert provenance["month"] == 12
    stored.body_html = copywriter.as_html(
        "Our Roses Regency Teacup And Saucer for long summer days in the garden.\n\n"
        "You receive this e-mail because you subscribed."
    )
    assert "season" in {f.rule for f in copy.variant_copy_check(stored).failures}

    page = admin_for(workspace, client, admin_user).get(
        f"/admin/campaigns/campaign/{campaign.pk}/change/"
    )
    assert "A fill-in template, not the language model" in page.content.decode()


@pytest.mark.django_db
def test_the_generate_form_names_the_configured_model(workspace, client, admin_user, monkeypatch):
    campaign = setup_shop(workspace)
    url = f"/admin/campaigns/campaign/{campaign.pk}/generate/"
    client = admin_for(workspace, client, admin_user)
    monkeypatch.delenv("MARKETING_AI_LLM", raising=False)
    page = client.get(url).content.decode()
    assert "the small offline default" in page and "SmolLM2-135M" in page
    assert "GPU worker" not in page and "gpu worker" not in page
    form = {"products": "TEA", "goal": "Tea time", "language": "en", "k": 2}
    done = client.post(url, form, follow=True).content.decode()
    assert "with SmolLM2-135M-Instruct (the small offline default)" in done
    assert "gpu worker" not in done

    monkeypatch.setenv("MARKETING_AI_LLM", "openai:http://gpu-node:8000/v1")
    monkeypatch.setenv("MARKETING_AI_LLM_MODEL", "Qwen2.5-7B-Instruct")
    page = client.get(url).content.decode()
    assert "Qwen2.5-7B-Instruct" in page and "http://gpu-node:8000/v1" in page
    assert "offline default" not in page

    # Without a model name the page names the one the server serves (its first /models entry,
    # what the workers will send), not "the server's default model".
    monkeypatch.delenv("MARKETING_AI_LLM_MODEL")
    with serving_models(["Llama-3.1-8B-Instruct"]) as server:
        monkeypatch.setenv("MARKETING_AI_LLM", f"openai:{server}")
        page = client.get(url).content.decode()
    assert "<strong>Llama-3.1-8B-Instruct</strong>" in page and "default model" not in page
    monkeypatch.setenv("MARKETING_AI_LLM", f"openai:http://127.0.0.1:{free_port()}/v1")
    page = client.get(url).content.decode()
    assert "not known yet (MARKETING_AI_LLM_MODEL is unset" in page


@contextmanager
def serving_models(names: list[str]):
    """A stand-in for an outside OpenAI-compatible server that answers /models only."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            body = json.dumps({"data": [{"id": n} for n in names]}).encode()
            self.send_response(200 if self.path.endswith("/models") else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()


# A machine without a GPU runs the gpu queue too (`manage.py up` serves it on the CPU): what
# users read names the queue or the model, never a GPU worker they may not have.
GPU_WORKER = re.compile(
    r"(?i)\b(?:on|in|to|for) (?:a|the)? ?`?gpu`? (?:worker|node)s?\b|gpu worker"
)


def test_no_user_facing_text_promises_a_gpu_worker(client):
    schema = client.get("/api/schema/?format=json").content.decode()
    assert not GPU_WORKER.findall(schema)
    generate = json.loads(schema)["paths"]["/api/v1/content/generate"]["post"]["description"]
    assert "with a GPU or without one" in " ".join(generate.split())
    templates = Path(__file__).resolve().parents[2] / "templates"
    for page in templates.rglob("*.html"):
        assert not GPU_WORKER.findall(page.read_text()), page
    for name, app in get_commands().items():
        if app in ("crm", "campaigns", "workers"):
            text = load_command_class(app, name).help
            assert not GPU_WORKER.findall(text), (name, text)
            assert not re.search(r"(?i)\bon gpu\b", text), (name, text)
