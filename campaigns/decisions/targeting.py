"""Who of the eligible audience gets the message: everyone, or by predicted uplift (the active
`uplift.<goal>` model's scores, campaigns.services.uplift).

- `uplift_top`: the top `targeting_percent`% of the eligible audience by uplift score;
- `uplift_positive`: those whose predicted uplift is above 0.

A random `targeting_control_percent` share of the non-held-out audience (a reproducible draw on
the campaign's seed) is sent whatever its score, so the results can compare three random arms:
the targeted arm (sent if selected), the control share (everyone sent) and the holdout (no one
sent), and so say what the targeting earned. The others are skipped as "not targeted: ...".
Every row, the holdout's included, records its score ("uplift", None when it has none) and
whether the rule selects it ("targeted"; for the holdout: would have), and a campaign that sends
to everyone records the scores too when the goal has an active model, so its holdout measures
the model on a clean randomised test.
"""

import math

from campaigns.models import Campaign
from campaigns.services import uplift
from campaigns.services.draws import unit
from crm.models import CustomerScore

TARGETED = (Campaign.Targeting.UPLIFT_TOP, Campaign.Targeting.UPLIFT_POSITIVE)


def launch_problems(campaign: Campaign) -> dict[str, list[str]]:
    """Why `campaign`'s targeting cannot launch (field -> messages); {} when it can."""
    if campaign.targeting not in TARGETED:
        return {}
    errors: dict[str, list[str]] = {}
    problem = uplift.goal_problem(campaign.goal_event)
    if problem:
        return {"goal_event": [problem]}
    if uplift.active_version(campaign.workspace_id, campaign.goal_event) is None:
        errors["targeting"] = [
            f"no active uplift model for the goal {campaign.goal_event!r} in this workspace: "
            "train one first (Campaigns: 'Train an uplift model for the selected campaigns' "
            "goals'), on sent campaigns with a holdout"
        ]
    if campaign.targeting == Campaign.Targeting.UPLIFT_TOP and not campaign.targeting_percent:
        errors["targeting_percent"] = ["required for top k% targeting: the k"]
    return errors


def _scores(workspace_id: int, goal: str) -> dict[int, float]:
    # The workspace's whole column (one index range), not an IN list of the audience: an
    # audience of 100,000 would pass SQLite's limit on query parameters.
    return dict(
        CustomerScore.objects.filter(
            workspace_id=workspace_id, kind=uplift.score_kind(goal)
        ).values_list("customer_id", "value")
    )


class Everyone:
    """No targeting: every eligible customer is sent to; `scores` (when the goal has an active
    model) are recorded, not acted on."""

    def __init__(self, scores: dict[int, float] | None = None) -> None:
        self.scores = scores

    def decide(self, customer_id: int, held_out: bool) -> tuple[str, dict]:
        """(why `customer_id` is not sent to, or "", facts for the message's `decision`).
        Called for the holdout too (`held_out`), whose facts the results compare against."""
        if self.scores is None:
            return "", {}
        return "", {"uplift": self.scores.get(customer_id)}


class ByUplift:
    """Targets by the stored uplift scores of the campaign's goal."""

    def __init__(
        self,
        *,
        rule: str,
        scores: dict[int, float],
        eligible: list[int],
        percent: float | None,
        control_percent: float,
        seed: int,
        threshold: float | None = None,
    ) -> None:
        self.rule, self.scores, self.seed = rule, scores, seed
        self.control = control_percent / 100
        self.percent = percent
        if rule == Campaign.Targeting.UPLIFT_POSITIVE:
            self.selected = {pk for pk in eligible if scores.get(pk, 0) > 0}
            self.why = "not targeted: predicted uplift not above 0"
        elif threshold is not None:  # a journey: the cut-off of the workspace's scores
            self.selected = {pk for pk in eligible if scores.get(pk, -math.inf) >= threshold}
            self.why = f"not targeted: uplift below the top {percent:g}%"
        else:
            # Top k% of the eligible audience, those without a score counted in it but never
            # chosen; ties broken by customer id so a relaunch chooses the same people.
            k = round(len(eligible) * (percent or 0) / 100)
            ranked = sorted((pk for pk in eligible if pk in scores), key=lambda pk: -scores[pk])
            self.selected = set(ranked[:k])
            self.why = f"not targeted: uplift below the top {percent:g}%"

    def decide(self, customer_id: int, held_out: bool) -> tuple[str, dict]:
        score = self.scores.get(customer_id)
        facts = {
            "uplift": score,
            "targeted": customer_id in self.selected,
            "targeting": str(self.rule),
        }
        if held_out:
            return "", facts
        facts["targeting_control"] = unit(self.seed, "targeting", customer_id) < self.control
        if facts["targeted"] or facts["targeting_control"]:
            return "", facts
        return ("not targeted: no uplift score" if score is None else self.why), facts


def for_launch(campaign: Campaign, customer_ids: list[int]):
    """The targeting of `campaign` over its eligible audience `customer_ids` (those with an
    address, consent and room under the frequency cap; the holdout among them)."""
    goal = campaign.goal_event
    if campaign.targeting not in TARGETED:
        if uplift.goal_problem(goal) or uplift.active_version(campaign.workspace_id, goal) is None:
            return Everyone()
        return Everyone(_scores(campaign.workspace_id, goal))
    return ByUplift(
        rule=campaign.targeting,
        scores=_scores(campaign.workspace_id, goal),
        eligible=list(customer_ids),
        percent=campaign.targeting_percent,
        control_percent=campaign.targeting_control_percent,
        seed=campaign.seed or 0,
    )


def message_rule(campaign: Campaign) -> dict:
    """The targeting rule a journey's message carries, as journey_allows takes it."""
    return {"targeting": campaign.targeting, "percent": campaign.targeting_percent,
            "control_percent": campaign.targeting_control_percent}  # fmt: skip


def journey_rule_problems(campaign: Campaign, rule: dict) -> dict[str, list[str]]:
    """Why a journey send step's targeting `rule` cannot be used (field -> messages)."""
    if not isinstance(rule, dict):
        return {"targeting": ["a targeting rule is a JSON object"]}
    kind = rule.get("targeting", Campaign.Targeting.EVERYONE)
    if kind not in Campaign.Targeting.values:
        return {"targeting": [f"one of {', '.join(Campaign.Targeting.values)}"]}
    errors: dict[str, list[str]] = {}
    if kind == Campaign.Targeting.UPLIFT_TOP:
        percent = rule.get("percent")
        if isinstance(percent, bool) or not isinstance(percent, int | float):
            errors["percent"] = ["required for top k% targeting: a number from 1 to 100"]
        elif not 1 <= percent <= 100:
            errors["percent"] = ["a number from 1 to 100"]
    control = rule.get("control_percent", 10)
    if isinstance(control, bool) or not isinstance(control, int | float) or not 0 <= control <= 50:
        errors["control_percent"] = ["a number from 0 to 50"]
    goal = campaign.goal_event
    if kind in TARGETED and uplift.active_version(campaign.workspace_id, goal) is None:
        errors["targeting"] = [f"no active uplift model for the goal {goal!r}"]
    return errors


def journey_allows(campaign: Campaign, customer_ids: list[int], rule: dict) -> dict:
    """For a journey's send step: {customer id: (why not sent, or "", facts)}.

    `rule`: {"targeting": "everyone" | "uplift_top" | "uplift_positive", "percent": k (top k%),
    "control_percent": c (default 10)}. Customers reach a step a few at a time, so "top k%" is
    measured against the whole workspace's scores (at or above their (100 - k)th percentile),
    not against the batch at hand. The control share is drawn on the campaign's seed and the
    customer, as at launch. Without an active model nobody is targeted (each is skipped with
    the reason), rather than silently sending to everyone; journey_rule_problems says so first.
    """
    problems = journey_rule_problems(campaign, rule)
    kind = rule.get("targeting", "everyone") if isinstance(rule, dict) else None
    if problems.keys() - {"targeting"} or kind not in Campaign.Targeting.values:
        raise ValueError("; ".join(f"{k}: {' '.join(v)}" for k, v in problems.items()))
    ids = list(customer_ids)
    if kind not in TARGETED:
        return dict.fromkeys(ids, ("", {}))
    if problems:
        facts = {"uplift": None, "targeted": False, "targeting": kind}
        return {pk: ("not targeted: no active uplift model", dict(facts)) for pk in ids}
    scores = _scores(campaign.workspace_id, campaign.goal_event)
    threshold = None
    if kind == Campaign.Targeting.UPLIFT_TOP:
        ranked = sorted(scores.values(), reverse=True)
        k = max(1, round(len(ranked) * rule["percent"] / 100))
        threshold = ranked[k - 1] if ranked else math.inf
    chooser = ByUplift(
        rule=kind,
        scores=scores,
        eligible=ids,
        percent=rule.get("percent"),
        control_percent=float(rule.get("control_percent", 10)),
        seed=campaign.seed or 0,
        threshold=threshold,
    )
    return {pk: chooser.decide(pk, held_out=False) for pk in ids}
