"""Variants of a draft campaign: edits (an approved variant whose copy changes needs approving
again) and approval (templates compiled and rendered for a sample customer, generated copy
checked against the brand rules as it stands)."""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import rendering
from campaigns.models import Campaign, Variant
from campaigns.services.copy import variant_copy_check
from campaigns.services.lifecycle import CampaignError
from crm.models import Customer

# What an approval vouches for: the copy, and the provenance its generated-copy check reads.
# A change to any of them takes the approval back; a new name or weight does not.
APPROVED_CONTENT = ("subject", "preheader", "body_html", "body_text", "provenance")


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
            subject=variant.subject,
            preheader=variant.preheader,
            body_html=variant.body_html,
            body_text=variant.body_text,
        )
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
    report = variant_copy_check(variant)
    if report is not None and not report.passed:
        errors: dict[str, list[str]] = {}
        for failure in report.failures:
            errors.setdefault(failure.field, []).append(
                f"{failure.rule.replace('_', ' ')}: {failure.detail}"
            )
        raise CampaignError(errors)
