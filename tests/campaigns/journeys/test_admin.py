"""The journeys admin (campaigns/journeys/admin.py) with the logged-in Django test client: the
list's live counts, the diagram's counts per step, the step editor (add, branch, change, remove,
the checker's errors on the fields), publish / pause / resume / stop, installing a ready-made
journey, *Try with a customer* (rendered, nothing written), the customer page's panel, and
staff of one workspace kept out of another's journeys through every admin URL."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.journeys import diagram, engine, preview, ready_made, services
from campaigns.journeys.admin import EditError, step_add, step_remove
from campaigns.journeys.models import Enrolment, EnrolmentStep, Journey, JourneyTimer
from campaigns.journeys.steps import unit
from campaigns.models import Campaign, Message, WebhookDelivery, WebhookEndpoint
from crm import services as crm
from crm.models import Customer, Product
from tests.campaigns.journeys.helpers import journey_message
from tests.crm.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

SIMPLE = {
    "trigger": {"type": "event", "event": "cart_updated"},
    "start": "pause",
    "steps": {
        "pause": {"type": "delay", "duration": "1d", "next": "done"},
        "done": {"type": "exit"},
    },
}


def url(journey: Journey, query: str = "") -> str:
    return f"/admin/campaigns/journey/{journey.pk}/change/" + (f"?{query}" if query else "")


def live(workspace, name="Simple", definition=SIMPLE) -> Journey:
    journey = services.journey_create(workspace=workspace, name=name, definition=definition)
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    return journey


def people(workspace, *names, **attributes) -> list[Customer]:
    crm.customer_bulk_upsert(
        workspace=workspace,
        rows=[{"email": f"{n}@example.com", "first_name": n.title(), **attributes} for n in names],
    )
    return [Customer.objects.get(workspace=workspace, email=f"{n}@example.com") for n in names]


def op(client, journey: Journey, name: str, **data):
    return client.post(url(journey), {"op": name, **data})


def said(client, response) -> str:
    """The admin's messages that `response` (a redirect) left, as the next page shows them."""
    return " | ".join(str(m) for m in client.get(response.url).context["messages"])


# --- the list and the diagram ------------------------------------------------------------


def test_the_list_shows_status_version_and_live_counts(admin_client, workspace):
    journey = live(workspace)
    ada, bob, cyd = people(workspace, "ada", "bob", "cyd")
    ids = engine.enrol(version=journey.version, entrants=[(c.pk, {}) for c in (ada, bob, cyd)])
    services.enrolment_exit(enrolment=Enrolment.objects.get(pk=ids[0]))
    services.journey_create(workspace=workspace, name="Draft one", definition={})

    response = admin_client.get("/admin/campaigns/journey/")
    assert response.status_code == 200
    rows = {j.name: j for j in response.context["cl"].result_list}
    simple = rows["Simple"]
    assert (simple.status, simple.version.number) == ("live", 1)
    assert (simple.n_inside, simple.n_entered, simple.n_finished, simple.n_exited) == (2, 3, 0, 1)
    assert rows["Draft one"].n_entered == 0 and rows["Draft one"].version is None
    # No bulk delete: it would take live journeys with their enrolments; a draft goes alone.
    assert response.context["action_form"] is None and b"delete_selected" not in response.content
    assert admin_client.get(f"/admin/campaigns/journey/{journey.pk}/delete/").status_code == 403


def test_the_diagram_draws_the_draft_with_the_live_versions_counts(admin_client, workspace):
    journey = live(workspace)
    ada, bob = people(workspace, "ada", "bob")
    engine.enrol(version=journey.version, entrants=[(ada.pk, {}), (bob.pk, {})])
    # The draft gains a step after publishing: drawn, with no counts of its own yet.
    draft = step_add(journey.definition, kind="update_attribute", new_id="mark",
                     after="pause", key="next")  # fmt: skip
    Journey.objects.filter(pk=journey.pk).update(definition=draft)

    page = admin_client.get(url(journey)).content.decode()
    start = page.index('<svg xmlns="http://www.w3.org/2000/svg" class="journey-diagram"')
    svg = page[start : page.index("</svg>", start)]
    boxes = dict(re.findall(r'data-step="([^"]+)".*?class="counts">([^<]+)<', svg))
    assert boxes["pause"] == "entered 2 · now 2 · left 0"
    assert boxes["mark"] == "entered 0 · now 0 · left 0"
    assert boxes["done"] == "entered 0 · now 0 · left 0"
    edges = set(re.findall(r'data-from="([^"]+)" data-to="([^"]+)"', svg))
    assert edges == {("pause", "mark"), ("mark", "done")}
    assert "the draft below has changes not yet published" in page


def test_layers_are_depths_from_the_start_and_branches_are_labelled():
    definition = {
        "start": "w",
        "steps": {
            "w": {"type": "wait_event", "event": "e", "timeout": "1h", "yes": "x", "no": "s"},
            "s": {"type": "split", "branches": [{"weight": 1, "next": "x"},
                                                 {"weight": 1, "next": "w"}]},
            "x": {"type": "exit"},
            "lost": {"type": "exit"},
        },
    }  # fmt: skip
    # x is below s, which leads to it as well; s's way back up to w is a loop's.
    assert diagram.layers(definition) == [["w"], ["s"], ["x"], ["lost"]]
    labels = [e.label for e in diagram.edges("w", definition["steps"]["w"])]
    assert labels == ["yes", "no"]
    drawn = diagram.svg(definition)
    assert ">branch 2<" in drawn and ">yes<" in drawn and ">no<" in drawn


# --- the step editor ---------------------------------------------------------------------


def test_build_a_journey_in_the_editor_with_field_errors_on_the_fields(admin_client, workspace):
    created = admin_client.post(
        "/admin/campaigns/journey/add/", {"workspace": workspace.pk, "name": "Built"}
    )
    assert created.status_code == 302
    journey = Journey.objects.get(name="Built")

    added = op(admin_client, journey, "add_step", way="", kind="wait_event", new_id="wait")
    assert added.url.endswith("?step=wait")
    page = admin_client.get(added.url)
    form = page.context["step_form"]
    assert "an event type" in " ".join(form.errors["event"])  # steps.wait.event, on its field
    assert "leads nowhere" in " ".join(form.errors["yes"])

    op(admin_client, journey, "add_step", way="wait:yes", kind="exit", new_id="bought")
    saved = op(admin_client, journey, "save_step", step="wait", **{
        "step-type": "wait_event", "step-event": "purchase", "step-timeout": "soon",
        "step-yes": "bought", "step-no": "bought"})  # fmt: skip
    assert saved.status_code == 302
    form = admin_client.get(saved.url).context["step_form"]
    assert set(form.errors) == {"timeout"}
    assert "a duration such as 30s" in form.errors["timeout"][0]

    op(admin_client, journey, "save_step", step="wait", **{
        "step-type": "wait_event", "step-event": "purchase", "step-timeout": "4h",
        "step-yes": "bought", "step-no": "bought"})  # fmt: skip
    page = admin_client.get(url(journey, "step=wait"))
    assert not page.context["step_form"].errors and page.context["problems"] == {}

    # Branching: a delay on the "no" way, between the wait and the end.
    op(admin_client, journey, "add_step", way="wait:no", kind="delay", new_id="later")
    journey.refresh_from_db()
    assert journey.definition["steps"]["wait"]["no"] == "later"
    assert journey.definition["steps"]["later"] == {"type": "delay", "duration": "1h",
                                                     "next": "bought"}  # fmt: skip

    # JSON settings that are not JSON are refused on their field, and nothing is saved.
    before = Journey.objects.get(pk=journey.pk).definition
    refused = op(admin_client, journey, "save_step", step="wait", **{
        "step-type": "wait_event", "step-event": "purchase", "step-timeout": "4h",
        "step-where": "{not json", "step-yes": "bought", "step-no": "later"})  # fmt: skip
    assert refused.status_code == 200 and "where" in refused.context["step_form"].errors
    assert not refused.context["adminform"].form.errors  # the name's form was not submitted
    assert Journey.objects.get(pk=journey.pk).definition == before

    # Removing the end that the wait and the delay lead to: refused, saying what to fix.
    response = op(admin_client, journey, "remove_step", step="bought")
    assert "point those at another step first" in said(admin_client, response)
    # Removing the delay: the wait's "no" leads where the delay led.
    op(admin_client, journey, "remove_step", step="later")
    journey.refresh_from_db()
    assert journey.definition["steps"]["wait"]["no"] == "bought"
    assert set(journey.definition["steps"]) == {"wait", "bought"}


def test_a_live_journey_is_renamed_by_its_form_and_stays_live(admin_client, workspace):
    journey = live(workspace)
    response = admin_client.post(url(journey), {"name": "Renamed", "_continue": "1"})
    assert response.status_code == 302
    journey.refresh_from_db()
    assert (journey.name, journey.status, journey.version.number) == ("Renamed", "live", 1)
    assert journey.definition == SIMPLE


def test_the_journeys_settings_and_their_errors(admin_client, workspace):
    journey = services.journey_create(workspace=workspace, name="J", definition=SIMPLE)
    op(admin_client, journey, "save_settings", **{
        "settings-trigger_type": "event", "settings-trigger_events": "cart_updated, bad type!",
        "settings-reentry_policy": "after_days", "settings-reentry_days": "0",
        "settings-exit_on": "purchase", "settings-holdout_percent": "10"})  # fmt: skip
    journey.refresh_from_db()
    assert journey.definition["trigger"] == {"type": "event",
                                             "events": ["cart_updated", "bad type!"]}  # fmt: skip
    assert journey.definition["exit_on"] == ["purchase"]
    assert journey.definition["holdout_percent"] == 10
    form = admin_client.get(url(journey)).context["settings_form"]
    assert set(form.errors) == {"trigger_events", "reentry_days"}

    # A date: a week before each birthday, at ten their time.
    op(admin_client, journey, "save_settings", **{
        "settings-trigger_type": "date", "settings-trigger_date": "birthday",
        "settings-trigger_offset_days": "-7", "settings-trigger_yearly": "on",
        "settings-trigger_at": "25:00", "settings-reentry_policy": "not_inside"})  # fmt: skip
    journey.refresh_from_db()
    wanted = {"type": "date", "date": "birthday", "offset_days": -7, "yearly": True, "at": "25:00"}
    assert journey.definition["trigger"] == wanted
    form = admin_client.get(url(journey)).context["settings_form"]
    assert set(form.errors) == {"trigger_at"}
    assert form.initial["trigger_offset_days"] == -7 and form.initial["trigger_yearly"] is True


ODD_DRAFTS = [
    {},
    {"steps": []},
    {"start": ["a"], "steps": {"a": "not a step"}},
    {"trigger": "soon", "reentry": 3, "exit_on": "purchase", "entry_filter": [1],
     "holdout_percent": "ten", "start": "s", "steps": {"s": {"type": "split", "branches": [1]}}},
    {"start": "a", "steps": {"a": {"type": "warp", "next": "a"},
                             "b": {"type": "delay", "duration": True, "next": {"x": 1}}}},
    {"start": "a", "steps": {"a": {"type": "send", "campaign": "²", "next": "a"}}},
]  # fmt: skip


@pytest.mark.parametrize("draft", ODD_DRAFTS)
def test_any_draft_shows_its_page_editor_and_problems(admin_client, workspace, draft):
    journey = services.journey_create(workspace=workspace, name="Odd", definition=draft)
    steps = draft.get("steps") if isinstance(draft.get("steps"), dict) else {}
    for query in ["", "try=nobody", "try=²&stand_in=x", "step=missing", *[
            f"step={s}" for s in steps]]:  # fmt: skip
        response = admin_client.get(url(journey, query))
        assert response.status_code == 200, query
        assert response.context["problems"], query  # none of them can be published
    for s in steps:
        response = op(admin_client, journey, "add_step", way=f"{s}:branches.0.next", kind="exit")
        assert response.status_code == 302
    assert op(admin_client, journey, "remove_step", step="missing").status_code == 302
    assert op(admin_client, journey, "save_step", step="missing").status_code == 302


def test_step_edits_keep_the_graph_whole_or_say_what_to_fix():
    definition = {
        "start": "c",
        "steps": {
            "c": {"type": "condition", "rules": {}, "yes": "a", "no": "b"},
            "a": {"type": "exit"},
            "b": {"type": "exit"},
        },
    }
    with pytest.raises(EditError, match="leads to 2 steps"):
        step_remove(definition, "c")  # the start, with two ways on
    with pytest.raises(EditError, match="there is a step a already"):
        step_add(definition, kind="exit", new_id="a", after="c", key="yes")
    split = step_add(definition, kind="split", new_id="s", after="c", key="no")
    assert split["steps"]["s"]["branches"] == [{"weight": 50, "next": "b"},
                                               {"weight": 50, "next": "b"}]  # fmt: skip
    assert step_remove(split, "s")["steps"]["c"]["no"] == "b"  # both ways led to b
    first = step_add(definition, kind="delay")
    assert first["start"] == "delay_1" and first["steps"]["delay_1"]["next"] == "c"
    assert definition["start"] == "c"  # the edits copy


def test_the_raw_json_round_trips_with_the_editor(admin_client, workspace):
    journey = services.journey_create(workspace=workspace, name="J", definition=SIMPLE)
    shown = admin_client.get(url(journey)).context["definition_json"]
    assert json.loads(shown) == SIMPLE
    changed = json.loads(shown)
    changed["steps"]["pause"]["duration"] = "2d"
    op(admin_client, journey, "save_json", definition=json.dumps(changed))
    journey.refresh_from_db()
    assert journey.definition["steps"]["pause"]["duration"] == "2d"
    form = admin_client.get(url(journey, "step=pause")).context["step_form"]
    assert form.initial["duration"] == "2d"  # the editor shows what the JSON said
    refused = op(admin_client, journey, "save_json", definition="[1, 2")
    assert refused.status_code == 200 and refused.context["json_error"]
    journey.refresh_from_db()
    assert journey.definition["steps"]["pause"]["duration"] == "2d"


# --- state changes and ready-made journeys -------------------------------------------------


def test_publish_pause_resume_and_stop_with_a_confirmation(admin_client, workspace):
    journey = services.journey_create(
        workspace=workspace, name="J", definition={**SIMPLE, "start": "nowhere"}
    )
    refused = op(admin_client, journey, "publish")
    assert "Not published: start" in said(admin_client, refused)
    journey.refresh_from_db()
    assert journey.status == "draft" and journey.version is None

    Journey.objects.filter(pk=journey.pk).update(definition=SIMPLE)
    op(admin_client, journey, "publish")
    journey.refresh_from_db()
    assert (journey.status, journey.version.number) == ("live", 1)
    (ada,) = people(workspace, "ada")
    engine.enrol(version=journey.version, entrants=[(ada.pk, {})])
    op(admin_client, journey, "pause")
    assert Journey.objects.get(pk=journey.pk).status == "paused"
    op(admin_client, journey, "resume")
    assert Journey.objects.get(pk=journey.pk).status == "live"

    asked = op(admin_client, journey, "stop")
    assert asked.status_code == 200 and b"1 customer inside" in asked.content
    assert Journey.objects.get(pk=journey.pk).status == "live"  # not until confirmed
    assert "1 enrolments exited" in said(
        admin_client, op(admin_client, journey, "stop", confirm="yes")
    )
    assert Journey.objects.get(pk=journey.pk).status == "stopped"
    assert Enrolment.objects.get().state == Enrolment.State.EXITED
    edit = op(admin_client, journey, "add_step", way="", kind="exit")
    assert "cannot be edited" in said(admin_client, edit)


def test_a_ready_made_journey_installs_from_the_add_page(admin_client, workspace):
    response = admin_client.post("/admin/campaigns/journey/add/", {
        "install-workspace": workspace.pk, "install-template": "abandoned_cart",
        "install-settings": "wait=30s\nreminder=2m"})  # fmt: skip
    journey = Journey.objects.get(workspace=workspace)
    assert response.status_code == 302 and response.url == url(journey)
    assert journey.status == "draft" and journey.definition["steps"]["wait"]["timeout"] == "30s"
    bad = admin_client.post("/admin/campaigns/journey/add/", {
        "install-workspace": workspace.pk, "install-template": "abandoned_cart",
        "install-settings": "wait=never"})  # fmt: skip
    assert bad.status_code == 200 and "wait" in bad.context["install_form"].errors["__all__"][0]
    assert Journey.objects.filter(workspace=workspace).count() == 1


# --- try with a customer ---------------------------------------------------------------


def tried_journey(workspace) -> Journey:
    message = journey_message(workspace)
    hook = WebhookEndpoint.objects.create(workspace=workspace, url="https://x.example/h",
                                          secret="s", events=["journey.step"])  # fmt: skip
    definition = {
        "trigger": {"type": "event", "event": "cart_updated"},
        "exit_on": ["purchase"],
        "start": "wait",
        "steps": {
            "wait": {"type": "wait_event", "event": "purchase", "timeout": "4h",
                     "yes": "done", "no": "german"},
            "german": {"type": "condition",
                       "rules": {"attribute": "country", "op": "eq", "value": "DE"},
                       "yes": "later", "no": "done"},
            "later": {"type": "delay", "until_time": "09:00", "next": "test"},
            "test": {"type": "split", "branches": [{"weight": 1, "next": "mail"},
                                                    {"weight": 1, "next": "mail"}]},
            "mail": {"type": "send", "campaign": message.pk, "next": "hook"},
            "hook": {"type": "webhook", "endpoint": hook.pk, "next": "done"},
            "done": {"type": "exit"},
        },
    }  # fmt: skip
    return live(workspace, "Cart", definition)


def test_try_with_a_customer_shows_their_way_and_the_rendered_message(admin_client, workspace):
    journey = tried_journey(workspace)
    ada, bob = people(workspace, "ada", "bob")
    Customer.objects.filter(pk=ada.pk).update(country="DE", time_zone="Europe/Berlin")
    Product.objects.create(workspace=workspace, sku="T1", name="Teapot", price=20)
    cart = {"event": "cart_updated", "properties": {"items": [{"sku": "T1", "quantity": 2}]}}
    counted = (Message, Enrolment, JourneyTimer, EnrolmentStep, WebhookDelivery)
    before = [model.objects.count() for model in counted]

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(
            url(journey), {"try": "ADA@example.com", "context": json.dumps(cart)}
        )
    assert response.status_code == 200, response.context and response.context.get("try_error")
    path = response.context["try_path"]
    assert [s.step for s in path.stops] == ["wait", "german", "later", "test", "mail", "hook",
                                            "done"]  # fmt: skip
    wait, german, later, split, mail, hook, _ = path.stops
    assert wait.next == "german" and wait.not_taken == [("yes", "done")]
    assert wait.what.startswith("waits up to 4h for purchase: yes → done, no → german")
    assert german.outcome == "yes"
    assert later.local.endswith("09:00 CET") or later.local.endswith("09:00 CEST")
    # Drawn as the engine draws it, for the stand-in enrolment id (the customer's, unless given).
    assert path.stand_in == ada.pk
    assert split.outcome == ("branch 1" if unit(ada.pk, "split:test") < 0.5 else "branch 2")
    other = admin_client.get(url(journey), {"try": "ada@example.com", "stand_in": "777"})
    assert other.context["try_path"].stand_in == 777
    assert other.context["try_path"].stops[3].outcome == (
        "branch 1" if unit(777, "split:test") < 0.5 else "branch 2"
    )
    assert mail.message.subject == "Your cart" and "2 x T1" in mail.message.text
    assert mail.to == "ada@example.com" and mail.variant == "A"
    assert "nothing is posted" in hook.what
    assert path.ends == "finishes at done"
    page = response.content.decode()
    assert "Splits, variants and the holdout are drawn for a stand-in enrolment id" in page
    # Nothing was sent or written: no rows, and not one statement that writes.
    assert [model.objects.count() for model in counted] == before
    writes = [q["sql"] for q in queries.captured_queries
              if re.match(r"\s*(INSERT|UPDATE|DELETE)", q["sql"], re.I)]  # fmt: skip
    assert writes == []

    # Bob is not in Germany: the condition says no, and the way ends without a message.
    response = admin_client.get(url(journey), {"try": str(bob.pk), "source": "live"})
    path = response.context["try_path"]
    assert [s.step for s in path.stops] == ["wait", "german", "done"]
    assert path.stops[1].outcome == "no"
    # Without a context, the trigger's sample: bob's latest cart event.
    assert json.loads(response.context["try_context"])["event"] == "cart_updated"


def test_try_takes_a_sample_of_the_trigger_when_no_context_is_given(admin_client, workspace):
    journey = ready_made.install(workspace=workspace, name="abandoned_cart", publish=True)
    (ada,) = people(workspace, "ada")
    Product.objects.create(workspace=workspace, sku="T1", name="Teapot", price=20)
    crm.event_bulk_create(workspace=workspace, rows=[{
        "customer": str(ada.pk), "type": "checkout_started",
        "occurred_at": timezone.now().isoformat(),
        "properties": {"items": [{"sku": "T1", "quantity": 3}]}}])  # fmt: skip

    response = admin_client.get(url(journey), {"try": "ada@example.com"})
    sample = json.loads(response.context["try_context"])
    assert sample["event"] == "checkout_started" and sample["properties"]["items"][0]["sku"] == "T1"
    path = response.context["try_path"]
    remind = next(stop for stop in path.stops if stop.kind == "send")
    assert "3 × Teapot" in remind.message.html.replace("&times;", "×")
    # She has not opted in to e-mail, and the ready-made messages need it: said, not hidden.
    assert remind.skipped == "no consent"


@pytest.mark.parametrize(
    ("trigger", "sample"),
    [
        ({"type": "segment", "segment": 4, "on": "leave"}, {"segment": 4, "change": "leave"}),
        ({"type": "date", "date": "birthday"}, {"date": "birthday"}),
        ({"type": "api"}, {"api": True}),
        ({"type": "event", "event": "cart_updated", "where": {"source": "web"}},
         {"event": "cart_updated", "event_id": None, "properties": {"source": "web"}}),
    ],
)  # fmt: skip
def test_a_trigger_sample_is_what_the_trigger_gives_an_enrolment(workspace, trigger, sample):
    journey = services.journey_create(workspace=workspace, name="J", definition={})
    (ada,) = people(workspace, "ada")
    given = preview.sample_context(journey, {"trigger": trigger}, ada)
    assert given | sample == given  # the date trigger's also says which day


def test_staff_who_may_only_view_journeys_cannot_change_them(client, workspace):
    user = get_user_model().objects.create_user("viewer", password="pw-for-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="view_journey"))
    workspace.members.add(user)
    client.force_login(user)
    journey = services.journey_create(workspace=workspace, name="J", definition=SIMPLE)
    page = client.get(url(journey))
    assert page.status_code == 200 and page.context["journey_actions"] == []
    assert not page.context["can_edit"]
    for name in ("publish", "stop", "save_json", "add_step"):
        assert op(client, journey, name, confirm="yes", definition="{}").status_code == 403
    journey.refresh_from_db()
    assert (journey.status, journey.definition) == ("draft", SIMPLE)


def test_try_renders_the_draft_and_names_problems_first(admin_client, workspace):
    journey = services.journey_create(
        workspace=workspace, name="J", definition={**SIMPLE, "start": "nowhere"}
    )
    people(workspace, "ada")
    response = admin_client.get(url(journey), {"try": "ada@example.com"})
    assert "fix them first" in response.context["try_error"]
    Journey.objects.filter(pk=journey.pk).update(definition=SIMPLE)
    response = admin_client.get(url(journey), {"try": "ada@example.com", "source": "draft"})
    path = response.context["try_path"]
    assert [s.step for s in path.stops] == ["pause", "done"]
    assert not Enrolment.objects.exists()


def test_try_writes_nothing_at_all_on_a_draft(admin_client, workspace):
    message = journey_message(workspace)
    definition = {**SIMPLE, "start": "mail", "steps": {
        "mail": {"type": "send", "campaign": message.pk, "next": "done"},
        "done": {"type": "exit"}}}  # fmt: skip
    journey = services.journey_create(workspace=workspace, name="J", definition=definition)
    people(workspace, "ada")
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url(journey), {"try": "ada@example.com"})
    mail = response.context["try_path"].stops[0]
    assert (
        mail.message.subject == "Your cart" and "sends once the journey is published" in mail.what
    )
    Campaign.objects.filter(pk=message.pk).update(status=Campaign.Status.CANCELLED)
    cancelled = admin_client.get(url(journey), {"try": "ada@example.com"})
    assert cancelled.context["try_path"].stops[0].skipped == "message cancelled"
    writes = [q["sql"] for q in queries.captured_queries
              if re.match(r"\s*(INSERT|UPDATE|DELETE)", q["sql"], re.I)]  # fmt: skip
    assert writes == []
    assert not Message.objects.exists() and not WebhookDelivery.objects.exists()


def test_results_per_send_step_and_variant_against_the_holdout(admin_client, workspace):
    message = journey_message(workspace)
    definition = {**SIMPLE, "steps": {
        "pause": {"type": "delay", "duration": "1h", "next": "mail"},
        "mail": {"type": "send", "campaign": message.pk, "next": "done"},
        "done": {"type": "exit"}}}  # fmt: skip
    journey = live(workspace, "Mailer", definition)
    customers = people(workspace, "ada", "bob", "cyd")
    hours_ago = timezone.now() - timedelta(hours=3)
    ids = engine.enrol(
        version=journey.version, entrants=[(c.pk, {}) for c in customers], now=hours_ago
    )
    Enrolment.objects.filter(pk=ids[0]).update(holdout=True)  # the control group, chosen here
    engine.advance_due(now=hours_ago + timedelta(hours=2))  # the message step, an hour ago

    # The held-out customer buys: a conversion of the holdout at that step.
    crm.event_bulk_create(workspace=workspace, rows=[{
        "customer": str(customers[0].pk), "type": "purchase", "properties": {"total": "30"},
        "occurred_at": (timezone.now() - timedelta(minutes=30)).isoformat()}])  # fmt: skip
    with CaptureQueriesContext(connection) as queries:  # trying a customer writes nothing
        tried = admin_client.get(url(journey), {"try": "bob@example.com"})
    assert tried.context["try_path"] is not None
    assert not [q for q in queries.captured_queries if q["sql"].lstrip().startswith("UPDATE")]

    response = admin_client.get(url(journey))
    (result,) = response.context["results"]
    assert result["step"] == "mail" and result["campaign"] == message
    stats = result["stats"]
    assert stats["holdout"]["recipients"] == 1
    assert stats["holdout"]["conversions"]["count"] == 1
    assert [(v["name"], v["recipients"]) for v in stats["variants"]] == [("A", 2)]
    assert "ci95" in stats["holdout"]["conversions"]
    page = response.content.decode()
    assert "Variant A" in page and "Holdout" in page and "Rate (95% interval)" in page
    assert "conversion rate; everyone sent to, against the whole holdout" in page
    assert "<svg" in result["chart"] and "Conversion rate (95% interval)" in result["chart"]


# --- the customer page and the enrolments list -----------------------------------------------


def test_the_customer_page_shows_their_journeys_with_history(admin_client, workspace):
    journey = live(workspace)
    (ada,) = people(workspace, "ada")
    engine.enrol(version=journey.version, entrants=[(ada.pk, {})], now=timezone.now())
    page = admin_client.get(f"/admin/crm/customer/{ada.pk}/change/").content.decode()
    panel = page[page.index('id="customer-journeys"') :]
    assert "Simple" in panel and "active" in panel and "pause" in panel
    assert f"/admin/campaigns/journey/{journey.pk}/change/" in panel


def test_the_customer_page_leaves_journeys_out_for_staff_who_may_not_see_them(client, workspace):
    journey = live(workspace)
    (ada,) = people(workspace, "ada")
    engine.enrol(version=journey.version, entrants=[(ada.pk, {})])
    user = get_user_model().objects.create_user("crm-only", password="pw-for-tests", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="crm"))
    workspace.members.add(user)
    client.force_login(user)
    page = client.get(f"/admin/crm/customer/{ada.pk}/change/").content.decode()
    assert "Timeline" in page and 'id="customer-journeys"' not in page


def test_the_enrolments_list_filters_by_state_and_step(admin_client, workspace):
    journey = live(workspace)
    ada, bob = people(workspace, "ada", "bob")
    ids = engine.enrol(version=journey.version, entrants=[(ada.pk, {}), (bob.pk, {})])
    services.enrolment_exit(enrolment=Enrolment.objects.get(pk=ids[0]))
    page = admin_client.get(
        "/admin/campaigns/enrolment/", {"journey": journey.pk, "state": "active", "step": "pause"}
    )
    assert [e.customer_id for e in page.context["cl"].result_list] == [bob.pk]
    assert f"/admin/crm/customer/{bob.pk}/change/" in page.content.decode()


# --- workspaces ----------------------------------------------------------------------------


@pytest.fixture
def staff_of_a(client, workspace):
    user = get_user_model().objects.create_user("a-staff", password="pw-for-tests", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=("campaigns", "crm"))
    )
    workspace.members.add(user)
    client.force_login(user)
    return client


def test_staff_of_one_workspace_cannot_see_or_change_anothers_journeys(staff_of_a, workspace):
    other = WorkspaceFactory(slug="other", name="Other")
    theirs = services.journey_create(workspace=other, name="Theirs", definition=SIMPLE)
    their_live = live(other, "Their live")
    (them,) = people(other, "them")
    engine.enrol(version=their_live.version, entrants=[(them.pk, {})])
    mine = services.journey_create(workspace=workspace, name="Mine", definition=SIMPLE)
    client = staff_of_a

    listed = client.get("/admin/campaigns/journey/").content.decode()
    assert "Mine" in listed and "Theirs" not in listed and "Their live" not in listed
    for journey in (theirs, their_live):
        assert client.get(url(journey)).status_code == 302  # the admin's "does not exist"
        assert client.get(url(journey, "try=them@example.com")).status_code == 302
        assert client.get(f"/admin/campaigns/journey/{journey.pk}/history/").status_code == 302
        for name, data in [("publish", {}), ("pause", {}), ("stop", {"confirm": "yes"}),
                           ("add_step", {"way": "", "kind": "exit"}),
                           ("save_json", {"definition": "{}"}),
                           ("remove_step", {"step": "done"})]:  # fmt: skip
            assert op(client, journey, name, **data).status_code == 302
        assert client.post(f"/admin/campaigns/journey/{journey.pk}/delete/",
                           {"post": "yes"}).status_code == 302  # fmt: skip
    theirs.refresh_from_db(), their_live.refresh_from_db()
    assert (theirs.status, theirs.definition) == ("draft", SIMPLE)
    assert their_live.status == "live" and Journey.objects.filter(workspace=other).count() == 2
    # Their customer cannot be tried on my journey, nor their enrolments listed.
    tried = client.get(url(mine), {"try": "them@example.com", "source": "draft"})
    assert tried.context["try_path"] is None and "No customer" in tried.context["try_error"]
    enrolments = client.get("/admin/campaigns/enrolment/").context["cl"].result_list
    assert list(enrolments) == []
    assert "Their live" not in client.get("/admin/campaigns/enrolment/").content.decode()
    their_enrolment = Enrolment.objects.get()
    assert client.get(f"/admin/campaigns/enrolment/{their_enrolment.pk}/change/").status_code == 302
    # The editor offers my messages only, not theirs.
    their_message, my_message = journey_message(other), journey_message(workspace)
    Journey.objects.filter(pk=mine.pk).update(definition={"start": "mail", "steps": {
        "mail": {"type": "send", "next": "done"}, "done": {"type": "exit"}}})  # fmt: skip
    form = client.get(url(mine, "step=mail")).context["step_form"]
    offered = [value for value, _ in form.fields["campaign"].choices]
    assert str(my_message.pk) in offered and str(their_message.pk) not in offered
    # Installing a ready-made journey into their workspace is refused too.
    client.post("/admin/campaigns/journey/add/", {
        "install-workspace": other.pk, "install-template": "welcome"})  # fmt: skip
    assert Journey.objects.filter(workspace=other).count() == 2
    assert list(Campaign.objects.filter(workspace=other)) == [their_message]


def test_the_move_button_shows_while_someone_is_inside_an_older_version(admin_client, workspace):
    journey = services.journey_create(workspace=workspace, name="Mover", definition=SIMPLE)
    services.journey_publish(journey=journey)
    journey.refresh_from_db()
    (ada,) = people(workspace, "ada")
    engine.enrol(version=journey.version, entrants=[(ada.pk, {})])
    assert b'id="journey-move"' not in admin_client.get(url(journey)).content
    services.journey_publish(journey=journey)
    assert b'id="journey-move"' in admin_client.get(url(journey)).content
    moved = op(admin_client, journey, "move")
    assert "Moved 1 to version 2." in said(admin_client, moved)
    assert Enrolment.objects.get(customer=ada).version.number == 2
    assert b'id="journey-move"' not in admin_client.get(url(journey)).content


@pytest.mark.parametrize("raw", ["[" * 5000, "[" * 300 + "]" * 300, "NaN", "[Infinity]", "1e999",
                                 '"\\ud800"'])  # fmt: skip
def test_json_the_api_would_refuse_is_a_field_error_in_the_builder_never_a_500(
    admin_client, workspace, raw
):
    """The outside tester's: deep nesting (RecursionError) and NaN / 1e999 (the JSON column's
    IntegrityError) answered 500 in every JSON box of the builder."""
    waiting = {
        **SIMPLE,
        "steps": {
            **SIMPLE["steps"],
            "pause": {
                "type": "wait_event",
                "event": "x",
                "timeout": "1h",
                "yes": "done",
                "no": "done",
            },
        },
    }
    journey = services.journey_create(workspace=workspace, name="Odd JSON", definition=waiting)
    before = Journey.objects.get(pk=journey.pk).definition
    for name, data in [
        ("save_json", {"definition": raw}),
        ("save_step", {"step": "pause", "step-type": "wait_event", "step-event": "x",
                       "step-timeout": "1h", "step-where": raw, "step-yes": "done",
                       "step-no": "done"}),
        ("save_settings", {"settings-trigger_type": "api", "settings-entry_filter": raw}),
    ]:  # fmt: skip
        response = op(admin_client, journey, name, **data)
        assert response.status_code in (200, 302), name
    assert Journey.objects.get(pk=journey.pk).definition == before
    tried = admin_client.get(url(journey, f"try=ada@example.com&context={raw}"))
    assert tried.status_code == 200
