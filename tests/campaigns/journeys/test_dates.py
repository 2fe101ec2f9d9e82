"""campaigns.journeys.date_triggers and dates: journeys that start on a customer's date, once a
day in each customer's time zone, and delays until a date."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from celery import current_app

from campaigns.journeys import date_triggers, engine, graph, services
from campaigns.journeys.dates import falling_on, next_due, on_day
from campaigns.journeys.models import Enrolment, JourneyDateRun, JourneyTimer
from crm import services as crm
from crm.models import Customer, Order, Workspace
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def shop(db):
    workspace = Workspace.objects.create(slug="dates", name="Dates")
    crm.customer_bulk_upsert(
        workspace=workspace,
        rows=[
            {"email": "ada@example.com", "time_zone": "Europe/London",
             "attributes": {"birthday": "1990-03-14"}},
            {"email": "bob@example.com", "time_zone": "America/New_York",
             "attributes": {"birthday": "1985-03-14T00:00:00Z"}},
            {"email": "cyd@example.com", "time_zone": "Asia/Tokyo",
             "attributes": {"birthday": "1979-03-14"}},
            {"email": "dan@example.com", "time_zone": "Asia/Tokyo",
             "attributes": {"birthday": "14/03/1979"}},  # not ISO: no date
            {"email": "eve@example.com", "time_zone": "",
             "attributes": {"birthday": "2000-02-29"}},
        ],
    )  # fmt: skip
    return workspace


def who(workspace) -> dict[str, Customer]:
    return {c.email[:3]: c for c in Customer.objects.filter(workspace=workspace)}


def journey(workspace, trigger: dict, *, published: str = "2027-01-01T00:00", steps=None):
    definition = {
        "trigger": {"type": "date", **trigger},
        "start": "hello",
        "steps": steps or {"hello": {"type": "exit"}},
    }
    made = services.journey_create(workspace=workspace, name="On a date", definition=definition)
    services.journey_publish(journey=made)
    made.refresh_from_db()
    made.versions.update(published_at=at(published))
    return made


def inside(made) -> set[str]:
    return set(Enrolment.objects.filter(journey=made).values_list("customer__email", flat=True))


def test_a_birthday_starts_the_journey_at_nine_in_each_customers_own_zone(shop):
    made = journey(shop, {"date": "birthday", "yearly": True})
    # 00:30 UTC on the 14th: 09:30 in Tokyo, not yet nine in London, the 13th in New York.
    assert date_triggers.run_due(now=at("2027-03-14T00:30")) == 1
    assert inside(made) == {"cyd@example.com"}
    assert date_triggers.run_due(now=at("2027-03-14T09:30")) == 1  # 09:30 in London
    # New York went to summer time that night: 13:00 UTC is nine there (in winter, 14:00).
    assert date_triggers.run_due(now=at("2027-03-14T12:59")) == 0
    assert date_triggers.run_due(now=at("2027-03-14T13:00")) == 1
    assert inside(made) == {"ada@example.com", "bob@example.com", "cyd@example.com"}
    # Every later tick that day, and the next days, take no one in again.
    for moment in ("2027-03-14T13:31", "2027-03-14T23:59", "2027-03-15T12:00"):
        assert date_triggers.run_due(now=at(moment)) == 0
    bob = Enrolment.objects.get(journey=made, customer=who(shop)["bob"])
    assert bob.context == {"date": "birthday", "day": "2027-03-14"}
    assert bob.state == Enrolment.State.FINISHED
    # Each zone's day is written once: London, New York, Tokyo, and the platform's own (eve's).
    days = JourneyDateRun.objects.filter(journey=made, day="2027-03-14")
    assert sorted(days.values_list("zone", "entered")) == [
        ("America/New_York", 1), ("Asia/Tokyo", 1), ("Europe/London", 1), ("UTC", 0),
    ]  # fmt: skip


def test_the_29th_of_february_is_kept_on_the_28th_in_other_years(shop):
    made = journey(shop, {"date": "birthday", "yearly": True, "at": "08:00"})
    date_triggers.run_due(now=at("2027-02-28T08:00"))
    assert inside(made) == {"eve@example.com"}
    assert on_day(date(2000, 2, 29), 2028) == date(2028, 2, 29)


def test_an_offset_and_a_one_off_date_thirty_days_after_the_last_order(shop):
    people = who(shop)

    def order(person: str, placed: str, **fields) -> None:
        Order.objects.create(
            workspace=shop, customer=people[person], external_id=f"{person}-{placed}",
            placed_at=at(placed), total=Decimal("10"), **fields,
        )  # fmt: skip

    order("ada", "2027-02-12T15:00")  # 30 days before 14 March
    order("bob", "2027-02-12T15:00")
    order("bob", "2027-02-20T15:00")  # bought again since: their last order is later
    order("cyd", "2027-02-12T10:00")
    order("cyd", "2027-03-01T10:00", kind=Order.Kind.RETURN)  # a return is not an order
    order("dan", "2027-02-12T10:00")
    order("dan", "2027-03-01T10:00", status=Order.Status.CANCELLED)
    made = journey(shop, {"date": "last_order", "offset_days": 30, "at": "10:00"})
    date_triggers.run_due(now=at("2027-03-14T12:00"))
    assert inside(made) == {"ada@example.com", "cyd@example.com", "dan@example.com"}


def test_a_signup_anniversary_and_days_missed_while_nothing_ran_are_caught_up(shop, settings):
    settings.JOURNEY_DATE_CATCH_UP_DAYS = 3
    people = who(shop)
    Customer.objects.filter(pk=people["ada"].pk).update(created_at=at("2025-05-02T12:00"))
    # 08:00 on the 3rd in New York, whose 3rd is not over when London's 4th has begun.
    Customer.objects.filter(pk=people["bob"].pk).update(created_at=at("2025-05-03T12:00"))
    Customer.objects.filter(pk=people["cyd"].pk).update(created_at=at("2025-04-28T12:00"))
    made = journey(shop, {"date": "signed_up", "yearly": True}, published="2027-04-01T00:00")
    date_triggers.run_due(now=at("2027-04-27T12:00"))
    # Nothing ran from the 28th until the 4th: three days are caught up (in London the 2nd to
    # the 4th; in New York, still the 3rd, the 1st to the 3rd), not the 28th (cyd's).
    date_triggers.run_due(now=at("2027-05-04T12:00"))
    assert inside(made) == {"ada@example.com", "bob@example.com"}
    london = JourneyDateRun.objects.filter(journey=made, zone="Europe/London")
    assert sorted(str(d) for d in london.values_list("day", flat=True)) == [
        "2027-04-25", "2027-04-26", "2027-04-27", "2027-05-02", "2027-05-03", "2027-05-04",
    ]  # fmt: skip


def test_a_journey_starts_on_the_day_it_is_published_not_before(shop):
    # Published the day after everyone's birthday, in every zone: no catching up before it.
    made = journey(shop, {"date": "birthday", "yearly": True}, published="2027-03-15T12:00")
    assert date_triggers.run_due(now=at("2027-03-15T12:00")) == 0
    assert not inside(made)


def test_a_paused_journey_lets_its_days_pass_and_takes_no_one_in_after(shop):
    made = journey(shop, {"date": "birthday", "yearly": True})
    services.journey_pause(journey=made)
    date_triggers.run_due(now=at("2027-03-14T13:30"))
    services.journey_resume(journey=made)
    date_triggers.run_due(now=at("2027-03-15T13:30"))
    assert not inside(made)


def test_which_customers_fall_on_a_day_once_and_yearly():
    customers = Customer.objects.filter(pk__in=[])
    tz = UTC
    # Every kind of source, once and yearly, is a query the database runs.
    for source in ("birthday", "signed_up", "last_order"):
        for yearly in (True, False):
            assert not falling_on(
                customers, source, local_day=date(2027, 2, 28), offset_days=-1, yearly=yearly,
                tz=tz,
            ).count()  # fmt: skip
    assert next_due(
        date(1990, 3, 14), offset_days=-1, yearly=True, at=graph.time_of_day("10:00"), tz=UTC,
        now=at("2027-03-13T10:00"),
    ) == at("2028-03-13T10:00")  # fmt: skip


def test_a_delay_until_the_day_before_a_birthday_and_without_a_date(shop):
    made = services.journey_create(workspace=shop, name="Eve of", definition={
        "start": "wait",
        "steps": {
            "wait": {"type": "delay", "until_date": "birthday", "offset_days": -1,
                     "yearly": True, "at": "10:00", "next": "end"},
            "end": {"type": "exit"},
        },
    })  # fmt: skip
    services.journey_publish(journey=made)
    made.refresh_from_db()
    people = who(shop)
    now = at("2027-03-13T09:00")
    engine.enrol(version=made.version, entrants=[(c.pk, {}) for c in people.values()], now=now)
    due = {
        t.enrolment.customer.email[:3]: t.due_at
        for t in JourneyTimer.objects.select_related("enrolment__customer")
    }
    assert due["ada"] == at("2027-03-13T10:00")  # 10:00 in London, still winter time
    assert due["cyd"] == at("2028-03-13T01:00")  # 10:00 in Tokyo was an hour ago: next year
    assert due["bob"] == at("2027-03-13T15:00")  # 10:00 in New York
    assert due["dan"] == now  # no date: moves on at once, and its history says why
    dan = Enrolment.objects.get(customer=people["dan"])
    assert list(dan.history.values_list("step", "outcome")) == [("wait", "no date")]
    assert engine.advance_due(now=now) == 1
    dan.refresh_from_db()
    assert dan.state == Enrolment.State.FINISHED
    assert engine.stuck() == 0


@pytest.mark.parametrize(
    ("trigger", "place"),
    [
        ({"date": "birth day"}, "trigger.date"),
        ({"date": "birthday", "offset_days": 400}, "trigger.offset_days"),
        ({"date": "birthday", "offset_days": 1.5}, "trigger.offset_days"),
        ({"date": "birthday", "yearly": "yes"}, "trigger.yearly"),
        ({"date": "birthday", "at": "25:00"}, "trigger.at"),
        ({"date": "birthday", "at": ""}, "trigger.at"),
        ({"date": "birthday", "at": 0}, "trigger.at"),
    ],
)
def test_a_date_triggers_settings_are_checked_by_name(trigger, place):
    with pytest.raises(graph.GraphError) as error:
        graph.check({"trigger": {"type": "date", **trigger}, "start": "a",
                     "steps": {"a": {"type": "exit"}}})  # fmt: skip
    assert list(error.value.errors) == [place]


def test_a_loop_through_a_one_off_date_is_a_loop_without_a_wait():
    with pytest.raises(graph.GraphError) as error:
        graph.check({"start": "a", "steps": {
            "a": {"type": "delay", "until_date": "signed_up", "next": "a"}}})  # fmt: skip
    assert "in a loop" in " ".join(error.value.errors["steps.a"])


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_takes_in_todays_birthdays(live_worker):
    workspace = Workspace.objects.create(slug="live-dates", name="Live dates")
    today = datetime.now(UTC)
    crm.customer_bulk_upsert(workspace=workspace, rows=[
        {"email": "fay@example.com", "time_zone": "UTC",
         "attributes": {"birthday": f"1990-{today:%m-%d}"}},
    ])  # fmt: skip
    made = journey(workspace, {"date": "birthday", "yearly": True, "at": "00:00"},
                   published=(today - timedelta(days=1)).isoformat()[:16])  # fmt: skip
    current_app.send_task("campaigns.journeys.tasks.dates")
    wait_until(lambda: inside(made) == {"fay@example.com"}, timeout=30, interval=0.3)


def test_a_customer_who_moves_zone_that_day_enters_once_and_text_that_is_no_date_never(shop):
    """The outside tester's two: Tokyo's run took cyd in, cyd moved to UTC, UTC's run took cyd
    in again; and "abcd-03-14zzz" was a birthday."""
    made = journey(shop, {"date": "birthday", "yearly": True})
    date_triggers.run_due(now=at("2027-03-14T00:30"))  # Tokyo's nine o'clock
    Customer.objects.filter(email="cyd@example.com").update(time_zone="UTC")
    Customer.objects.filter(email="dan@example.com").update(
        time_zone="UTC", attributes={"birthday": "abcd-03-14zzz"}
    )
    date_triggers.run_due(now=at("2027-03-14T09:30"))  # UTC's and London's
    assert Enrolment.objects.filter(journey=made, customer__email="cyd@example.com").count() == 1
    assert inside(made) == {"ada@example.com", "cyd@example.com"}
