"""`manage.py demo_uplift`: a sent campaign with a 50% holdout and simulated conversions, written
once, with nothing e-mailed."""

from io import StringIO

import pytest
from django.core import mail
from django.core.management import CommandError, call_command

from campaigns.models import Campaign, Message
from campaigns.services.uplift_data import training_set
from crm.models import Event
from tests.campaigns.uplift_world import shop

pytestmark = pytest.mark.django_db


def test_the_demo_campaign_is_written_once_and_sends_nothing(workspace):
    segment, _ = shop(workspace, n=200)
    out = StringIO()
    call_command("demo_uplift", workspace="shop", segment=segment.name, stdout=out)
    campaign = Campaign.objects.get(workspace=workspace, name__startswith="Demo: uplift")
    assert campaign.status == "sent" and campaign.holdout_percent == 50
    rows = Message.objects.filter(campaign=campaign)
    assert rows.count() == 200 and not rows.filter(state__in=["queued", "sending"]).exists()
    assert 70 < rows.filter(holdout=True).count() < 130
    assert not rows.exclude(holdout=True).exclude(state="sent").exists()
    assert mail.outbox == []
    simulated = Event.objects.filter(workspace=workspace, properties__simulated=True)
    assert simulated.count() > 10
    data = training_set(workspace=workspace, goal="purchase")
    assert data.counts()["rows"] == 200 and data.y.sum() == simulated.count()
    # the lapsing regulars convert more when sent (the effect the model should find)
    assert "sent" in out.getvalue()

    call_command("demo_uplift", workspace="shop", segment=segment.name, stdout=StringIO())
    call_command("demo_uplift", workspace="shop", if_empty=True, stdout=StringIO())
    assert Campaign.objects.filter(workspace=workspace).count() == 1
    assert Message.objects.count() == 200 and simulated.count() == data.y.sum()


def test_unknown_workspace_or_segment_is_a_clear_error(workspace):
    with pytest.raises(CommandError, match="no workspace"):
        call_command("demo_uplift", workspace="nope")
    with pytest.raises(CommandError, match="no segment"):
        call_command("demo_uplift", workspace="shop", segment="nobody")
