"""A campaign's life: launch, pause, resume, cancel, resend to the failed; and the one rule
that marks it sent."""

import secrets

from django.db import transaction
from django.utils import timezone

from campaigns.decisions import targeting
from campaigns.models import Campaign, Message, Variant
from campaigns.protection import breaker
from campaigns.services.fanout import deliveries_queue_on_commit
from workers.services import task_run_start

PENDING = (Message.State.QUEUED, Message.State.SENDING)


class CampaignError(Exception):
    """A request the campaign's state or content does not allow; `errors` maps field -> messages."""

    def __init__(self, errors: dict[str, list[str]] | str) -> None:
        self.errors = errors if isinstance(errors, dict) else {"detail": [errors]}
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items()))


def launch_problems(campaign: Campaign) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if campaign.kind == Campaign.Kind.JOURNEY:
        errors.setdefault("kind", []).append(
            "a journey's message is sent by the journey's send steps, not launched"
        )
    if campaign.status != Campaign.Status.DRAFT:
        errors.setdefault("status", []).append(
            f"only a draft can be launched (it is {campaign.status})"
        )
    if not campaign.include_segments.exists():
        errors.setdefault("include_segments", []).append("choose at least one segment to send to")
    approved = list(campaign.variants.filter(status=Variant.Status.APPROVED))
    if not approved:
        errors.setdefault("variants", []).append("approve at least one variant")
    if campaign.ab_test_percent and len(approved) < 2:
        errors.setdefault("ab_test_percent", []).append("an A/B test needs two approved variants")
    errors.update(
        bandit_problems(campaign.bandit, campaign.ab_test_percent, len(approved), campaign.timing)
    )
    if campaign.timing == Campaign.Timing.AT and not campaign.send_at:
        errors.setdefault("send_at", []).append("required when sending at one moment")
    if campaign.timing == Campaign.Timing.LOCAL and not (
        campaign.local_date and campaign.local_time
    ):
        errors.setdefault("local_time", []).append("date and time required for local-time sends")
    if bool(campaign.quiet_start) != bool(campaign.quiet_end):
        errors.setdefault("quiet_end", []).append("give both ends of the quiet hours")
    if campaign.channel == "email" and any(not v.subject.strip() for v in approved):
        errors.setdefault("variants", []).append("every e-mail variant needs a subject")
    for field, problems in targeting.launch_problems(campaign).items():
        errors.setdefault(field, []).extend(problems)
    return errors


def bandit_problems(
    bandit: str, ab_test_percent, approved: int | None, timing: str = ""
) -> dict[str, list[str]]:
    """Why a bandit campaign cannot be so: it chooses its variants itself, in waves, so not beside
    an A/B test, nor with best-hour timing (that plans each hour at launch; a later wave is
    decided after the hours it was planned for), and among two approved variants at least
    (`approved`: None where not known)."""
    errors: dict[str, list[str]] = {}
    if bandit and ab_test_percent:
        errors["bandit"] = ["a bandit chooses the variants itself: leave the A/B test share empty"]
    elif bandit and timing == Campaign.Timing.BEST:
        errors["bandit"] = [
            "a bandit sends in waves, each after the last one's results; best-hour timing plans "
            "every recipient's hour at launch: choose one of the two"
        ]
    elif bandit and approved is not None and approved < 2:
        errors["bandit"] = ["a bandit needs two approved variants or more"]
    return errors


def campaign_launch(*, campaign: Campaign, user=None):
    """Freezes the campaign (status scheduled, seed drawn) and starts the run that writes the
    ledger and queues the first sends. Returns the TaskRun."""
    errors = launch_problems(campaign)
    if errors:
        raise CampaignError(errors)
    with transaction.atomic():
        seed = campaign.seed if campaign.seed is not None else secrets.randbits(48)
        updated = Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.DRAFT).update(
            status=Campaign.Status.SCHEDULED, seed=seed, launched_at=timezone.now()
        )
        if not updated:
            raise CampaignError({"status": ["the campaign was launched already"]})
        run = task_run_start(
            task="campaigns.tasks.launch",
            params={"campaign": campaign.pk},
            user=user,
            workspace=campaign.workspace,
        )
    campaign.refresh_from_db()
    return run


def _transition(campaign: Campaign, allowed: tuple, to: str) -> None:
    updated = Campaign.objects.filter(pk=campaign.pk, status__in=allowed).update(status=to)
    if not updated:
        campaign.refresh_from_db()
        raise CampaignError({"status": [f"cannot go from {campaign.status} to {to}"]})
    campaign.refresh_from_db()


def campaign_pause(*, campaign: Campaign) -> None:
    """Stops sending after the messages in flight; queued rows wait."""
    _transition(
        campaign, (Campaign.Status.SCHEDULED, Campaign.Status.SENDING), Campaign.Status.PAUSED
    )


def campaign_resume(*, campaign: Campaign) -> None:
    """Sends on from where it stopped; a circuit breaker's pause is lifted (its count starts
    again from here)."""
    with transaction.atomic():
        _transition(campaign, (Campaign.Status.PAUSED,), Campaign.Status.SENDING)
        breaker.breaker_lift(campaign_id=campaign.pk)
    deliveries_queue_on_commit(campaign.pk)


@transaction.atomic
def campaign_cancel(*, campaign: Campaign) -> int:
    """Cancels: rows not yet sent are skipped with reason "cancelled". Returns how many."""
    _transition(
        campaign,
        (
            Campaign.Status.DRAFT,
            Campaign.Status.SCHEDULED,
            Campaign.Status.SENDING,
            Campaign.Status.PAUSED,
        ),
        Campaign.Status.CANCELLED,
    )
    return Message.objects.filter(campaign=campaign, state=Message.State.QUEUED).update(
        state=Message.State.SKIPPED, reason="cancelled"
    )


def campaign_resend_failed(*, campaign: Campaign) -> int:
    """Queues the failed rows again (fresh attempts) and the campaign sends them."""
    with transaction.atomic():
        count = Message.objects.filter(campaign=campaign, state=Message.State.FAILED).update(
            state=Message.State.QUEUED, attempts=0, reason="", send_at=timezone.now()
        )
        if count:
            Campaign.objects.filter(
                pk=campaign.pk, status__in=(Campaign.Status.SENT, Campaign.Status.SENDING)
            ).update(status=Campaign.Status.SENDING, finished_at=None)
    if count:
        deliveries_queue_on_commit(campaign.pk)
    campaign.refresh_from_db()
    return count


def campaign_finish_if_done(*, campaign_id: int, ledger_written: bool = False) -> bool:
    """The one rule for "done": a scheduled or sending campaign is marked sent (finished_at now)
    once its ledger is written and no row waits (the A/B rest, still without a variant,
    included). An empty ledger reads as not written yet, unless the caller has just written it
    (`ledger_written`: the launch run), when it means nobody was to be sent to. Returns whether
    this call marked it; a paused, cancelled or already sent campaign is left as it is."""
    if Message.objects.filter(campaign_id=campaign_id, state__in=PENDING).exists():
        return False
    if not ledger_written and not Message.objects.filter(campaign_id=campaign_id).exists():
        return False
    return bool(
        Campaign.objects.filter(
            pk=campaign_id,
            kind=Campaign.Kind.BROADCAST,  # a journey's message is never done while it is live
            status__in=(Campaign.Status.SCHEDULED, Campaign.Status.SENDING),
        ).update(status=Campaign.Status.SENT, finished_at=timezone.now())
    )
