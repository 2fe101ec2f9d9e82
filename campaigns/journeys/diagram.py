"""A journey's definition drawn as an SVG diagram, server-side: steps in layers, top to bottom,
by their depth from the start (the longest way there, so that every edge but a loop's points
down), each edge labelled with the branch it is (yes / no / branch N / next), and on each step
how many entered it, wait there now and left it. Drafts are drawn as they are, incomplete ones
too: a successor that is not a step is drawn as a dangling edge, steps no path reaches are drawn
in a last layer."""

from dataclasses import dataclass
from typing import Any

from django.utils.html import escape

from campaigns.journeys import graph

BOX_W, BOX_H = 200, 70
GAP_X, GAP_Y = 40, 70
MARGIN = 20
LANE = 14  # the room each edge that goes round the steps takes on the right
TOP = GAP_Y / 2  # room above the first layer for an edge back up into it


@dataclass(frozen=True)
class Edge:
    source: str
    target: Any  # a step id, or whatever a draft holds (None, a typo)
    label: str
    key: str  # the setting that holds it: "next", "yes", "no", "branches.0.next"


def edges(step_id: str, step: Any) -> list[Edge]:
    """The ways on from a step of a draft (its settings may be missing or wrong)."""
    if not isinstance(step, dict):
        return []
    kind = step.get("type")
    if kind == "split":
        branches = step.get("branches")
        if not isinstance(branches, list):
            return []
        return [
            Edge(step_id, b.get("next") if isinstance(b, dict) else None, f"branch {i + 1}",
                 f"branches.{i}.next")
            for i, b in enumerate(branches)
        ]  # fmt: skip
    keys = graph.SUCCESSORS.get(kind, ())
    return [Edge(step_id, step.get(key), key, key) for key in keys]


def layers(definition: dict) -> list[list[str]]:
    """Step ids in layers: each step one below the deepest step that leads to it (the longest
    way from the start, loops' edges back left out), so every edge points down; steps no path
    reaches come last, in one layer."""
    steps = definition.get("steps") if isinstance(definition, dict) else None
    if not isinstance(steps, dict) or not steps:
        return []
    start = definition.get("start") if isinstance(definition.get("start"), str) else None

    def ways_on(step_id: str) -> list[str]:
        found = []
        for edge in edges(step_id, steps[step_id]):
            if isinstance(edge.target, str) and edge.target in steps and edge.target not in found:
                found.append(edge.target)
        return found

    # Depth-first from the start: `order` is each step after all it leads to (loops' edges back
    # to a step still open are skipped), so its reverse is a topological order.
    order: list[str] = []
    state: dict[str, str] = {}
    if start in steps:
        stack = [(start, iter(ways_on(start)))]
        state[start] = "open"
        while stack:
            step_id, todo = stack[-1]
            target = next(todo, None)
            if target is None:
                stack.pop()
                state[step_id] = "done"
                order.append(step_id)
            elif target not in state:
                state[target] = "open"
                stack.append((target, iter(ways_on(target))))
    depth = {step_id: 0 for step_id in order}
    finished = {step_id: n for n, step_id in enumerate(order)}
    for step_id in reversed(order):
        for target in ways_on(step_id):
            back = finished[target] >= finished[step_id]  # leads back up a loop
            if target in depth and not back:
                depth[target] = max(depth[target], depth[step_id] + 1)
    found: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for step_id in steps:  # the definition's order within a layer
        if step_id in depth:
            found[depth[step_id]].append(step_id)
    unreached = [step_id for step_id in steps if step_id not in depth]
    if unreached:
        found.append(unreached)
    return found


def summary(step: Any) -> str:
    """One line on what a step does, e.g. "wait 4h for purchase"."""
    if not isinstance(step, dict):
        return "?"
    kind = step.get("type")
    if kind == "delay":
        if step.get("until_date"):
            return f"delay until {step['until_date']}"
        if step.get("until_time"):
            return f"delay until {step['until_time']} local"
        return f"delay {step.get('duration', '?')}"
    if kind == "wait_event":
        return f"wait {step.get('timeout', '?')} for {step.get('event', '?')}"
    if kind == "condition":
        return "condition"
    if kind == "split":
        weights = [
            str(b.get("weight", "?")) for b in step.get("branches") or [] if isinstance(b, dict)
        ]
        return "split " + "/".join(weights)
    if kind == "update_attribute":
        return f"set {step.get('attribute', '?')}"
    if kind == "segment":
        return f"{step.get('action', '?')} segment {step.get('segment', '?')}"
    if kind == "webhook":
        return f"webhook {step.get('endpoint', '?')}"
    if kind == "send":
        return f"send message {step.get('campaign', '?')}"
    if kind == "exit":
        return "exit"
    return str(kind or "no type")


def svg(
    definition: dict,
    *,
    counts: dict[str, dict] | None = None,
    link: str = "?step={}",
    selected: str | None = None,
    faulty: set[str] | frozenset = frozenset(),
) -> str:
    """The diagram as an <svg> element (a string, HTML-escaped within). `counts`: step id ->
    {"entered", "now", "left"} (the live version's); `link`: each step's href with the step id
    for {}; `faulty`: steps drawn as having problems; "" when there are no steps."""
    rows = layers(definition)
    if not rows:
        return ""
    steps = definition["steps"]
    start = definition.get("start") if isinstance(definition.get("start"), str) else None
    counts = counts or {}
    inner = MARGIN * 2 + max(len(row) for row in rows) * (BOX_W + GAP_X) - GAP_X
    where: dict[str, tuple[float, float]] = {}
    for r, row in enumerate(rows):
        row_w = len(row) * (BOX_W + GAP_X) - GAP_X
        left = (inner - row_w) / 2
        for c, step_id in enumerate(row):
            where[step_id] = (left + c * (BOX_W + GAP_X), TOP + r * (BOX_H + GAP_Y))
    # Edges to the next layer are drawn straight down; the others (skipping layers, or back up
    # a loop) each get a lane of their own to the right of the steps, so none crosses a box.
    drawn = [edge for step_id, step in steps.items() for edge in edges(step_id, step)]
    lanes = [edge for edge in drawn if _lane_needed(edge, where)]
    width = inner + LANE * len(lanes) + (MARGIN if lanes else 0)
    height = TOP + MARGIN + len(rows) * (BOX_H + GAP_Y)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="journey-diagram" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        'aria-label="the journey\'s steps">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#666"/></marker></defs>',
    ]
    for edge in drawn:
        lane = inner + LANE * lanes.index(edge) if edge in lanes else None
        parts.append(_edge(edge, where, lane))
    for step_id, step in steps.items():
        parts.append(
            _box(step_id, step, where[step_id], counts.get(step_id), link, step_id == start,
                 step_id == selected, step_id in faulty)
        )  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _lane_needed(edge: Edge, where: dict) -> bool:
    if not (isinstance(edge.target, str) and edge.target in where):
        return False
    return where[edge.target][1] != where[edge.source][1] + BOX_H + GAP_Y


def _edge(edge: Edge, where: dict, lane: float | None) -> str:
    x0, y0 = where[edge.source]
    sx, sy = x0 + BOX_W / 2, y0 + BOX_H
    label = escape(edge.label)
    if not (isinstance(edge.target, str) and edge.target in where):
        # Leads nowhere (yet): a short dashed stub with what it holds.
        shown = "?" if edge.target is None else escape(str(edge.target))
        return (
            f'<g class="edge dangling"><line x1="{sx:.0f}" y1="{sy:.0f}" x2="{sx:.0f}" '
            f'y2="{sy + GAP_Y / 2:.0f}" stroke="#c00" stroke-dasharray="4 3"/>'
            f'<text x="{sx + 4:.0f}" y="{sy + GAP_Y / 2:.0f}" font-size="11" fill="#c00">'
            f"{label}: {shown}</text></g>"
        )
    x1, y1 = where[edge.target]
    tx, ty = x1 + BOX_W / 2, y1
    if lane is None:  # down to the next layer
        my = (sy + ty) / 2
        path = f"M{sx:.0f},{sy:.0f} C{sx:.0f},{my:.0f} {tx:.0f},{my:.0f} {tx:.0f},{ty:.0f}"
        lx, ly = (sx + tx) / 2 + 4, my
    else:  # out into the gap below, along the lane on the right, into the gap above the target
        below = sy + GAP_Y / 3 + (lane % 3) * 5
        above = ty - GAP_Y / 3 - (lane % 3) * 5
        path = f"M{sx:.0f},{sy:.0f} V{below:.0f} H{lane:.0f} V{above:.0f} H{tx:.0f} V{ty:.0f}"
        lx, ly = sx + 4, sy + 14
    return (
        f'<g class="edge" data-from="{escape(edge.source)}" data-to="{escape(edge.target)}">'
        f'<path d="{path}" fill="none" stroke="#666" marker-end="url(#arrow)"/>'
        f'<text x="{lx:.0f}" y="{ly:.0f}" font-size="11" fill="#333">{label}</text></g>'
    )


def _box(step_id, step, at, counted, link, is_start, is_selected, is_faulty) -> str:
    x, y = at
    stroke = "#c00" if is_faulty else ("#205067" if is_selected else "#79aec8")
    fill = "#fde8e8" if is_faulty else ("#e6f1f6" if is_selected else "#fff")
    counted = counted or {}
    line = (
        f"entered {counted.get('entered', 0)} · now {counted.get('now', 0)} · "
        f"left {counted.get('left', 0)}"
    )
    title = escape(step_id) + (" (start)" if is_start else "")
    return (
        f'<a href="{escape(link.format(step_id))}" class="step" data-step="{escape(step_id)}">'
        f'<rect x="{x:.0f}" y="{y:.0f}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="{3 if is_selected or is_faulty else 1.5}"/>'
        f'<text x="{x + 10:.0f}" y="{y + 20:.0f}" font-size="13" font-weight="bold">{title}</text>'
        f'<text x="{x + 10:.0f}" y="{y + 38:.0f}" font-size="12">{escape(summary(step)[:30])}'
        f"</text>"
        f'<text x="{x + 10:.0f}" y="{y + 58:.0f}" font-size="11" fill="#555" class="counts">'
        f"{line}</text></a>"
    )
