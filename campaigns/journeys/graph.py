"""A journey's definition: its trigger, entry and exit rules and the graph of its steps, checked
whole before it can be published. Every problem is reported against the place it is in
(`steps.wait.timeout`, `trigger.event`), all at once, so an editor can mark each step.

    {
      "trigger": {"type": "event", "event": "cart_updated", "where": {"source": "web"}},
                                        (or "events": [...], any of several types)
      "entry_filter": {...segment rules...} or null,
      "reentry": {"policy": "not_inside"}, or "once", or "after_days" with "days": 30,
      "exit_on": ["purchase"],          event types that end an enrolment wherever it is
      "exit_on_leaving": [12],          segments whose leavers' enrolments end
                                        (a trigger may also be {"type": "segment", "segment": 12,
                                        "on": "enter" or "leave"}: entering or leaving one;
                                        or {"type": "date", "date": "birthday", "yearly": true,
                                        "offset_days": -7, "at": "09:00"}: a date, see below)
      "holdout_percent": 10,            a control group that enters, is counted, gets no messages
      "start": "wait",
      "steps": {
        "wait":  {"type": "wait_event", "event": "purchase", "timeout": "4h",
                  "yes": "done", "no": "hook"},
        "hook":  {"type": "webhook", "endpoint": 7, "next": "done"},
        "done":  {"type": "exit"}
      }
    }

Step types and their settings:
- delay: one of `duration` ("30s", "15m", "4h", "7d" or seconds), `until_time` ("09:00", the
  customer's local time of day, next occurrence), `until_date` (a date of the customer's, with
  `offset_days`, `yearly` and `at` as the date trigger's; a date already past, or none, moves on
  at once), or `until_best_hour` (true, or {"window_hours": 24, "explore_percent": 10}: the
  customer's best local hour within the window, from their clicks and conversions; an explore
  share at a random hour, so the gain is measured; no score: at once); `next`.
- wait_event: `event` (type), optional `where` (property equalities), `timeout`; `yes` (the event
  came) and `no` (the timeout passed).
- condition: `rules` (the segment rule language, scores included); `yes`, `no`.
- split: `branches`: [{"weight": 50, "next": "a"}, ...] (a random split, e.g. a test inside).
- update_attribute: `attribute`, `value`; `next`.
- segment: `action` "add" or "remove", `segment` (a static segment's id); `next`.
- webhook: `endpoint` (a registered webhook endpoint's id); `next`.
- send: `campaign` (a campaign of kind "journey": its channel, approved variants, consent rule,
  quiet hours and frequency cap); `next`. The message goes through the send ledger, once per
  enrolment and step; the holdout's is recorded as skipped ("holdout"), as a broadcast's is.
- exit.

Dates (the date trigger, a delay until a date): `date` is "signed_up" (when the customer was
created), "last_order" (their latest placed order) or the name of an attribute holding an ISO date
("1990-05-17"); `offset_days` from -365 to 365 (default 0: "30 days after the last order" is
`"date": "last_order", "offset_days": 30`); `yearly` (default false) for a birthday or an
anniversary (29 February falls on the 28th in other years); `at`, the customer's local time of day
(default "09:00"). The trigger is evaluated once a day in each customer's time zone.

The graph is refused when a step no path from `start` reaches, a successor that is not a step, a
branch that leads nowhere, or a loop that passes no delay or wait (it would spin forever).
"""

import re
from datetime import time
from typing import Any

from crm import validation as v

TRIGGERS = ("event", "segment", "date", "api")
DATE_SOURCES = ("signed_up", "last_order")  # besides an attribute's name
ATTRIBUTE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$", re.ASCII)
REENTRY = ("not_inside", "once", "after_days")
# Steps that hold an enrolment until a timer (or an event) moves it on.
WAITING = ("delay", "wait_event")
SUCCESSORS = {
    "delay": ("next",),
    "wait_event": ("yes", "no"),
    "condition": ("yes", "no"),
    "update_attribute": ("next",),
    "segment": ("next",),
    "webhook": ("next",),
    "send": ("next",),
    "exit": (),
    "split": (),  # its branches name theirs
}
STEP_ID = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
EVENT_TYPE = re.compile(r"^[A-Za-z0-9_.:-]{1,50}$")
DURATION = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*(s|m|h|d)$", re.ASCII)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_SECONDS = 366 * 86400
MIN_WAIT_SECONDS = 1  # a delay or a wait's timeout: "0s" would let a loop spin
MIN_LOOP_SECONDS = 60  # a loop waits at least this long somewhere on its way round
MAX_STEPS = 200


class GraphError(v.Invalid):
    """The definition's problems: `errors` maps a place ("steps.s2.timeout") to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {' '.join(m)}" for k, m in errors.items()))


def seconds(value: Any) -> float:
    """A duration in seconds from "30s", "15m", "4h", "7d" or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 30s, 15m, 4h or 7d")
    if isinstance(value, int | float):
        amount = float(value)
    elif isinstance(value, str) and (match := DURATION.match(value.strip().lower())):
        amount = float(match[1]) * UNITS[match[2]]
    else:
        raise ValueError("a duration such as 30s, 15m, 4h or 7d")
    if not MIN_WAIT_SECONDS <= amount <= MAX_SECONDS:
        raise ValueError(f"from {MIN_WAIT_SECONDS} second to a year")
    return amount


def time_of_day(value: Any) -> time:
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{1,2}:[0-9]{2}", value.strip()):
        raise ValueError('a time of day such as "09:00"')
    hours, minutes = (int(part) for part in value.strip().split(":"))
    if hours > 23 or minutes > 59:
        raise ValueError('a time of day such as "09:00"')
    return time(hours, minutes)


class _Check:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, where: str, message: str) -> None:
        self.errors.setdefault(where, []).append(message)

    def event_type(self, where: str, value: Any) -> None:
        if not isinstance(value, str) or not EVENT_TYPE.match(value):
            self.add(where, "an event type (letters, digits, _ . : -; at most 50)")

    def where(self, where: str, value: Any) -> None:
        if value is None:
            return
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            self.add(where, "an object of property names to the values they must have")
            return
        for key, item in value.items():
            if isinstance(item, dict | list):
                self.add(f"{where}.{key}", "a plain value (text, number, true/false, null)")


def check(definition: Any, *, rules_check=None) -> dict:
    """The definition, normalised, or GraphError with every problem found.

    `rules_check(rules) -> str | None` checks a segment rule (the platform passes one that
    compiles it against the workspace); without it rules are only required to be objects.
    """
    c = _Check()
    if not isinstance(definition, dict):
        raise GraphError({"definition": ["an object with trigger, start and steps"]})
    trigger = definition.get("trigger") or {"type": "api"}
    if not isinstance(trigger, dict) or trigger.get("type") not in TRIGGERS:
        c.add("trigger.type", f"one of {', '.join(TRIGGERS)}")
    elif trigger["type"] == "event":
        # One event type ("event") or several ("events"); checked as the list "events".
        events = trigger.get("events", [trigger.get("event")])
        if not isinstance(events, list) or not 1 <= len(events) <= 10:
            c.add("trigger.events", "a list of one to ten event types")
        else:
            for index, event in enumerate(events):
                place = "trigger.event" if "events" not in trigger else f"trigger.events.{index}"
                c.event_type(place, event)
            trigger = {**trigger, "events": events}
        c.where("trigger.where", trigger.get("where"))
    elif trigger["type"] == "segment":
        _identifier(c, "trigger.segment", trigger.get("segment"))
        if trigger.get("on", "enter") not in ("enter", "leave"):
            c.add("trigger.on", "enter or leave")
        trigger = {**trigger, "on": trigger.get("on", "enter")}
    elif trigger["type"] == "date":
        trigger = {**trigger, **_date(c, "trigger", trigger)}
    reentry = definition.get("reentry") or {"policy": "not_inside"}
    if not isinstance(reentry, dict) or reentry.get("policy") not in REENTRY:
        c.add("reentry.policy", f"one of {', '.join(REENTRY)}")
    elif reentry["policy"] == "after_days":
        days = reentry.get("days")
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 3650:
            c.add("reentry.days", "whole days from 1 to 3650")
    exit_on = definition.get("exit_on") or []
    if not isinstance(exit_on, list):
        c.add("exit_on", "a list of event types")
    else:
        for index, event in enumerate(exit_on):
            c.event_type(f"exit_on.{index}", event)
    exit_on_leaving = definition.get("exit_on_leaving") or []
    if not isinstance(exit_on_leaving, list):
        c.add("exit_on_leaving", "a list of segment ids")
    else:
        for index, segment in enumerate(exit_on_leaving):
            _identifier(c, f"exit_on_leaving.{index}", segment)
    holdout = definition.get("holdout_percent", 0)
    if isinstance(holdout, bool) or not isinstance(holdout, int | float) or not 0 <= holdout <= 50:
        c.add("holdout_percent", "a percentage from 0 to 50")
    for name in ("entry_filter",):
        rules = definition.get(name)
        if rules is not None:
            _rules(c, name, rules, rules_check)

    steps = definition.get("steps")
    start = definition.get("start")
    if not isinstance(steps, dict) or not steps:
        c.add("steps", "an object of step id to step")
        raise GraphError(c.errors)
    if len(steps) > MAX_STEPS:
        c.add("steps", f"at most {MAX_STEPS} steps")
        raise GraphError(c.errors)
    for step_id, step in steps.items():
        _step(c, step_id, step, steps, rules_check)
    if not isinstance(start, str) or start not in steps:
        c.add("start", "the id of the first step")
    if c.errors:
        raise GraphError(c.errors)
    _shape(c, start, steps)
    if c.errors:
        raise GraphError(c.errors)
    return {
        **definition,
        "trigger": trigger,
        "reentry": reentry,
        "exit_on": exit_on,
        "exit_on_leaving": exit_on_leaving,
        "holdout_percent": holdout,
    }


def _rules(c: _Check, where: str, rules: Any, rules_check) -> None:
    if not isinstance(rules, dict):
        c.add(where, "segment rules (an object)")
    elif rules_check is not None and (problem := rules_check(rules)):
        c.add(where, problem)


def successors(step: dict) -> list[str]:
    """The steps `step` can lead to, in its own order."""
    if step.get("type") == "split":
        return [branch.get("next") for branch in step.get("branches") or []]
    return [step.get(key) for key in SUCCESSORS.get(step.get("type"), ())]


def _step(c: _Check, step_id: Any, step: Any, steps: dict, rules_check) -> None:
    where = f"steps.{step_id}"
    if not isinstance(step_id, str) or not STEP_ID.match(step_id):
        c.add(where, "a step id of letters, digits, _ and - (at most 40)")
        return
    if not isinstance(step, dict) or not isinstance(step.get("type"), str):
        c.add(f"{where}.type", f"one of {', '.join(SUCCESSORS)}")
        return
    if step["type"] not in SUCCESSORS:
        c.add(f"{where}.type", f"one of {', '.join(SUCCESSORS)}")
        return
    kind = step["type"]
    if kind == "delay":
        given = [
            key
            for key in ("duration", "until_time", "until_date", "until_best_hour")
            if step.get(key) is not None
        ]
        if len(given) != 1:
            c.add(where, "give one of duration, until_time, until_date or until_best_hour")
        elif given == ["until_date"]:
            _date(c, where, step, field="until_date")
        elif given == ["until_best_hour"]:
            _best_hour(c, f"{where}.until_best_hour", step["until_best_hour"])
        for key, parse in (("duration", seconds), ("until_time", time_of_day)):
            if step.get(key) is not None:
                try:
                    parse(step[key])
                except ValueError as exc:
                    c.add(f"{where}.{key}", str(exc))
    elif kind == "wait_event":
        c.event_type(f"{where}.event", step.get("event"))
        c.where(f"{where}.where", step.get("where"))
        try:
            seconds(step.get("timeout"))
        except ValueError as exc:
            c.add(f"{where}.timeout", str(exc))
    elif kind == "condition":
        _rules(c, f"{where}.rules", step.get("rules"), rules_check)
    elif kind == "split":
        branches = step.get("branches")
        if not isinstance(branches, list) or len(branches) < 2:
            c.add(f"{where}.branches", "two or more branches, each with a weight and a next step")
        else:
            for index, branch in enumerate(branches):
                weight = branch.get("weight") if isinstance(branch, dict) else None
                if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
                    c.add(f"{where}.branches.{index}.weight", "a whole number of at least 1")
    elif kind == "update_attribute":
        name = step.get("attribute")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
            c.add(f"{where}.attribute", "an attribute name (letters, digits, _)")
        if isinstance(step.get("value"), dict | list):
            c.add(f"{where}.value", "a plain value (text, number, true/false, null)")
    elif kind == "segment":
        if step.get("action") not in ("add", "remove"):
            c.add(f"{where}.action", "add or remove")
        _identifier(c, f"{where}.segment", step.get("segment"))
    elif kind == "webhook":
        _identifier(c, f"{where}.endpoint", step.get("endpoint"))
    elif kind == "send":
        _identifier(c, f"{where}.campaign", step.get("campaign"))
    names = SUCCESSORS[kind] if kind != "split" else ()
    for key in names:
        target = step.get(key)
        if target is None:
            c.add(f"{where}.{key}", "leads nowhere: name the next step")
        elif not isinstance(target, str) or target not in steps:
            c.add(f"{where}.{key}", f"{target!r} is not a step")
    if kind == "split" and isinstance(step.get("branches"), list):
        for index, branch in enumerate(step["branches"]):
            target = branch.get("next") if isinstance(branch, dict) else None
            if target is None:
                c.add(f"{where}.branches.{index}.next", "leads nowhere: name the next step")
            elif not isinstance(target, str) or target not in steps:
                c.add(f"{where}.branches.{index}.next", f"{target!r} is not a step")


def _best_hour(c: _Check, where: str, spec: Any) -> None:
    if spec is True:
        return
    if not isinstance(spec, dict) or set(spec) - {"window_hours", "explore_percent"}:
        c.add(where, 'true, or {"window_hours": 1..168, "explore_percent": 0..100}')
        return
    hours, explore = spec.get("window_hours", 24), spec.get("explore_percent", 10)
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 168:
        c.add(f"{where}.window_hours", "a whole number of hours from 1 to 168")
    if isinstance(explore, bool) or not isinstance(explore, int | float) or not 0 <= explore <= 100:
        c.add(f"{where}.explore_percent", "a share from 0 to 100")


def _date(c: _Check, where: str, spec: dict, field: str = "date") -> dict:
    """Checks a date's settings (the trigger's, a delay's) and returns them with defaults."""
    source = spec.get(field)
    if not isinstance(source, str) or not (source in DATE_SOURCES or ATTRIBUTE.match(source)):
        c.add(f"{where}.{field}", "signed_up, last_order or an attribute name (letters, digits, _)")
    offset = spec.get("offset_days", 0)
    if isinstance(offset, bool) or not isinstance(offset, int) or not -365 <= offset <= 365:
        c.add(f"{where}.offset_days", "whole days from -365 to 365")
    if not isinstance(spec.get("yearly", False), bool):
        c.add(f"{where}.yearly", "true or false")
    at = "09:00" if spec.get("at") is None else spec["at"]
    try:
        time_of_day(at)
    except ValueError as exc:
        c.add(f"{where}.at", str(exc))
    return {"offset_days": offset, "yearly": spec.get("yearly", False), "at": at}


def _identifier(c: _Check, where: str, value: Any) -> None:
    try:
        v.identifier(value)
    except v.Invalid:
        c.add(where, "an id (a whole number)")


def _shape(c: _Check, start: str, steps: dict) -> None:
    """Every step reachable from `start`, and no loop without a step that waits."""
    seen, todo = {start}, [start]
    while todo:
        for target in successors(steps[todo.pop()]):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for step_id in steps:
        if step_id not in seen:
            c.add(f"steps.{step_id}", "no path from the start reaches this step")
    # Every way round a loop must wait, long enough not to spin: among the steps that do not
    # hold an enrolment for MIN_LOOP_SECONDS, there must be no cycle (one branch of a loop that
    # waits an hour is no help when the other branch comes straight back).
    quick = {step_id for step_id, step in steps.items() if _waits(step) < MIN_LOOP_SECONDS}
    quick_steps = {
        step_id: {**steps[step_id], "_next": [t for t in successors(steps[step_id]) if t in quick]}
        for step_id in quick
    }
    reach = {step_id: _reachable_in(step_id, quick_steps) for step_id in quick}
    done: set[str] = set()
    for step_id in sorted(quick):
        if step_id in done:
            continue
        loop = sorted(other for other in reach[step_id] if step_id in reach[other])
        done.update(loop)
        if not loop:
            continue  # no way back to itself without a wait
        shown = ", ".join(loop[:10]) + (f" and {len(loop) - 10} more" if len(loop) > 10 else "")
        for member in loop:
            c.add(
                f"steps.{member}",
                f"in a loop ({shown}) that can go round without waiting {MIN_LOOP_SECONDS} s: "
                "give every way round a delay or a wait of a minute or more",
            )


def _reachable_in(start: str, steps: dict) -> set[str]:
    """As _reachable, over `steps` whose "_next" lists the successors that count."""
    seen: set[str] = set()
    todo = list(steps[start]["_next"])
    while todo:
        step_id = todo.pop()
        if step_id not in seen:
            seen.add(step_id)
            todo.extend(steps[step_id]["_next"])
    return seen


def _waits(step: dict) -> float:
    """How long `step` holds an enrolment at least (a local time of day: up to a day)."""
    if step["type"] == "delay":
        if step.get("duration") is not None:
            return seconds(step["duration"])
        if step.get("until_date") is not None or step.get("until_best_hour") is not None:
            return 0.0  # a customer without the date (or the score) moves on at once
        return 86400.0
    if step["type"] == "wait_event":
        return seconds(step["timeout"])
    return 0.0
