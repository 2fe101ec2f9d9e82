"""Campaign state changes staff and integrators make: launch, pause, resume, cancel, resend to
the failed, approve a variant; and the bookkeeping that marks a campaign sent."""

import secrets

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import rendering
from campaigns.models import Campaign, Message, Variant
from crm.models import Customer

PENDING = (Message.State.QUEUED, Message.State.SENDING)


class CampaignError(Exception):
    """A request the campaign's state or content does not allow; `errors` maps field -> messages."""

    def __init__(self, errors: dict[str, list[str]] | str) -> None:
        self.errors = errors if isinstance(errors, dict) else {"detail": [errors]}
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in self.errors.items()))


def launch_problems(campaign: Campaign) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
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
    return errors


def campaign_launch(*, campaign: Campaign, user=None):
    """Freezes the campaign (status scheduled, seed drawn) and starts the run that writes the
    ledger and queues the first sends. Returns the TaskRun."""
    # Imported here: campaigns.tasks imports this module's services.
    from campaigns.tasks import launch
    from workers.services import task_run_start

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
            task=launch, params={"campaign": campaign.pk}, user=user, workspace=campaign.workspace
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
    _transition(campaign, (Campaign.Status.PAUSED,), Campaign.Status.SENDING)
    kick(campaign.pk)


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
        kick(campaign.pk)
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
            pk=campaign_id, status__in=(Campaign.Status.SCHEDULED, Campaign.Status.SENDING)
        ).update(status=Campaign.Status.SENT, finished_at=timezone.now())
    )


def kick(campaign_id: int) -> None:
    """Queues deliver tasks for the campaign after the current transaction commits."""
    from campaigns.tasks import queue_deliveries  # here: campaigns.tasks imports this module

    transaction.on_commit(lambda: queue_deliveries(campaign_id))


# What an approval vouches for: the copy, and the provenance its generated-copy check reads.
# A change to any of them takes the approval back; a new name or weight does not.
APPROVED_CONTENT = ("subject", "preheader", "body_html", "body_text", "provenance")


@transaction.atomic
@transaction.atomic
def variant_update(*, variant: Variant, fields: dict) -> Variant:
    """Saves an edit of a draft campaign's variant: `fields` maps field names to new values
    (`variant` may hold them already, as an admin form's instance does). An approved variant
    whose content (APPROVED_CONTENT) differs from the stored row goes back to draft and must be
    approved again. Raises CampaignError once the campaign has left draft: its copy is frozen."""
    # The campaign's row is locked so a launch cannot freeze copy that is being changed.
    campaign = Campaign.objects.select_for_update().get(pk=variant.campaign_id)
    if campaign.status != Campaign.Status.DRAFT:
        raise CampaignError({"status": ["the campaign is launched; its copy is frozen"]})
    stored = Variant.objects.select_for_update().values(*APPROVED_CONTENT).get(pk=variant.pk)
    for name, value in fields.items():
        setattr(variant, name, value)
    if any(getattr(variant, name) != stored[name] for name in APPROVED_CONTENT):
        variant.status, variant.approved_at, variant.approved_by = Variant.Status.DRAFT, None, None
    variant.save()
    return variant


def variant_approve(*, variant: Variant, user=None, sample: Customer | None = None) -> None:
    """Approves a variant after compiling its templates and rendering them for a sample
    customer, so template errors surface here and not at send time."""
    try:
        compiled = rendering.compile_variant(
            subject=variant.subject, preheader=variant.preheader,
            body_html=variant.body_html, body_text=variant.body_text,
        )  # fmt: skip
        sample = (
            sample
            or Customer.objects.filter(
                workspace_id=variant.campaign.workspace_id, erased_at__isnull=True
            )
            .filter(~Q(email=None))
            .first()
        )
        if sample is not None:
            compiled.render_for(sample, unsubscribe_url="#", preferences_url="#")
    except rendering.VariantError as exc:
        raise CampaignError({"body_html": [str(exc)]}) from exc
    except Exception as exc:
        raise CampaignError(
            {"body_html": [f"rendering failed: {type(exc).__name__}: {exc}"]}
        ) from exc
    _check_generated_copy(variant)
    if variant.campaign.channel == "sms":
        text = (
            compiled.render_for(sample, unsubscribe_url="", preferences_url="").text
            if sample
            else variant.body_text
        )
        if len(text) > 160:
            raise CampaignError(
                {"body_text": [f"an SMS is at most 160 characters (this one {len(text)})"]}
            )
    Variant.objects.filter(pk=variant.pk).update(
        status=Variant.Status.APPROVED, approved_at=timezone.now(), approved_by=user
    )
    variant.refresh_from_db()


def _check_generated_copy(variant: Variant) -> None:
    """Generated copy passes the brand rules as it stands now, edits included."""
    from campaigns.services.copy import variant_copy_check

    report = variant_copy_check(variant)
    if report is not None and not report.passed:
        errors: dict[str, list[str]] = {}
        for failure in report.failures:
            errors.setdefault(failure.field, []).append(
                f"{failure.rule.replace('_', ' ')}: {failure.detail}"
            )
        raise CampaignError(errors)
