"""What each generated variant earned, beside how it was written (#19, learning what works):
the ledger's sends, people's opens and clicks and the conversions attributed to it, with the
prompts, seed, settings and model its provenance recorded; and the workspace's past winners,
the examples the copy writer is conditioned on (marketing_ai.ml.language.fewshot).

Counted as campaigns.services.results counts a variant (sent messages outside the holdout;
conversions as attributed there, when results were last read), except that opens and clicks are
people's: an open is a person's when its event's user agent and timing are not a machine's
(Apple Mail Privacy Protection, image proxies, see marketing_ai.ml.sendtime.is_machine_open) or
when a person clicked; a click stamped by a link scanner is not counted.
"""

from django.db.models import Count, Max, Q

from campaigns.models import BrandRules, Message, Variant
from campaigns.sandbox import unliteral
from crm.models import Event, Workspace
from marketing_ai.ml import experiment
from marketing_ai.ml.language import copywriter, fewshot

CLICK, OPEN = "email_click", "email_open"  # the events campaigns.services.engagement writes
RECENT = 200  # variants looked at: the latest sent; older copy says little about today's readers


def _channel_filter(channel: str | None) -> Q:
    """The brief's channel: "sms" writes a text, anything else (e-mail, webhook) e-mail fields."""
    if channel is None:
        return Q()
    if channel == "sms":
        return Q(campaign__channel="sms")
    return ~Q(campaign__channel="sms")


def _people(workspace: Workspace, variant_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per variant: opens and clicks by people (see the module's note)."""
    # sendtime brings numpy and scipy; only the copy run and its brief ask this
    from marketing_ai.ml.sendtime import is_machine_click, is_machine_open

    engaged = list(
        Message.objects.filter(variant_id__in=variant_ids, state=Message.State.SENT, holdout=False)
        .filter(Q(opened_at__isnull=False) | Q(clicked_at__isnull=False))
        .values_list("variant_id", "token", "clicked_at")
    )
    keys = [f"{kind}:{token.hex}" for _, token, _ in engaged for kind in (OPEN, CLICK)]
    evidence: dict[str, dict] = {}
    for start in range(0, len(keys), 2000):
        rows = Event.objects.filter(
            workspace=workspace,
            type__in=[OPEN, CLICK],
            idempotency_key__in=keys[start : start + 2000],
        ).values_list("idempotency_key", "properties")
        evidence.update({key: props if isinstance(props, dict) else {} for key, props in rows})
    counts: dict[int, dict[str, int]] = {}
    for variant_id, token, clicked_at in engaged:
        tally = counts.setdefault(variant_id, {"opens": 0, "clicks": 0})
        click = evidence.get(f"{CLICK}:{token.hex}")
        clicked = clicked_at is not None and not (
            click is not None and is_machine_click(click.get("user_agent"))
        )
        opened = evidence.get(f"{OPEN}:{token.hex}")
        seconds = opened.get("seconds_after_send") if opened else None
        person_open = opened is not None and not is_machine_open(
            opened.get("user_agent") if "user_agent" in opened else None,
            seconds if isinstance(seconds, int | float) else None,
        )
        tally["clicks"] += clicked
        tally["opens"] += clicked or person_open
    return counts


def _goal(provenance: dict) -> str:
    # Variants written before the goal was recorded: the brief's text starts with it.
    return provenance.get("goal") or (provenance.get("brief") or "").split("\n")[0]


def _rate(hits: int, n: int) -> dict:
    low, high = experiment.wilson_interval(hits, n)
    return {"count": hits, "rate": hits / n if n else None, "ci95": [low, high] if n else None}


def variant_results(
    *, workspace: Workspace, channel: str | None = None, goal: str | None = None
) -> list[dict]:
    """The workspace's approved generated variants that were sent, latest sent first (at most
    RECENT): per variant `variant`, `campaign`, `name`, `channel`, `goal`, `sent`, `opens`,
    `clicks`, `conversions` (each {count, rate, ci95}, rates per message sent), `last_sent`
    (datetime, UTC), the copy as sent (`fields`), what it was written for (`brief`: products,
    goal, offer) and how (`prompts`, `seed`, `parameters`, `model`, `examples_from`).
    `channel` "sms" or "email" (anything but SMS); `goal` the brief's goal, any case."""
    sent = Q(messages__state=Message.State.SENT, messages__holdout=False)
    variants = (
        Variant.objects.filter(
            campaign__workspace=workspace,
            status=Variant.Status.APPROVED,
            provenance__generated=True,
        )
        .filter(_channel_filter(channel))
        .annotate(
            sent=Count("messages", filter=sent),
            conversions=Count("messages", filter=sent & Q(messages__converted_at__isnull=False)),
            last_sent=Max("messages__sent_at", filter=sent),
        )
        .filter(sent__gt=0)
        .select_related("campaign")
        .order_by("-last_sent", "-pk")[:RECENT]
    )
    variants = list(variants)
    if goal is not None:
        wanted = goal.strip().lower()
        variants = [v for v in variants if _goal(v.provenance).strip().lower() == wanted]
    people = _people(workspace, [v.pk for v in variants])
    rows = []
    for v in variants:
        provenance = v.provenance or {}
        tally = people.get(v.pk, {"opens": 0, "clicks": 0})
        rows.append(
            {
                "variant": v.pk,
                "campaign": v.campaign_id,
                "name": v.name,
                "channel": v.campaign.channel,
                "goal": _goal(provenance),
                "sent": v.sent,
                "opens": _rate(tally["opens"], v.sent),
                "clicks": _rate(tally["clicks"], v.sent),
                "conversions": _rate(v.conversions, v.sent),
                "last_sent": v.last_sent,
                "fields": _fields(v),
                "brief": {
                    "products": list(provenance.get("brief_products") or []),
                    "goal": _goal(provenance),
                    "offer": provenance.get("offer") or "",
                },
                "prompts": provenance.get("prompts") or {},
                "seed": provenance.get("seed"),
                "parameters": provenance.get("parameters") or {},
                "model": {k: provenance.get(k) for k in ("model", "backend", "device")},
                "examples_from": list(provenance.get("examples_from") or []),
            }
        )
    return rows


def _fields(variant: Variant) -> dict[str, str]:
    """The copy as it went out (staff may have edited the model's draft before approving)."""
    if variant.campaign.channel == "sms":
        return {"text": unliteral(variant.body_text)}
    return {
        "subject": unliteral(variant.subject),
        "preheader": unliteral(variant.preheader),
        "body": copywriter.as_text(variant.body_html),
    }


def _required_phrases(workspace: Workspace) -> list[str]:
    text = BrandRules.objects.filter(workspace=workspace).values_list("required_phrases", flat=True)
    return [line.strip() for line in (text.first() or "").splitlines() if line.strip()]


def past_winners(
    *,
    workspace: Workspace,
    channel: str,
    goal: str = "",
    limit: int = fewshot.MAX_EXAMPLES,
    min_sends: int = fewshot.MIN_SENDS,
) -> list[dict]:
    """Examples for a new brief (Brief.examples, best first): the workspace's past generated
    variants on this channel that earned people's clicks, ranked by fewshot.winners (lower
    bound of the click rate, at least `min_sends` sends, the latest among ties); those written
    for the same goal when any of them is a winner, else any goal's. The brand's required
    phrases are left out of the examples (the writer appends them itself)."""
    rows = variant_results(workspace=workspace, channel=channel)
    results = [
        fewshot.Result(
            variant=row["variant"],
            sent=row["sent"],
            clicks=row["clicks"]["count"],
            at=row["last_sent"].isoformat() if row["last_sent"] else "",
            fields=row["fields"],
            brief=row["brief"],
        )
        for row in rows
    ]
    wanted = goal.strip().lower()
    same_goal = [r for r in results if r.brief.get("goal", "").strip().lower() == wanted]
    chosen = fewshot.winners(same_goal, min_sends, limit) if wanted else []
    chosen = chosen or fewshot.winners(results, min_sends, limit)
    drop = _required_phrases(workspace)
    return [fewshot.example(r, drop=drop) for r in chosen]
