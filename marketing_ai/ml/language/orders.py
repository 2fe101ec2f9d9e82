"""Questions about a customer's own orders, answered from the orders' facts: which orders a
message asks about (a number, a date or period, a product, a state: cancelled or returned) and
the answer, listing at most a few orders and lines and counting what it leaves out.

Only the orders the caller passes in are ever read (the identified customer's own); nothing
here is generated, so every number in an answer is one of theirs.
"""

import calendar
import re
from dataclasses import dataclass, field
from datetime import date, timedelta

from marketing_ai.ml.language import products as names

MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
MONTHS["sept"] = 9  # in MONTH below, and how many write it
MONTH = r"(january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"  # noqa: E501
ORDINAL = r"(\d{1,2})(?:st|nd|rd|th)?"
YEAR = r"\b(19\d{2}|20\d{2})\b"
LINES_SHOWN = 5
ORDERS_SHOWN = 3

# The words of an order question that never name a product.
ORDER_WORDS = set(
    """when which whose date day days month months year years week weeks placed place made
    cancel cancelled canceled cancellation return returned returns refund refunded ship shipped
    dispatched delivered arrive arrived status order number recent latest first earliest
    previous past history today yesterday ago total spend spent list show send sent between
    until till through""".split()
) | set(MONTHS)


@dataclass
class Line:
    quantity: int
    name: str

    def __str__(self) -> str:
        return f"{abs(self.quantity)} × {self.name}"


@dataclass
class Order:
    number: str
    placed_at: str  # ISO date
    status: str  # "placed" or "cancelled"
    total: str  # "24.50 GBP"
    lines: list[Line] = field(default_factory=list)
    kind: str = "order"  # "order", or "return" (a credit note)
    cancelled_at: str = ""  # ISO date, when cancelled

    @property
    def day(self) -> date:
        return date.fromisoformat(self.placed_at[:10])


@dataclass
class Question:
    """What an order question asks for; empty fields ask nothing of that kind."""

    numbers: list[str] = field(default_factory=list)
    start: date | None = None  # the period asked about, [start, end)
    end: date | None = None
    period: str = ""  # the period in words: "in October 2011", "on 5 December 2010"
    product: list[str] = field(default_factory=list)  # content words naming a product
    phrase: str = ""  # those words as the customer wrote them
    state: str = ""  # "cancelled" or "returned"
    latest: bool = False  # "my last order"
    asked_product: bool = False  # "when did I buy …": a product named that must be found


def _month_range(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    return start, (start + timedelta(days=32)).replace(day=1)


def _year_of(month: int, day: int | None, orders: list[Order], today: date) -> int:
    """The year a month (and day) without one means: the latest year the customer ordered on
    that day, else in that month, else the last such date up to their latest order (their
    orders may be years old), or up to today when they have none."""
    on_day = [o.day.year for o in orders if o.day.month == month and o.day.day == day]
    in_month = [o.day.year for o in orders if o.day.month == month]
    if on_day or in_month:
        return max(on_day or in_month)
    latest = max((o.day for o in orders), default=today)
    return latest.year if (month, day or 1) <= (latest.month, latest.day) else latest.year - 1


def _day(year: int, month: int, number: int) -> tuple[date, date, str] | None:
    try:
        day = date(year, month, number)
    except ValueError:
        return None
    return day, day + timedelta(days=1), f"on {day.day} {calendar.month_name[month]} {year}"


def period(message: str, orders: list[Order], today: date) -> tuple[date, date, str] | None:
    """The period [start, end) and its name that a message asks about: a date, a day of a
    month, a month (with or without its year), a year, or last/this month or year; None when
    it names none."""
    text = message.lower()
    iso = re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", text)
    if iso:
        return _day(int(iso[1]), int(iso[2]), int(iso[3]))
    numeric = _numeric_day(text, orders)
    if numeric:
        return numeric
    year_match = re.search(YEAR, text)
    year = int(year_match[1]) if year_match else None
    between = re.search(
        rf"\b(?:between|from) {MONTH}(?: {YEAR})? (?:and|to|until|till|through|-) {MONTH}\b", text
    )
    if between:
        return _months_between(between, year, orders, today)
    day_month = re.search(rf"\b{ORDINAL}(?: of)? {MONTH}\b", text)
    month_day = re.search(rf"\b{MONTH} {ORDINAL}\b(?!\d)", text)
    if day_month or month_day:
        number, name = day_month.groups() if day_month else month_day.groups()[::-1]
        # "may" before a number is a verb unless a year or a preposition says it is the month.
        verb = (
            name == "may"
            and month_day
            and not year
            and not re.search(r"\b(on|in|from|since|of) may\b", text)
        )
        if not verb:
            month = MONTHS[name]
            y = year or _year_of(month, int(number), orders, today)
            return _day(y, month, int(number))
    month_match = re.search(rf"\b{MONTH}\b", text)
    # "may" is a month only beside a year ("in May 2011"): otherwise a verb.
    if month_match and (month_match[1] != "may" or year):
        month = MONTHS[month_match[1]]
        y = year or _year_of(month, None, orders, today)
        start, end = _month_range(y, month)
        return start, end, f"in {calendar.month_name[month]} {y}"
    if year:
        return date(year, 1, 1), date(year + 1, 1, 1), f"in {year}"
    relative = re.search(r"\b(last|this) (month|year)\b", text)
    if relative is None:
        return None
    back = relative[1] == "last"
    if relative[2] == "year":
        y = today.year - back
        return date(y, 1, 1), date(y + 1, 1, 1), f"in {y}"
    first = today.replace(day=1)
    start = (first - timedelta(days=1)).replace(day=1) if back else first
    start, end = _month_range(start.year, start.month)
    return start, end, f"in {calendar.month_name[start.month]} {start.year}"


NUMERIC_DATE = re.compile(r"(?<![\w/.-])(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})(?![\w/.-])")


def _numeric_day(text: str, orders: list[Order]) -> tuple[date, date, str] | None:
    """ "12/10/2011": day first, as the shop's country writes it, unless only the month-first
    reading is a real date or only it is a day the customer ordered on."""
    match = NUMERIC_DATE.search(text)
    if not match:
        return None
    a, b, y = int(match[1]), int(match[2]), int(match[3])
    y += 2000 if y < 100 else 0
    readings = [r for r in (_day(y, b, a), _day(y, a, b)) if r]
    if not readings:
        return None
    ordered = {o.day for o in orders}
    return next((r for r in readings if r[0] in ordered), readings[0])


def _months_between(match: re.Match, year: int | None, orders: list[Order], today: date):
    """ "between Sept and Nov (2011)": the first day of the one to the end of the other; without
    a year, the latest such span the customer ordered in (as for one month)."""
    first, second = MONTHS[match[1]], MONTHS[match[3]]

    def span(end_year: int) -> tuple[date, date]:
        start = _month_range(end_year - (first > second), first)[0]
        return start, _month_range(end_year, second)[1]

    end_year = year or int(match[2] or 0)
    if not end_year:
        latest = max((o.day for o in orders), default=today)
        years = range(latest.year + 1, latest.year - 30, -1)
        end_year = next(
            (y for y in years if any(span(y)[0] <= o.day < span(y)[1] for o in orders)),
            latest.year if span(latest.year)[0] <= latest else latest.year - 1,
        )
    start, end = span(end_year)
    start_year = start.year
    name = (
        f"between {calendar.month_name[first]} {start_year} and "
        f"{calendar.month_name[second]} {end_year}"
    )
    return start, end, name


# "when did I buy the cake stand", "did I ever order napkins", "orders with the lantern".
PRODUCT_ASKED = re.compile(
    r"\b(?:did i|have i|i) (?:ever )?(?:buy|bought|order|ordered|purchase|purchased|get|got"
    r"|return|returned)\b|\borders? (?:with|containing|that had|for)\b"
)


REFERENCE = re.compile(r"(?<![\w-])(?:[a-z]+-?)*\d{3,}(?:-?[a-z0-9]+)*(?![\w-])", re.I)


def parse(message: str, orders: list[Order], today: date) -> Question:
    """What `message` asks of the customer's `orders` (most recent first)."""
    text = message.lower()
    question = Question()
    own = {o.number.lower() for o in orders}
    # An order reference whole, with its letters and dashes ("B-ORDER-777", "C536379"), not
    # just its digits; dates ("12/10/2011") are no reference.
    for token in re.findall(REFERENCE, NUMERIC_DATE.sub(" ", message)):
        # A year is a year unless it is one of their order numbers: "October 2011" was once
        # answered as an order numbered 2011.
        if token.lower() not in own and re.fullmatch(r"(19|20)\d{2}", token):
            continue
        question.numbers.append(token)
    found = period(message, orders, today)
    if found:
        question.start, question.end, question.period = found
    if re.search(r"\bcancel+(?:l?ed|ations?)\b|\bdid i cancel\b", text):
        question.state = "cancelled"
    elif re.search(r"\b(returned|returns|refunded|did i (?:return|send back))\b", text):
        question.state = "returned"
    question.latest = bool(re.search(r"\b(last|latest|most recent|newest) order\b", text))
    question.asked_product = bool(PRODUCT_ASKED.search(text))
    ignore = ORDER_WORDS | {n.lower() for n in question.numbers}
    written = [w for w in names.as_written(text, ignore) if not w.isdigit()]
    question.phrase = " ".join(written)
    question.product = names.content_words(question.phrase)
    return question


def answer(message: str, orders: list[Order], today: date | None = None) -> str:
    """The answer to an order question from `orders` (the customer's own, most recent first)."""
    if not orders:
        return "I can't find any orders on your account."
    question = parse(message, orders, today or date.today())
    if question.numbers:
        return _by_number(question, orders) + _dispatch(message, question, orders)
    chosen = orders
    if question.start:
        chosen = [o for o in chosen if question.start <= o.day < question.end]
    if question.state == "cancelled":
        chosen = [o for o in chosen if o.kind == "order" and o.status == "cancelled"]
    elif question.state == "returned":
        chosen = [o for o in chosen if o.kind == "return"]
    else:
        chosen = [o for o in chosen if o.kind == "order"]
    if question.product:
        found = _with_product(question.product, chosen)
        if found is not None:
            return _product_answer(question, *found)
        if question.asked_product:
            where = f" {_what(question)}" if question.start or question.state else " orders"
            return f"I can't find {question.phrase} in your{where}. " + _span(orders)
    if question.start or question.state:
        return _listed(question, chosen, orders)
    return describe((orders_of_kind(orders) or orders)[0]) + _dispatch(message, question, orders)


SHIPPING = re.compile(
    r"\b(ship|shipped|dispatch|dispatched|deliver|delivered|arrive|arrived|sent)\b"
)


def _dispatch(message: str, question: Question, orders: list[Order]) -> str:
    """What the order can say to "has it shipped?": the platform records orders, not their
    dispatch, so 'placed' must not read as 'not sent yet'."""
    if not SHIPPING.search(message.lower()):
        return ""
    if question.numbers:
        asked = [n.lower() for n in question.numbers]
        found = [o for o in orders if any(n in o.number.lower() for n in asked)]
    else:
        found = orders_of_kind(orders)[:1]
    if not found or found[0].kind != "order" or found[0].status != "placed":
        return ""
    return " Its dispatch is not recorded on the order, so I can't tell whether it has left us."


def orders_of_kind(orders: list[Order], kind: str = "order") -> list[Order]:
    return [o for o in orders if o.kind == kind]


def _by_number(question: Question, orders: list[Order]) -> str:
    asked = [n.lower() for n in question.numbers]
    found = [o for o in orders if any(n in o.number.lower() for n in asked)]
    if not found:
        latest = (orders_of_kind(orders) or orders)[0]
        return (
            f"I can't find an order numbered {question.numbers[0]} on your account. Your most "
            f"recent order is {latest.number}, placed on {latest.placed_at}."
        )
    return describe(found[0])


def state(order: Order) -> str:
    if order.kind == "return":
        return "returned (a credit note)"
    if order.status == "cancelled":
        return "cancelled" + (f" on {order.cancelled_at}" if order.cancelled_at else "")
    return order.status


def contents(lines: list[Line], shown: int = LINES_SHOWN) -> str:
    """'2 × Regency teacup; 1 × Lantern … and 23 more items' (items = order lines)."""
    text = "; ".join(str(line) for line in lines[:shown])
    rest = len(lines) - shown
    if rest > 0:
        text += f" … and {rest} more item{'s' if rest != 1 else ''}"
    return text


def describe(order: Order) -> str:
    """One order in full: number, date, state, what it holds (the first lines), total."""
    noun = "return" if order.kind == "return" else "order"
    text = f"Your {noun} {order.number}, placed on {order.placed_at}, has status: {state(order)}."
    if order.lines:
        text += " It contains " + contents(order.lines) + "."
    return text + f" Total: {order.total}."


def _brief(order: Order, lines: int = 3) -> str:
    text = f"{order.number} on {order.placed_at}"
    if order.kind == "order" and order.status != "placed":
        text += f" ({state(order)})"
    if order.lines:
        text += ": " + contents(order.lines, lines)
    return text + f" (total {order.total})"


def _what(question: Question) -> str:
    noun = {"cancelled": "cancelled orders", "returned": "returns"}.get(question.state, "orders")
    return noun + (f" {question.period}" if question.period else "")


def _span(orders: list[Order]) -> str:
    ordered = orders_of_kind(orders) or orders
    if len(ordered) == 1:
        return f"Your one order is {ordered[0].number}, placed on {ordered[0].placed_at}."
    return (
        f"Your {len(ordered)} orders run from {ordered[-1].placed_at} to "
        f"{ordered[0].placed_at}; the most recent is {ordered[0].number}."
    )


def _listed(question: Question, chosen: list[Order], orders: list[Order]) -> str:
    if not chosen:
        return f"I can't find any {_what(question)} on your account. " + _span(orders)
    count = len(chosen)
    noun = {"cancelled": "cancelled order", "returned": "return"}.get(question.state, "order")
    head = f"You have {count} {noun}{'s' if count != 1 else ''}"
    head += f" {question.period}" if question.period else ""
    text = f"{head}. " + " ".join(_brief(o) + "." for o in chosen[:ORDERS_SHOWN])
    if count > ORDERS_SHOWN:
        rest = count - ORDERS_SHOWN
        text += f" … and {rest} more {noun}{'s' if rest != 1 else ''}."
    return text


def _with_product(query: list[str], chosen: list[Order]) -> tuple[list[str], list] | None:
    """The lines of `chosen` whose product matches `query`, as (product names, [(order, line)])
    with the best-matching names only; None when no line matches."""
    best, hits = 0.0, []
    prepared: dict[str, names.Name] = {}
    for order in chosen:
        for line in order.lines:
            name = prepared.setdefault(line.name, names.Name.of(line.name))
            s = names.score(query, name)
            if s < names.MIN_SCORE or s < best:
                continue
            if s > best:
                best, hits = s, []
            hits.append((order, line))
    if not hits:
        return None
    products = sorted({line.name for _, line in hits}, key=lambda n: (len(n), n))
    return products, hits


def _product_answer(question: Question, products: list[str], hits: list) -> str:
    when = f" {question.period}" if question.period else ""
    verb = "returned" if question.state == "returned" else "bought"
    what = products[0] if len(products) == 1 else ", ".join(products[:3])
    if len(products) > 3:
        what += f" and {len(products) - 3} more product{'s' if len(products) > 4 else ''}"
    orders: list[tuple[Order, list[Line]]] = []
    for order, line in hits:
        if not orders or orders[-1][0] is not order:
            orders.append((order, []))
        lines = orders[-1][1]
        same = [x for x in lines if x.name == line.name]  # a shop may repeat a product's line
        if same:
            same[0].quantity += line.quantity
        else:
            lines.append(Line(line.quantity, line.name))
    shown = [
        f"{order.placed_at} (order {order.number}: "
        + "; ".join(str(line) for line in lines[:2])
        + (f" and {len(lines) - 2} more" if len(lines) > 2 else "")
        + ")"
        for order, lines in orders[:ORDERS_SHOWN]
    ]
    times = "once" if len(orders) == 1 else f"in {len(orders)} orders"
    text = f"You {verb} {what} {times}{when}: " + ", ".join(shown)
    if len(orders) > ORDERS_SHOWN:
        rest = len(orders) - ORDERS_SHOWN
        text += f" … and {rest} more order{'s' if rest != 1 else ''}"
    return text + "."
