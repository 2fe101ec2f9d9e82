"""Copy written by the language model: a brief from the campaign and the catalogue, K variants
checked by the workspace's brand rules, stored as draft variants with their provenance. Staff
review, edit and approve them like any variant; approval checks generated copy again, so an
edit cannot slip an invented fact past the rules."""

import os
import time

from django.db import transaction
from django.utils import timezone

from campaigns.models import BrandRules, Campaign, Variant
from campaigns.sandbox import literal, unliteral
from campaigns.services.copy_results import past_winners
from campaigns.services.lifecycle import CampaignError
from crm import validation as v
from crm.models import Customer, Product
from crm.selectors.trending_products import TrendingProduct, rising_products
from marketing_ai.ml.language import copywriter, fewshot, guardrails, remote
from marketing_ai.ml.language.packaged import ModelUnavailable
from workers.models import TaskRun
from workers.services import task_run_start

# A brief's problems are reported like any other campaign problem: field -> messages.
BriefError = CampaignError


GENERATE_COPY = "campaigns.tasks.generate_copy"  # the run that writes variants, on gpu


def _lines(text: str) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def brand_rules(workspace) -> tuple[guardrails.BrandRules, BrandRules]:
    """The workspace's rules for the engine (defaults when it has none yet)."""
    row = BrandRules.objects.filter(workspace=workspace).first() or BrandRules(workspace=workspace)
    rules = guardrails.BrandRules(
        banned_words=_lines(row.banned_words),
        banned_claims=_lines(row.banned_claims),
        required_phrases=_lines(row.required_phrases),
        allowed_terms=_lines(row.allowed_terms) + ([row.brand_name] if row.brand_name else []),
        language=row.language,
    )
    rules.max_length.update(
        subject=row.max_subject, preheader=row.max_preheader, body=row.max_body, text=row.max_sms
    )
    return rules, row


def featured_rising(*, campaign: Campaign, params: dict) -> list[TrendingProduct]:
    """The products forecast to rise that staff chose to feature (params["rising"]: SKUs from
    the offer, rising_products); raises BriefError for one the active forecast has not rising."""
    chosen = [str(r).strip() for r in params.get("rising") or [] if str(r).strip()]
    if not chosen:
        return []
    offered = {p.sku: p for p in rising_products(campaign.workspace_id, limit=None)}
    stale = [sku for sku in chosen if sku not in offered]
    if stale:
        raise BriefError({"rising": [f"not forecast to rise now: {sorted(set(stale))}"]})
    return [offered[sku] for sku in dict.fromkeys(chosen)]


def copy_brief(*, campaign: Campaign, params: dict, examples: bool = True) -> copywriter.Brief:
    """Params: products (SKUs or ids), rising (SKUs of products forecast to rise to feature,
    see featured_rising), 1–5 products in all, goal, tone, language, offer, show_prices.
    `examples`: look up the workspace's past winners for the brief (False when only checking
    it: the look-up reads the ledger and loads numpy)."""
    errors: dict[str, list[str]] = {}
    refs = [str(r).strip() for r in params.get("products") or [] if str(r).strip()]
    try:
        rising = featured_rising(campaign=campaign, params=params)
    except BriefError as exc:
        errors.update(exc.errors)
        rising = []
    catalogue = Product.objects.filter(workspace=campaign.workspace)
    products = list(catalogue.filter(sku__in=refs)) + list(
        catalogue.filter(pk__in=[int(r) for r in refs if v.is_identifier(r)]).exclude(sku__in=refs)
    )
    missing = set(refs) - {p.sku for p in products} - {str(p.pk) for p in products}
    if missing:
        errors.setdefault("products", []).append(f"not in the catalogue: {sorted(missing)}")
    named = {p.pk for p in products}
    products += list(catalogue.filter(pk__in=[r.product_id for r in rising]).exclude(pk__in=named))
    if not 1 <= len(products) + len(missing) <= 5 and "rising" not in errors:
        errors.setdefault("products", []).insert(
            0, "name between 1 and 5 products (SKU or id, or ticked as forecast to rise)"
        )
    goal = (params.get("goal") or campaign.name or "").strip()
    if not goal:
        errors["goal"] = ["say what the campaign should achieve"]
    _, row = brand_rules(campaign.workspace)
    language = (params.get("language") or row.language or "en").strip()
    if language not in copywriter.LANGUAGES:
        errors["language"] = [f"one of {', '.join(copywriter.LANGUAGES)}"]
    if errors:
        raise BriefError(errors)
    segments = list(campaign.include_segments.all())
    audience = "; ".join(s.description or s.name for s in segments)
    channel = "sms" if campaign.channel == "sms" else "email"
    return copywriter.Brief(
        goal=goal,
        products=[
            copywriter.Product(
                p.name, p.description or p.category, float(p.price) if p.price is not None else None
            )
            for p in products
        ],
        segment=audience,
        tone=(params.get("tone") or row.tone).strip(),
        language=language,
        channel=channel,
        offer=(params.get("offer") or "").strip(),
        brand=row.brand_name,
        show_prices=bool(params.get("show_prices")),
        # What earned people's clicks in this workspace before, shown to the model as examples.
        examples=(
            past_winners(workspace=campaign.workspace, channel=channel, goal=goal)
            if examples
            else []
        ),
    )


def copy_generation_start(*, campaign: Campaign, params: dict, user=None) -> TaskRun:
    """Starts writing variants for a draft campaign on a `gpu` worker. `params` are the brief's
    fields (see copy_brief) with k, seed and rounds; the brief is checked now so that its
    problems come back to the caller (BriefError, field -> messages) rather than fail the run.
    Returns the queued TaskRun; the variants arrive as drafts to review and approve."""
    if campaign.status != Campaign.Status.DRAFT:
        raise BriefError({"campaign": ["only a draft campaign takes new variants"]})
    copy_brief(campaign=campaign, params=params, examples=False)
    rising = featured_rising(campaign=campaign, params=params)
    if rising:
        # The choice is kept as it was made: a forecast run finishing before the worker starts
        # must not fail the brief staff were shown.
        params = {
            **params,
            "products": [*(params.get("products") or []), *(r.sku for r in rising)],
            "rising": [],
            "brief_rising": [r.as_dict() for r in rising],
        }
    return task_run_start(
        task=GENERATE_COPY,
        params={**params, "campaign": campaign.pk},
        workspace=campaign.workspace,
        user=user,
    )


OFFLINE_DEFAULT = "SmolLM2-135M-Instruct"


def configured_model(workspace=None) -> dict:
    """The language model generation is configured with, as the web process can tell without
    loading it (MARKETING_AI_LLM and MARKETING_AI_LLM_MODEL here; workers read the same
    variables): model, backend, server, offline_default, and `last` — what the workspace's
    latest generated variant records about the model that wrote it (its device), if any."""
    location = os.environ.get("MARKETING_AI_LLM", "").strip()
    if location.startswith("openai:"):
        server = location.removeprefix("openai:")
        name = os.environ.get("MARKETING_AI_LLM_MODEL", "").strip() or _served_model(server)
        info = {"model": name, "backend": "openai", "server": server}
    else:
        info = {"model": location or OFFLINE_DEFAULT, "backend": "in-process", "server": ""}
    info["offline_default"] = OFFLINE_DEFAULT.lower() in info["model"].lower()
    last = None
    if workspace is not None:
        last = (
            Variant.objects.filter(campaign__workspace=workspace, provenance__source="model")
            .order_by("-pk")
            .values_list("provenance", flat=True)
            .first()
        )
    if last:
        last = {k: str(last.get(k) or "") for k in ("model", "backend", "device")}
        last["model"] = last["model"].rstrip("/").rsplit("/", 1)[-1]  # a file name, not a path
    info["last"] = last
    return info


_SERVED: dict[str, tuple[float, str]] = {}  # server -> (when asked, its answer in words)
SERVED_FOR = 300  # seconds a server's model name is trusted before it is asked again


def _served_model(server: str) -> str:
    """The model a server serves when MARKETING_AI_LLM_MODEL names none: its first /models
    entry, as the workers will send (asked once every few minutes, with a short timeout so a
    server that is down does not hold the page)."""
    asked = _SERVED.get(server)
    if asked and time.monotonic() - asked[0] < SERVED_FOR:
        return asked[1]
    backend = remote.OpenAIBackend(server, timeout=2, connect_timeout=1, retries=0)
    try:
        name = backend.model()
    except ModelUnavailable:
        name = f"not known yet (MARKETING_AI_LLM_MODEL is unset and {server} did not answer)"
    _SERVED[server] = (time.monotonic(), name)
    return name


def _catalogue_and_people(workspace) -> tuple[list[str], list[str]]:
    names = list(Product.objects.filter(workspace=workspace).values_list("name", flat=True))
    people = [
        f"{first} {last}"
        for first, last in Customer.objects.filter(workspace=workspace, erased_at__isnull=True)
        .exclude(first_name="")
        .exclude(last_name="")
        .values_list("first_name", "last_name")
    ]
    return names, people


def variants_generate(*, campaign: Campaign, params: dict, model, progress=None) -> dict:
    """Writes K variants (params: brief fields, k, seed, rounds) as draft variants named "AI n",
    and the template copy offered beside them as "Template n" (copywriter.templates_beside).
    Returns their ids (variants, templates), how many of the K passed the checks, tokens and
    seconds."""
    brief = copy_brief(campaign=campaign, params=params)
    rising = params.get("brief_rising") or [
        r.as_dict() for r in featured_rising(campaign=campaign, params=params)
    ]
    rules, _ = brand_rules(campaign.workspace)
    k = max(1, min(int(params.get("k") or 4), 8))
    seed = int(params.get("seed") or 0)
    rounds = max(1, min(int(params.get("rounds") or 6), 8))
    catalogue, people = _catalogue_and_people(campaign.workspace)
    options = {"k": k, "rounds": rounds, "seed": seed, "temperature": 0.7, "top_p": 0.9}
    # The season the mail goes out in, for the season checks where the brief names none.
    month = (campaign.send_at or timezone.now()).month
    drafts, stats = copywriter.write(
        model,
        brief,
        rules,
        catalogue=catalogue,
        people=people,
        progress=progress,
        month=month,
        **options,
    )
    # Where the model did no better than the fill-in templates, they are offered beside it.
    beside = copywriter.templates_beside(brief, drafts, rules, catalogue, people, month=month)
    created = []
    with transaction.atomic():
        taken = set(campaign.variants.values_list("name", flat=True))
        for draft in drafts + beside:
            name = _free_name("AI" if draft.source == "model" else "Template", taken)
            created.append(_store(campaign, name, draft, brief, model, options, rising))
    passed = sum(d.passed for d in drafts)
    return {
        "variants": [v.pk for v in created[: len(drafts)]],
        "templates": [v.pk for v in created[len(drafts) :]],
        "passed": passed,
        "failed": len(drafts) - passed,
        "tokens": stats["tokens"],
        "seconds": round(stats["seconds"], 1),
    }


def _free_name(prefix: str, taken: set[str]) -> str:
    number = 1
    while f"{prefix} {number}" in taken:
        number += 1
    taken.add(f"{prefix} {number}")
    return f"{prefix} {number}"


def copy_checks(report: guardrails.Report) -> list[dict]:
    """Every check the copy went through: its name, whether it passed, and for a failure what
    the copy did in plain words (guardrails.describe), for staff to read beside the variant."""
    found: dict[str, list[str]] = {}
    for failure in report.failures:
        found.setdefault(failure.rule, []).append(guardrails.describe(failure))
    names = dict.fromkeys([*guardrails.DESCRIPTIONS, *found])
    return [
        {"name": name, "passed": name not in found, "words": " ".join(found.get(name, []))}
        for name in names
    ]


def _store(campaign, name, draft, brief, model, options, rising=()) -> Variant:
    fields = draft.fields
    written = draft.source == "model"
    provenance = {
        "generated": True,
        # "model": written by the language model; "template": the fill-in copy offered beside.
        "source": draft.source,
        # Who wrote it: the backend's own description (model, backend, device, offline_default).
        **(model.describe() if written else {"model": "", "backend": "template"}),
        "prompts": draft.prompts,
        "seed": draft.seed,
        "parameters": options,
        "attempts": draft.attempts,
        "brief": brief.facts_text(),
        "brief_products": [p.name for p in brief.products],
        "brief_offer": brief.offer,
        "month": (campaign.send_at or timezone.now()).month,
        # Why a product was in the brief: the forecast it was chosen from, as it stood then.
        "brief_rising": list(rising),
        "goal": brief.goal,
        "offer": brief.offer,
        # The past winners shown to the model as examples (variant ids, best first).
        "examples_from": fewshot.sources(brief) if written else [],
        "fields": fields,
        "guardrails": draft.report.as_dict(),
        "checks": copy_checks(draft.report),
        "scores": dict(draft.scores),  # relevance to the products, mean logprob per token
        "at": timezone.now().isoformat(),
    }
    # Every generated field goes in as literal text (the body's braces are escaped by as_html):
    # the model writes product names an integration chose, and none of it may run as a template.
    if "text" in fields:
        values = {"body_text": literal(fields["text"])}
    else:
        values = {
            "subject": literal(fields["subject"]),
            "preheader": literal(fields["preheader"]),
            "body_html": copywriter.as_html(fields["body"]),
        }
    return Variant.objects.create(
        campaign=campaign, name=name, weight=1, provenance=provenance, **values
    )


def variant_copy_check(variant: Variant) -> guardrails.Report | None:
    """The brand rules over a generated variant as it is now (None for staff-written copy)."""
    provenance = variant.provenance or {}
    if not provenance.get("generated"):
        return None
    rules, _ = brand_rules(variant.campaign.workspace)
    catalogue, people = _catalogue_and_people(variant.campaign.workspace)
    facts = guardrails.Facts(
        provenance.get("brief", ""),
        provenance.get("brief_products", []),
        catalogue,
        people,
        provenance.get("month"),
        provenance.get("brief_offer", ""),
    )
    if variant.campaign.channel == "sms":
        fields = {"text": unliteral(variant.body_text)}
    else:
        fields = {
            "subject": unliteral(variant.subject),
            "preheader": unliteral(variant.preheader),
            "body": copywriter.as_text(variant.body_html),
        }
    return guardrails.check(fields, rules, facts)
