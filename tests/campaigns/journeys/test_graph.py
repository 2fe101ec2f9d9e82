"""campaigns.journeys.graph: a definition is checked whole, each problem named by its place."""

import pytest

from campaigns.journeys import graph


def cart() -> dict:
    return {
        "trigger": {"type": "event", "event": "cart_updated"},
        "exit_on": ["purchase"],
        "start": "wait",
        "steps": {
            "wait": {"type": "wait_event", "event": "purchase", "timeout": "4h",
                     "yes": "done", "no": "pick"},
            "pick": {"type": "split", "branches": [{"weight": 1, "next": "tag"},
                                                   {"weight": 3, "next": "done"}]},
            "tag": {"type": "update_attribute", "attribute": "nudged", "value": True,
                    "next": "done"},
            "done": {"type": "exit"},
        },
    }  # fmt: skip


def problems(definition) -> dict:
    with pytest.raises(graph.GraphError) as refused:
        graph.check(definition)
    return refused.value.errors


def test_a_whole_definition_passes_with_its_defaults_filled_in():
    checked = graph.check(cart())
    assert checked["reentry"] == {"policy": "not_inside"} and checked["holdout_percent"] == 0


def test_each_problem_is_named_by_its_place_all_at_once():
    bad = cart()
    bad["trigger"]["event"] = "has spaces"
    bad["steps"]["wait"]["timeout"] = "soon"
    bad["steps"]["pick"]["branches"][0]["weight"] = 0
    bad["steps"]["tag"]["next"] = "nowhere"
    bad["steps"]["odd"] = {"type": "teleport"}
    errors = problems(bad)
    assert set(errors) == {
        "trigger.event",
        "steps.wait.timeout",
        "steps.pick.branches.0.weight",
        "steps.tag.next",
        "steps.odd.type",
    }
    assert "'nowhere' is not a step" in errors["steps.tag.next"][0]


def test_a_step_no_path_reaches_and_a_branch_that_leads_nowhere_are_refused():
    lonely = cart()
    lonely["steps"]["island"] = {"type": "exit"}
    assert "no path from the start" in problems(lonely)["steps.island"][0]
    open_end = cart()
    del open_end["steps"]["wait"]["no"]
    assert "leads nowhere" in problems(open_end)["steps.wait.no"][0]


def test_a_loop_without_a_wait_is_refused_and_one_through_a_delay_is_not():
    spin = cart()
    spin["steps"]["tag"]["next"] = "again"
    spin["steps"]["again"] = {
        "type": "condition", "yes": "tag", "no": "done",
        "rules": {"attribute": "country", "op": "eq", "value": "GB"},
    }  # fmt: skip
    errors = problems(spin)
    assert "in a loop (again, tag) that can go round without waiting 60 s" in errors["steps.tag"][0]
    assert "steps.again" in errors
    calm = cart()
    calm["steps"]["tag"]["next"] = "pause"
    calm["steps"]["pause"] = {"type": "delay", "duration": "1d", "next": "tag"}
    graph.check(calm)


def test_a_loop_with_a_wait_on_one_way_round_and_none_on_the_other_is_refused():
    """The outside tester's: an hour's delay on the "yes" way, straight back on the "no" way."""
    definition = {"start": "c", "steps": {
        "c": {"type": "condition", "rules": {"attribute": "country", "op": "eq", "value": "x"},
              "yes": "d", "no": "u"},
        "d": {"type": "delay", "duration": "1h", "next": "c"},
        "u": {"type": "update_attribute", "attribute": "spun", "value": "yes", "next": "c"},
    }}  # fmt: skip
    errors = problems(definition)
    assert set(errors) == {"steps.c", "steps.u"}  # the way round that does not wait
    assert "(c, u)" in errors["steps.u"][0]


def test_a_yearly_date_delay_does_not_count_as_a_wait_in_a_loop():
    """A customer without the date moves on at once, every time round."""
    definition = {"start": "d", "steps": {
        "d": {"type": "delay", "until_date": "birthday", "yearly": True, "next": "u"},
        "u": {"type": "update_attribute", "attribute": "n", "value": 1, "next": "d"},
    }}  # fmt: skip
    assert "steps.d" in problems(definition)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("30s", 30), ("15m", 900), ("4h", 14400), ("7d", 604800), (90, 90), ("1.5h", 5400)],
)
def test_durations(value, expected):
    assert graph.seconds(value) == expected


def test_a_loop_through_a_short_delay_spins_too_and_is_refused():
    quick = cart()
    quick["steps"]["tag"]["next"] = "pause"
    quick["steps"]["pause"] = {"type": "delay", "duration": "30s", "next": "tag"}
    assert "without waiting 60 s" in problems(quick)["steps.pause"][0]
    zero = cart()
    zero["steps"]["tag"]["next"] = "pause"
    zero["steps"]["pause"] = {"type": "delay", "duration": "0s", "next": "tag"}
    assert "from 1 second to a year" in problems(zero)["steps.pause.duration"][0]


@pytest.mark.parametrize(
    ("change", "place"),
    [
        (lambda d: d.update(start=["wait"]), "start"),
        (lambda d: d["steps"]["done"].update(type=["exit"]), "steps.done.type"),
        (lambda d: d["steps"]["tag"].update(next={"x": 1}), "steps.tag.next"),
        (lambda d: d["steps"]["pick"]["branches"][0].update(next=["tag"]),
         "steps.pick.branches.0.next"),
    ],
)  # fmt: skip
def test_ids_that_are_not_text_are_refused_by_name(change, place):
    definition = cart()
    change(definition)
    assert place in problems(definition)


@pytest.mark.parametrize(
    "value", ["", "4 hours", "-1s", "0s", "0.001s", True, None, "400d", [1], "١٢s"]
)
def test_bad_durations(value):
    with pytest.raises(ValueError):
        graph.seconds(value)


def test_a_definition_that_is_not_an_object_or_has_no_steps():
    assert "definition" in problems([1, 2])
    assert "steps" in problems({"start": "a", "steps": {}})
    assert "start" in problems({**cart(), "start": "missing"})
