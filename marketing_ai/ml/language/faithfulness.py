"""Checks that copy is about the brief's products and moment, not merely free of invented facts:
a sentence the brief's facts do not support (MiniLM similarity below a floor), a category or
material word the product does not have (a cake stand is not glass), a season or occasion other
than the brief's, talk about the customer's order in a promotional mail, a subject or preheader
cut off, and HTML entities left in the text.

Each check returns (rule, detail) pairs; guardrails.check_field turns them into failures. What the
facts allow is worked out once per brief (`Grounds`), and sentence embeddings are cached in the
process, because the copy writer checks many candidates against the same brief.
"""

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

WORD = re.compile(r"[^\W\d_][\w'’-]*")
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")

# Category families: words that claim what a product is or is made of. A word counts against
# copy only when neither it nor any word of its family (nor the family's licences) appears in the
# brief, the products' names or their descriptions. Plurals are matched by the patterns.
FAMILIES: dict[str, tuple[str, ...]] = {
    "glass": ("glass", "glassware", "glassblowing", "glassblown", "glass-blown", "hand-blown",
              "blown glass", "crystal"),
    "ceramic": ("ceramic", "porcelain", "bone china", "fine china", "stoneware", "earthenware",
                "pottery", "terracotta"),
    "wood": ("wood", "wooden", "timber", "oak", "pine", "birch", "beech", "walnut", "mahogany",
             "bamboo", "plywood", "driftwood"),
    "metal": ("metal", "metallic", "zinc", "steel", "stainless steel", "iron", "cast iron",
              "wrought iron", "aluminium", "aluminum", "brass", "copper", "enamel", "enamelled",
              "tin", "pewter", "chrome"),
    "textile": ("cotton", "linen", "wool", "woollen", "woolen", "fabric", "cloth", "canvas",
                "jute", "hessian", "burlap", "polyester", "nylon", "velvet", "silk", "satin",
                "fleece", "knitted", "denim", "lace", "felted"),
    "leather": ("leather", "faux leather", "suede"),
    "paper": ("paper", "cardboard", "papier-mache", "papier-mâché", "kraft paper"),
    "plastic": ("plastic", "acrylic", "melamine", "silicone", "resin", "vinyl", "pvc", "rubber"),
    "wicker": ("wicker", "rattan", "willow", "seagrass"),
    "stone": ("slate", "marble", "granite", "concrete", "stone"),
    "electronic": ("bluetooth", "wifi", "wi-fi", "wireless", "usb", "rechargeable", "battery",
                   "battery-powered", "app", "touchscreen", "touch screen", "sensor", "gadget",
                   "device", "electronic", "digital", "technology", "high-tech", "smart glass",
                   "smart home", "smart device", "smart technology", "smart features", "speaker",
                   "charger", "headphones"),
    # Other products named in passing ("curl up on the sofa", "muddy boots") are no claim;
    # being worn is, and "is a T-shirt" is caught as what the product is said to be.
    "clothing": ("wear", "wearing", "worn", "wearable", "garment"),
    "beauty": ("skincare", "skin care", "moisturiser", "moisturizer", "moisturising", "lotion",
               "serum", "shampoo", "perfume", "fragrance", "fragranced", "scented", "scent",
               "aroma", "aromatherapy", "essential oil"),
    "making": ("handmade", "hand-made", "handcrafted", "hand-crafted", "hand-painted",
               "hand painted", "artisan", "artisanal", "hand-stitched"),
    "eco": ("organic", "eco-friendly", "recycled", "recyclable", "sustainable", "biodegradable",
            "compostable", "vegan", "fair trade", "fairtrade"),
    # What the shop is said to be ("our bakery", "Sweet Treats Bakery"): a small model casts a
    # gift shop as whatever its products suggest.
    "business": ("bakery", "bakeries", "patisserie", "cafe", "café", "coffee shop", "tea room",
                 "tearoom", "tea shop", "restaurant", "bistro", "delicatessen", "deli", "florist",
                 "boutique", "salon", "confectioner", "confectionery", "sweet shop", "candy store",
                 "chocolatier", "butcher", "grocer", "grocery"),
    # Food the product is not: a strawberry-print box is not "made of strawberries" (the
    # product's own words, e.g. "strawberry" in its name, license them).
    "food": ("strawberry", "strawberries", "raspberry", "raspberries", "blueberry",
             "blueberries", "chocolate", "chocolates", "vanilla", "caramel", "fudge", "toffee",
             "tasty", "yummy", "edible", "flavour", "flavor", "freshly baked", "fresh-baked",
             "bake fresh", "baked fresh"),
    "care": ("dishwasher safe", "dishwasher-safe", "microwave safe", "microwave-safe",
             "oven safe", "machine washable", "waterproof", "water-resistant", "shatterproof",
             "unbreakable"),
}  # fmt: skip
# Words in a brief that make a family's words fair: an oven glove is worn, a candle is scented.
LICENCES: dict[str, tuple[str, ...]] = {
    "textile": ("felt", "apron", "tote", "cushion", "blanket", "towel", "tea towel", "bunting",
                "feltcraft"),
    "electronic": ("led", "electric", "batteries", "lights", "light"),
    "clothing": ("apron", "costume", "bib", "hand warmer", "warmer", "umbrella", "t-shirt",
                 "shirt", "jumper", "scarf", "hat", "glove", "gloves", "slippers", "socks",
                 "bag", "necklace", "bracelet", "brooch", "earrings", "jewellery"),
    "beauty": ("candle", "soap", "incense", "diffuser", "bath", "oil", "lavender", "rose"),
    "metal": ("tins", "cake tin", "lantern"),
    "paper": ("napkin", "card", "cards", "wrap", "wrapping", "notebook", "bag", "cases",
              "chain kit", "bunting", "stickers", "tissue", "envelope", "journal", "book"),
    "eco": ("recycling",),
    "glass": ("tumbler", "bottle", "bottles"),
    "wood": ("wooden",),
    "food": ("sweets", "sweetie", "candy", "cupcake", "cupcakes", "jam", "fruit"),
}  # fmt: skip

# What a product is said to be: "<it> is a/an/the [up to four words] NOUN" or "this/these
# [words] NOUN". The noun must be the brief's own, or one that says what part a product plays
# (a gift, a treat, the centrepiece) rather than what it is (a kettle, a T-shirt).
IDENTITY = re.compile(
    r"(?:\b(?:is|are|'s)\s+(?:a|an|the|your|our|one|some)|(?<![\w'])(?:this|these))\s+"
    r"((?:[\w'-]+\s+){0,4}?[\w'-]+?)(?=\s+(?:that|which|who|with|for|to|you|and|from|in|on|of|by"
    r"|at|it|we|so|like|just|only|here|now|today|made|packed|filled|designed|built|ready|is|are"
    r"|will|can|makes?|brings?|keeps?|adds?|looks?|gives?)\b|\s*[,.!?:;]|\s*$)",
    re.I,
)
ROLES = set(
    "gift gifts present presents treat treats way ways choice addition must-have must essential "
    "essentials favourite favorite favourites classic classics companion centrepiece centerpiece "
    "piece pieces home touch delight beauty staple hit bestseller best-seller keeper star idea "
    "ideas solution option accessory design designs find finds pick picks buy thing things one "
    "ones item items product products friend helper partner place spot splash reminder "
    "celebration statement hero answer match little size range collection style look "
    "colour color pattern shade treasure surprise moment moments time day days week weekend "
    "month year season morning mornings evening evenings night nights afternoon occasion "
    "activity project kit fun joy lot bit everything something anything winner must-haves "
    "upgrade idea essentials set pack perfect ideal email e-mail newsletter message offer code "
    "sale".split()
)  # fmt: skip
# "a set of …", "a pair of …": the product is what comes after "of".
CONTAINERS = {"set", "pack", "pair", "box", "bundle", "collection", "range", "kit", "bag"}
OF_PHRASE = re.compile(
    r"\s+of\s+((?:[\w'-]+\s+){0,3}?[\w'-]+?)"
    r"(?=\s+(?:that|which|with|for|to|and|from|in|on|by|you)\b|\s*[,.!?:;]|\s*$)",
    re.I,
)
# Words of a noun phrase that are not its head: "the perfect one for you" ends on "one".
NOT_HEAD = {"perfect", "ideal", "best", "new", "little", "lovely", "very", "most", "more"}

# "made of/from/with X": X must be the brief's own word (a material it names) or one that says
# nothing about what the product is made of ("made with love").
MADE_OF = re.compile(
    r"\bmade (?:entirely |mostly |only )?(?:of|from|with|out of)\s+"
    r"((?:[\w'-]+\s+){0,3}?[\w'-]+?)(?=\s+(?:and|or|for|to|that|which|so|in|on|by|you|it|we)\b"
    r"|\s*[,.!?:;]|\s*$)",
    re.I,
)
MADE_OK = set(
    "love care pride attention quality materials material detail details you passion heart "
    "thought precision skill hands".split()
)  # fmt: skip

# A greeting that names the reader or the shop: only the brief's own words (its brand, its
# audience) may; "Dear Sweet Treats customers" invents a shop. Words that name no one are fine.
SALUTATION = re.compile(
    r"(?:^|(?<=[.!?]\s)|\n)\s*(?:dear|hi|hello|hey|greetings|welcome)\b,?\s*(?:to\s+)?"
    r"([^,.!?:;\n]{1,60})",
    re.I,
)
GREETED = set(
    "customer customers friend friends shopper shoppers valued all everyone there lovers lover "
    "fans fan team members member subscribers subscriber readers reader folks you our the and "
    "of to dear loyal lovely wonderful new old home back again family families".split()
)  # fmt: skip

# Seasons and occasions. An occasion implies its season (Christmas copy may say winter), never
# the other way round (a winter brief in January is not a Christmas one).
SEASONS: dict[str, tuple[str, ...]] = {
    "christmas": ("christmas", "xmas", "festive", "santa", "yuletide", "yule", "advent",
                  "stocking filler", "stocking stuffer", "mistletoe", "reindeer",
                  "holiday season", "christmassy", "noel"),
    "new year": ("new year", "new year's", "hogmanay"),
    "valentine": ("valentine", "valentine's", "valentines"),
    "easter": ("easter",),
    "mother's day": ("mother's day", "mothers day", "mothers' day", "mothering sunday"),
    "father's day": ("father's day", "fathers day"),
    "halloween": ("halloween", "spooky", "trick or treat"),
    "winter": ("winter", "wintry", "wintertime", "snowy", "snowfall", "frosty", "chilly"),
    "spring": ("spring", "springtime", "spring-time"),
    "summer": ("summer", "summery", "summertime", "sunshine", "sunny", "beach", "barbecue",
               "bbq", "heatwave", "sun-soaked", "poolside"),
    "autumn": ("autumn", "autumnal", "harvest"),
}  # fmt: skip
OCCASION_SEASON = {"christmas": "winter", "new year": "winter", "valentine": "winter",
                   "easter": "spring", "mother's day": "spring", "father's day": "summer",
                   "halloween": "autumn"}  # fmt: skip
# Northern hemisphere retail calendar: what a mail sent in that month may talk about.
MONTH_SEASONS = {
    1: {"winter", "new year"}, 2: {"winter", "valentine"},
    3: {"spring", "mother's day", "easter"}, 4: {"spring", "easter"}, 5: {"spring", "summer"},
    6: {"summer", "father's day"}, 7: {"summer"}, 8: {"summer"}, 9: {"autumn", "summer"},
    10: {"autumn", "halloween"}, 11: {"autumn", "winter", "christmas"},
    12: {"winter", "christmas", "new year"},
}  # fmt: skip

# What a transactional mail says about an order, never a promotional one.
ORDER_TALK = re.compile(
    r"\byour (?:recent |latest |last |new )?(?:order|purchase|parcel|package|delivery|shipment"
    r"|refund|return|item|items)s?\s+(?:will|has|have|had|is|are|was|were|should|shall|can|may"
    r")\b(?:\s+(?:now|soon|already|just|shortly|be|been|being|also))*\s+(?:delivered|shipped|"
    r"dispatched|sent|arriv\w*|processed|confirmed|received|on its way|on the way|packed|ready|"
    r"refunded|returned|with you|out for delivery|in transit|tracked|scheduled|deliver\w*|ship\w*)"
    r"|\b(?:thank(?:s| you) for (?:your |the )?(?:recent )?(?:order|purchase)"
    r"|we(?:'ve| have)? (?:received|processed|shipped|dispatched) your"
    r"|(?:order|tracking|parcel) (?:number|reference|status|confirmation)"
    r"|track (?:your|the) (?:order|parcel|package|delivery|shipment)"
    r"|(?:estimated|expected) (?:delivery|arrival)|out for delivery|has been (?:shipped|"
    r"dispatched|delivered)|will be (?:delivered|shipped|dispatched)"
    r"|(?:delivered|shipped|dispatched|arrive) (?:shortly|soon|within|in \w+ (?:working )?days)"
    r"|on its way to you)\b",
    re.I,
)

# A subject or preheader that stops on one of these was cut, not finished ("… a special item
# that has" passed before the verbs and relatives joined).
DANGLING = set(
    "a an the and or but nor with without of for to at by from into onto as than your our my "
    "their his her its will every each very that which who whose whom has have had is are was "
    "were be been being can could would should shall may might must does did also".split()
)
# A template's blank the model filled with its own ("Dear [Customer Name]"): our copy has no
# square-bracket fields, and a reader would see the brackets.
PLACEHOLDER = re.compile(r"\[[^\]\n]{1,40}\]")
# The brand speaks as "we"; a small model slips into a chatbot's or a salesperson's "I" ("I'm
# sorry for any confusion", "Hello, I'm your marketing specialist").
VOICE = re.compile(
    r"\b(?:i'm|i am|i'll|i will|i've|i have|i can|i would|i'd|my name is|as an ai|"
    r"(?:your|a) (?:marketing|sales|bakery|shopping) (?:specialist|assistant|consultant|expert)|"
    r"please answer my question|sorry for (?:any|the) confusion)\b"
)
ENTITY = re.compile(r"&(?:[a-z][a-z0-9]{1,31}|#\d{1,7}|#x[0-9a-f]{1,6});", re.I)

# Set on the tuning half of bench/data/copy_sentences.jsonl (bench/copy_checks.py): a sentence
# whose best cosine to any of the brief's facts is below this says something the brief does not.
SUPPORT_FLOOR = 0.15
# Sentences this short ("Shop now.", "Treat yourself!") claim nothing worth checking.
SUPPORT_MIN_WORDS = 5


def _pattern(words) -> re.Pattern:
    alternatives = sorted({re.escape(w) for w in words}, key=len, reverse=True)
    return re.compile(rf"(?<![\w-])(?:{'|'.join(alternatives)})(?:e?s)?(?![\w-])", re.I)


FAMILY_PATTERNS = {name: _pattern(words) for name, words in FAMILIES.items()}
LICENCE_PATTERNS = {name: _pattern(FAMILIES[name] + LICENCES.get(name, ())) for name in FAMILIES}
SEASON_PATTERNS = {name: _pattern(words) for name, words in SEASONS.items()}
SEASON_WORDS = {w for words in SEASONS.values() for w in words}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE.split(text or "") if s.strip()]


def seasons_in(text: str) -> set[str]:
    return {name for name, pattern in SEASON_PATTERNS.items() if pattern.search(text)}


@dataclass
class Grounds:
    """What a brief's facts allow: its words, category families and seasons, and the fact
    lines sentences are compared with. `encoder` is any object with encode(list[str]) ->
    unit-length rows (embeddings.Encoder); None loads the packaged MiniLM when first needed."""

    text: str  # normalised facts: goal, audience, offer, product names and descriptions
    facts: list[str]  # one fact a line, as the brief gave it
    month: int | None = None
    encoder: object = None
    families: set[str] = field(init=False)
    seasons: set[str] = field(init=False)
    named_seasons: set[str] = field(init=False)
    words: set[str] = field(init=False)
    _vectors: object = field(init=False, default=None)
    _cache: dict = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.words = {w.strip("'’-") for w in WORD.findall(self.text)}
        self.families = {n for n, p in LICENCE_PATTERNS.items() if p.search(self.text)}
        self.named_seasons = seasons_in(self.text)
        seasons = set(self.named_seasons) or set(MONTH_SEASONS.get(self.month or 0, ()))
        self.seasons = seasons | {OCCASION_SEASON[s] for s in seasons if s in OCCASION_SEASON}

    def support(self, texts: list[str]) -> list[float]:
        """Each text's highest cosine to any fact line."""
        # numpy: only the support check needs it, and only where copy is written
        import numpy as np

        if self.encoder is None:
            # numpy and torch: the embedding model loads on the first check that needs it
            from marketing_ai.ml.language.embeddings import encoder

            self.encoder = encoder()
        if self._vectors is None:
            self._vectors = np.stack(embed(self.encoder, self.facts))
        new = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if new:
            for text, row in zip(new, embed(self.encoder, new), strict=True):
                self._cache[text] = float(np.max(self._vectors @ row))
        return [self._cache[t] for t in texts]


# Sentence embeddings shared by every brief in the process: the same facts and stock phrases
# come back brief after brief, and a CPU encodes one sentence alone at a tenth of batch speed.
_EMBEDDED: OrderedDict = OrderedDict()
EMBEDDED_LIMIT = 20_000
_EMBEDDING = threading.Lock()  # a threaded web server may check two variants at once


def embed(encoder, texts: list[str]) -> list:
    """One unit-length vector per text, encoding in one batch only those not seen before."""
    key = id(encoder)
    with _EMBEDDING:
        new = list(dict.fromkeys(t for t in texts if (key, t) not in _EMBEDDED))
        if new:
            for text, row in zip(new, encoder.encode(new), strict=True):
                _EMBEDDED[(key, text)] = row
        found = {t: _EMBEDDED[(key, t)] for t in texts}
        for text in found:
            _EMBEDDED.move_to_end((key, text))
        while len(_EMBEDDED) > EMBEDDED_LIMIT:
            _EMBEDDED.popitem(last=False)
    return [found[t] for t in texts]


def checked_sentences(text: str, skip: list[str] = ()) -> list[str]:
    """The sentences of a body or SMS the support check compares with the brief: the brand's
    required lines (`skip`) left out, and sentences too short to claim anything."""
    for phrase in skip:
        text = text.replace(phrase, "\n")
    return [s for s in sentences(text) if len(WORD.findall(s)) >= SUPPORT_MIN_WORDS]


def category(text: str, grounds: Grounds) -> list[tuple[str, str]]:
    """Category, material and product-type words the product does not have."""
    out = []
    for name, pattern in FAMILY_PATTERNS.items():
        if name in grounds.families:
            continue
        out += [("category", f"{m.group()!r} ({name})") for m in pattern.finditer(text)]
    for match in IDENTITY.finditer(text):
        words = [w.lower().strip("'’-") for w in WORD.findall(match.group(1))]
        words = [w for w in words if w not in NOT_HEAD] or words
        head = words[-1] if words else ""
        of = OF_PHRASE.match(text, match.end()) if head in CONTAINERS else None
        if of:
            words = [w.lower().strip("'’-") for w in WORD.findall(of.group(1))] or words
            head = words[-1]
        if head and head not in ROLES and head not in SEASON_WORDS and not _has_word(grounds, head):
            out.append(("category", f"{match.group().strip()!r} (not what the product is)"))
    return list(dict.fromkeys(out))


def made_of(text: str, grounds: Grounds) -> list[tuple[str, str]]:
    """ "made of/from/with X" where X is no word of the brief's ("made of strawberries" for a
    cake stand); `text` normalised."""
    out = []
    for match in MADE_OF.finditer(text):
        words = [w.lower().strip("'’-") for w in WORD.findall(match.group(1))]
        head = words[-1] if words else ""
        # A material of a family the brief has is fair ("porcelain" for "bone china").
        licensed = any(FAMILY_PATTERNS[n].fullmatch(head) for n in grounds.families)
        if head and head not in MADE_OK and not licensed and not _has_word(grounds, head):
            out.append(("category", f"{match.group().strip()!r} (not what the product is made of)"))
    return out


def salutation(raw: str, grounds: Grounds) -> list[tuple[str, str]]:
    """A greeting ("Dear …", "Welcome to …") naming a person or shop the brief does not."""
    out = []
    for match in SALUTATION.finditer(raw):
        words = WORD.findall(match.group(1))
        named = [
            w
            for w in words
            if w[:1].isupper()
            and (key := w.lower().replace("’", "'").strip("'-")) not in GREETED
            and key not in grounds.words
            and key.removesuffix("'s") not in grounds.words
        ]
        if named:
            out.append(("salutation", f"{match.group().strip()!r} names {' '.join(named)!r}"))
    return out


def _has_word(grounds: Grounds, noun: str) -> bool:
    stem = noun[:-1] if noun.endswith("s") else noun
    return any(
        w in (noun, stem, noun + "s", noun + "es") or w.endswith(stem) or stem in w.split("-")
        for w in grounds.words
    )


def season(text: str, grounds: Grounds) -> list[tuple[str, str]]:
    """Seasons and occasions the brief (its text, products, or send month) does not have."""
    out = []
    for name in sorted(seasons_in(text) - grounds.seasons):
        if grounds.seasons:
            given = ", ".join(sorted(grounds.named_seasons or grounds.seasons))
            detail = f"{name} in a brief for {given}"
        else:
            detail = f"{name}, and the brief names no season or occasion"
        out.append(("season", detail))
    return out


def order_talk(text: str) -> list[tuple[str, str]]:
    return [("order_talk", m.group().strip()) for m in ORDER_TALK.finditer(text)]


def truncated(raw: str, grounds: Grounds) -> list[tuple[str, str]]:
    """A subject or preheader that stops mid-phrase: on a dangling word ("… with the"), a comma
    or dash, an ellipsis, or a word cut short (one neither English nor the brief has)."""
    # wordfreq: its word lists load on first use, not when the checks are imported
    from wordfreq import zipf_frequency

    text = raw.strip()
    if not text:
        return []
    if text.endswith(("...", "…", ",", ";", ":", "-", "–", "—", "&", "+", "/", "(")):
        return [("truncated", f"ends on {text[-3:]!r}")]
    if text[-1] in ".!?\"'”’)":
        return []
    last = text.split()[-1].lower().strip("'’-")
    if not WORD.fullmatch(last):
        return []  # a number or code ("Pack of 72", "code TEA15") ends it whole
    if last in DANGLING:
        return [("truncated", f"ends on {last!r}")]
    if last not in grounds.words and len(last) > 2 and zipf_frequency(last, "en") < 2.0:
        return [("truncated", f"ends on {last!r}, a word cut short")]
    return []


OFFER_CODE = re.compile(r"\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9-]{4,}\b")
OFFER_PERCENT = re.compile(r"\d+(?:\.\d+)?\s*(?:%|percent\b|per cent\b)", re.I)
OFFER_FREE = re.compile(
    r"\bfree(?:\s+(?!with\b|on\b|for\b|this\b|until\b|when\b|over\b|to\b)[a-z][\w-]*){1,2}",
    re.I,
)
OFFER_PHRASES = ("half price", "half-price", "buy one get one", "two for one", "2 for 1")


def offer_terms(offer: str) -> list[str]:
    """What a mail must say for the brief's offer to be in it, any one of them: its percentage,
    its code, its "free …" or a named deal; failing those, the offer as written."""
    terms = OFFER_PERCENT.findall(offer) + OFFER_CODE.findall(offer)
    terms += [m.group() for m in OFFER_FREE.finditer(offer)]
    terms += [p for p in OFFER_PHRASES if p in offer.lower()]
    if not terms and offer.strip():
        terms = [offer.strip().rstrip(".!")]
    return [re.sub(r"\s+", " ", t.lower().replace("percent", "%").replace("per cent", "%"))
            .replace(" %", "%") for t in terms]  # fmt: skip


def offer_missing(text: str, terms: list[str]) -> list[tuple[str, str]]:
    """`text` normalised; percentages compare with and without the space ("10 %")."""
    if not terms:
        return []
    flat = re.sub(r"\s+%|\s*(?:percent|per cent)\b", "%", text)
    if any(term in flat for term in terms):
        return []
    return [("offer", f"none of {', '.join(repr(t) for t in terms)}")]


def placeholders(raw: str) -> list[tuple[str, str]]:
    return [("placeholders", m.group()) for m in PLACEHOLDER.finditer(raw)]


def voice(text: str) -> list[tuple[str, str]]:
    """`text` normalised (lower case, plain apostrophes)."""
    return [("voice", m.group()) for m in VOICE.finditer(text)]


def entities(raw: str) -> list[tuple[str, str]]:
    return [("entities", m.group()) for m in ENTITY.finditer(raw)]


def unsupported(
    text: str, grounds: Grounds, skip: list[str] = (), floor: float | None = None
) -> list[tuple[str, str]]:
    """Sentences whose best similarity to the brief's facts is below `floor`. `skip`: phrases
    not written by the model (the brand's required lines), left out of the check."""
    floor = SUPPORT_FLOOR if floor is None else floor
    found = checked_sentences(text, skip)
    if not found:
        return []
    scores = grounds.support(found)
    return [
        ("unsupported", f"{s!r} (similarity {score:.2f} to the brief, floor {floor:.2f})")
        for s, score in zip(found, scores, strict=True)
        if score < floor
    ]
