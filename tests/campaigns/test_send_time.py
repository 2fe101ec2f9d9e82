"""campaigns.decisions.timing (best-hour timing) at launch and for journeys, and the public
pages recording what tells a person's open from a machine's."""

from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from campaigns import schedule, tracking
from campaigns.decisions import timing
from campaigns.models import Message
from crm.models import Customer, CustomerScore, Event
from crm.services import send_time
from tests.campaigns.factories import launch_now, make_audience, make_campaign

pytestmark = pytest.mark.django_db

ZONES = ["America/New_York", "Europe/Berlin", "Asia/Tokyo", "Asia/Kolkata"]


def peaked(hour: int) -> list[float]:
    """A shrunk profile with its peak at `hour` and some weight beside it."""
    profile = [0.5 / 21] * 24
    profile[hour], profile[(hour - 1) % 24], profile[(hour + 1) % 24] = 0.3, 0.1, 0.1
    return profile


def give_best_hours(customers, hour_of, *, thin=()) -> None:
    """Stores each customer's best hour as crm.services.send_time writes it."""
    now = timezone.now()
    CustomerScore.objects.bulk_create(
        [
            CustomerScore(
                workspace_id=c.workspace_id,
                customer=c,
                kind="best_hour",
                value=hour_of(c),
                reasons=[
                    {"feature": "thin", "value": c.pk in thin},
                    {"feature": "confidence", "value": 0.9},
                    {"feature": "hour_profile", "value": peaked(hour_of(c))},
                ],
                computed_at=now,
            )
            for c in customers
        ]
    )


def zoned_audience(workspace, n: int):
    segment = make_audience(workspace, n)
    customers = list(Customer.objects.filter(workspace=workspace).order_by("id"))
    for i, c in enumerate(customers):
        c.time_zone = ZONES[i % len(ZONES)]
    Customer.objects.bulk_update(customers, ["time_zone"])
    return segment, customers


def local(message: Message, customers: dict) -> datetime:
    return message.send_at.astimezone(ZoneInfo(customers[message.customer_id].time_zone))


def test_each_recipient_goes_at_their_best_local_hour_within_the_window(workspace):
    segment, customers = zoned_audience(workspace, 1000)
    by_id = {c.pk: c for c in customers}
    give_best_hours(customers, lambda c: c.pk * 7 % 24)
    start = (timezone.now() + timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    kw = {"timing": "best", "send_at": start, "window_hours": 24, "explore_percent": 20}
    one = make_campaign(workspace, segment, name="one", seed=9, **kw)
    two = make_campaign(workspace, segment, name="two", seed=9, **kw)
    launch_now(one)
    launch_now(two)
    rows = list(Message.objects.filter(campaign=one, state="queued"))
    assert len(rows) == 1000
    for m in rows:
        assert start <= m.send_at < start + timedelta(hours=24)  # never outside the window
        d = m.decision
        assert d["best_hour_known"] and d["hour"] == local(m, by_id).hour
        # 24 hour slots where the window starts on the local hour, 25 in Kolkata (+05:30)
        zone = ZoneInfo(by_id[m.customer_id].time_zone)
        n = len(timing.window_slots(start=start, window_hours=24, tz=zone))
        if d["hour_explore"]:
            assert d["hour_probability"] in (
                pytest.approx(0.2 / n, abs=1e-6),
                pytest.approx(0.8 + 0.2 / n, abs=1e-6),  # the draw fell on the best hour
            )
        else:
            assert d["hour"] == d["best_hour"] == by_id[m.customer_id].pk * 7 % 24
            assert d["hour_probability"] == pytest.approx(0.8 + 0.2 / n, abs=1e-6)
    explored = {m.customer_id for m in rows if m.decision["hour_explore"]}
    assert 0.16 < len(explored) / 1000 < 0.24  # 20% explored, give or take 3 standard errors
    # Explored hours spread over the whole window, not bunched.
    assert len({m.decision["hour"] for m in rows if m.decision["hour_explore"]}) >= 20
    # The same seed explores the same recipients at the same hours.
    again = {m.customer_id: m for m in Message.objects.filter(campaign=two, state="queued")}
    assert {c for c, m in again.items() if m.decision["hour_explore"]} == explored
    assert all(again[m.customer_id].send_at == m.send_at for m in rows)


def test_a_short_window_and_quiet_hours_take_the_best_open_hour(workspace):
    segment, customers = zoned_audience(workspace, 200)
    by_id = {c.pk: c for c in customers}
    give_best_hours(customers, lambda c: 23)  # everyone's best hour is quiet
    start = datetime(2030, 3, 4, 18, 0, tzinfo=UTC)
    campaign = make_campaign(
        workspace,
        segment,
        timing="best",
        send_at=start,
        window_hours=6,
        explore_percent=50,
        quiet_start=time(21, 0),
        quiet_end=time(8, 0),
        seed=3,
    )
    launch_now(campaign)
    for m in Message.objects.filter(campaign=campaign):
        at = local(m, by_id)
        assert not schedule.in_quiet_hours(at.time(), time(21, 0), time(8, 0)), at
        if by_id[m.customer_id].time_zone == "Asia/Kolkata":
            # 23:30 to 05:30 there: all quiet, so the campaign's time moved out of quiet hours
            assert m.decision["hour_basis"].startswith("every hour of the window is quiet")
            assert at.time() == time(8, 0)
            continue
        assert start <= m.send_at < start + timedelta(hours=6)
        if m.decision["best_hour_known"] and not m.decision["hour_explore"]:
            # 23:00 is quiet everywhere: the next best open hour of the profile (22:00 is quiet
            # too, so the open hour nearest the peak among the window's).
            assert m.decision["hour"] != 23


def test_thin_recipients_go_at_their_shrunk_hour_the_unscored_at_the_campaigns_time(workspace):
    segment, customers = zoned_audience(workspace, 40)
    thin = {customers[0].pk}
    give_best_hours(customers[:20], lambda c: 10, thin=thin)
    start = timezone.now() + timedelta(hours=1)
    campaign = make_campaign(
        workspace, segment, timing="best", send_at=start, explore_percent=0, seed=1
    )
    launch_now(campaign)
    rows = {m.customer_id: m for m in Message.objects.filter(campaign=campaign)}
    lean = rows[customers[0].pk]
    assert lean.decision["best_hour"] == 10 and lean.decision["hour_thin"] is True
    assert lean.decision["hour_basis"].startswith("their shrunk best hour")
    assert local(lean, {c.pk: c for c in customers}).hour == 10
    none = rows[customers[30].pk]
    assert none.send_at == start
    assert none.decision["hour_basis"] == "no best hour computed yet: the campaign's time"
    assert rows[customers[5].pk].decision["hour_basis"] == "best hour"


def test_other_timings_decide_nothing_about_the_hour(workspace):
    segment, customers = zoned_audience(workspace, 4)
    give_best_hours(customers, lambda c: 10)
    campaign = make_campaign(workspace, segment, timing="now", seed=1)
    launch_now(campaign)
    assert all("hour" not in m.decision for m in Message.objects.filter(campaign=campaign))


def test_window_slots_step_real_hours_across_a_dst_change():
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)  # 00:30 CET; clocks go 02:00 -> 03:00
    slots = timing.window_slots(start=start, window_hours=5, tz=berlin)
    assert [h for _, h in slots] == [0, 1, 3, 4, 5, 6]  # 02:00 never happens that night
    assert slots[0][0] == start  # the first hour from the start itself
    moments = [m for m, _ in slots]
    assert all(b - a == timedelta(hours=1) for a, b in zip(moments[1:], moments[2:], strict=False))
    kolkata = timing.window_slots(start=start, window_hours=3, tz=ZoneInfo("Asia/Kolkata"))
    assert [m.astimezone(ZoneInfo("Asia/Kolkata")).minute for m, _ in kolkata[1:]] == [0, 0]


def test_journey_delay_until_the_best_hour(workspace):
    _, customers = zoned_audience(workspace, 12)
    scored, thin, bare = customers[:8], customers[8:10], customers[10:]
    give_best_hours(scored, lambda c: 9)
    give_best_hours(thin, lambda c: 14, thin={c.pk for c in thin})
    after = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    ids = [c.pk for c in customers]
    due = timing.best_hour_due(workspace.pk, ids, after, 24, 0)
    for c in scored:
        when, facts = due[c.pk]
        assert when.astimezone(ZoneInfo(c.time_zone)).hour == 9
        assert facts["hour_basis"] == "best hour"
        assert after <= when < after + timedelta(hours=24)
    for c in thin:
        when, facts = due[c.pk]
        assert when.astimezone(ZoneInfo(c.time_zone)).hour == 14
        assert facts["hour_basis"].startswith("their shrunk best hour")
    for c in bare:
        assert due[c.pk][0] == after and "no best hour" in due[c.pk][1]["hour_basis"]
    # Reproducible for the same seed; explored ones at a random hour of the window.
    a = timing.best_hour_due(workspace.pk, ids, after, 24, 50, seed=4)
    assert a == timing.best_hour_due(workspace.pk, ids, after, 24, 50, seed=4)
    assert any(facts["hour_explore"] for _, facts in a.values())
    # Another workspace's customers are not answered for.
    from tests.crm.factories import WorkspaceFactory

    assert timing.best_hour_due(WorkspaceFactory(slug="x").pk, ids, after, 24, 0) == {}
    with pytest.raises(ValueError):
        timing.best_hour_due(workspace.pk, ids, after, 0, 0)
    with pytest.raises(ValueError):
        timing.best_hour_due(workspace.pk, ids, after.replace(tzinfo=None), 24, 0)


IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15"


def test_machine_opens_are_recorded_as_such_and_ignored(client, workspace):
    campaign = make_campaign(workspace, make_audience(workspace, 3))
    launch_now(campaign)
    sent = timezone.now() - timedelta(hours=2)
    Message.objects.filter(campaign=campaign).update(state="sent", sent_at=sent)
    apple, proxy, person = Message.objects.filter(campaign=campaign).order_by("id")
    for message, agent in ((apple, "Mozilla/5.0"), (proxy, "GoogleImageProxy"), (person, IPHONE)):
        page = urlsplit(tracking.open_url(message.token.hex)).path
        assert client.get(page, HTTP_USER_AGENT=agent).status_code == 200
    opened = Event.objects.get(customer=person.customer, type="email_open").properties
    assert opened["user_agent"] == IPHONE and opened["seconds_after_send"] > 7000
    # A prefetch seconds after the send counts for nothing either, whatever its agent says.
    Message.objects.filter(pk=apple.pk).update(sent_at=timezone.now() - timedelta(seconds=5))
    hours, _, ignored = send_time.engagement_hours(
        workspace=workspace, since=sent - timedelta(days=1), conversion_events=["purchase"]
    )
    assert set(hours) == {person.customer_id} and ignored == 2
    assert sum(hours[person.customer_id].values()) == 1
    click = urlsplit(tracking.click_url(person.token.hex, "https://shop.example/a")).path
    assert client.get(click, HTTP_USER_AGENT=IPHONE).status_code == 302
    assert Event.objects.get(type="email_click").properties["user_agent"] == IPHONE
