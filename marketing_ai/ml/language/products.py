"""Finding products by what a customer calls them, for the support assistant: in the catalogue
("how much is the cake stand?") and among the lines of their own orders ("when did I buy the
cake stand?"). Matching is lexical on purpose: a shop's names are codes and compounds
("REGENCY CAKESTAND 3 TIER") that a sentence encoder places poorly, and every product must be
findable without encoding the whole catalogue on each change.

A query word matches a name when it is one of the name's words, starts or ends one of them
("tea" in "teacup"), or, from five letters, sits inside the name written without spaces
("cakestand" for "cake stand"); plurals are folded and number words read as digits.
"""

import re
from dataclasses import dataclass, field

# Words that say nothing about which product is meant.
STOP = set(
    """a an the and or of for to in on at by with from my me i we our your you it its this that
    these those is are was were be been do does did have has had can could would will shall
    should may might what which when where who how why much many any some please tell about
    there here get got buy bought order ordered orders purchase purchased purchases sell sold
    stock stocked still available price prices cost costs priced again ever last time times
    one ones thing things item items product products kind kinds stuff sort sorts range
    all more most same just also very really hi hello thanks thank yes no not if than then
    like want need looking look find see know made make offer offers currently now before
    already previously""".split()
)
# Singular already, whatever their last letter says.
KEEP = {"christmas", "xmas", "canvas", "atlas", "lens", "series", "news", "gas", "dress"}
NUMBERS = dict(
    zip(
        "one two three four five six seven eight nine ten twelve".split(),
        "1 2 3 4 5 6 7 8 9 10 12".split(),
        strict=True,
    )
)


def singular(word: str) -> str:
    if len(word) <= 3 or word in KEEP:
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us")):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    """Lower-case words of `text`, singular, number words as digits."""
    found = re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))
    return [NUMBERS.get(w, singular(w)) for w in found]


def content_words(text: str, also_ignore: set[str] = frozenset()) -> list[str]:
    """The words of `text` that could name a product (stop words and `also_ignore` left out),
    singular, number words as digits."""
    return [NUMBERS.get(w, singular(w)) for w in as_written(text, also_ignore)]


def as_written(text: str, also_ignore: set[str] = frozenset()) -> list[str]:
    """content_words as the customer wrote them (lower-case), for answers that quote them."""
    raw = re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))
    return [w for w in raw if w not in STOP and w not in also_ignore]


@dataclass
class Name:
    """A name prepared for matching."""

    text: str
    words: set[str] = field(default_factory=set)
    compact: str = ""

    @classmethod
    def of(cls, text: str) -> "Name":
        found = words(text)
        return cls(text, set(found), "".join(found))


def matches(word: str, name: Name) -> bool:
    if word in name.words:
        return True
    if len(word) >= 3 and any(w.startswith(word) or w.endswith(word) for w in name.words):
        return True
    return len(word) >= 5 and word in name.compact


def score(query: list[str], name: Name) -> float:
    """Share of the query's words the name matches; a pair of query words written as one in the
    name ("cake stand" / "CAKESTAND") counts as both."""
    if not query:
        return 0.0
    hit = [matches(w, name) for w in query]
    for i in range(len(query) - 1):
        if query[i] + query[i + 1] in name.compact:
            hit[i] = hit[i + 1] = True
    return sum(hit) / len(query)


# A name must carry at least this share of the query's words: "three tier cake stand" still
# finds "CAKESTAND 3 TIER", "next day delivery" finds no product with "day" in its name.
MIN_SCORE = 0.66


@dataclass
class Product:
    sku: str
    name: str
    price: str | None  # "12.25", None when the shop gave none
    currency: str
    description: str = ""
    category: str = ""
    active: bool = True


class Catalogue:
    """A workspace's products, prepared once for lookups by what a customer calls them."""

    def __init__(self, products: list[Product]) -> None:
        self.products = products
        self._names = [Name.of(f"{p.name} {p.sku}") for p in products]

    def __len__(self) -> int:
        return len(self.products)

    def find(self, query: list[str], limit: int = 50) -> list[Product]:
        """Products whose name (or SKU) matches `query` (content words), best first: the most
        query words matched, then active before inactive, then the shortest name (the one the
        customer most likely means)."""
        if not query:
            return []
        scored = []
        for product, name in zip(self.products, self._names, strict=True):
            s = score(query, name)
            if s >= MIN_SCORE:
                scored.append((-s, not product.active, len(name.words), product.name, product))
        scored.sort(key=lambda row: row[:4])
        best = scored[0][0] if scored else 0
        return [row[-1] for row in scored if row[0] == best][:limit]
