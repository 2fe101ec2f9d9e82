"""The chat's screen: refuses prompt injection and off-topic work before anything is retrieved.

Patterns, not a model, so it is cheap and predictable, and it is only the first line: whatever
passes it, the language model is only ever given help passages (order answers are written from
the identified customer's own orders, without the model), so a message that slips through can
make the model say odd things, not reach anybody's data. Measured on attempts its author did not
write in bench/chat_injection.py.

A message is read in several forms, so that the same patterns see through simple disguises:
lower case with accents, zero-width characters and look-alike letters removed; digits inside
words read as letters ("1gn0re" -> "ignore"); letters spelt out one by one ("i g n o r e",
"d.i.s.r.e.g.a.r.d") joined; base64 runs decoded. Patterns cover asking to drop the instructions,
asking for them, new personas and "modes", fake conversation markup, claims of authority,
other people's data, encodings used to smuggle text past the screen, and the same in Spanish,
Portuguese, German, French, Italian and Dutch. A few patterns hold only when the sentence is not
about the writer's own things ("my customer data", "all my orders").
"""

import base64
import binascii
import re
import unicodedata

# --- reading the message in several forms ----------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"))
# Cyrillic and Greek letters that look like Latin ones ("іgnоre" with Cyrillic і and о).
_LOOKALIKE = str.maketrans("аеорсуххіјѕԁɡοαρτνκ", "aeopcyxxijsdgoaptvk")
_LEET = str.maketrans("013457@$!|", "oieastasil")
_MIXED = re.compile(r"\b(?=[a-z0-9@$!|]*[a-z])(?=[a-z0-9@$!|]*[0-9@$!|])[a-z0-9@$!|]{3,}\b")
_SPELT = re.compile(r"(?<![a-z])(?:[a-z][\s.\-_*/\\|+]{1,3}){3,}[a-z](?![a-z])")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")


def _plain(message: str) -> str:
    text = unicodedata.normalize("NFKC", message).translate(_INVISIBLE).lower()
    text = text.translate(_LOOKALIKE)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.replace("\u2019", "'").replace("\u2018", "'")


def _decoded(message: str) -> list[str]:
    out = []
    for run in _BASE64.findall(message):
        try:
            raw = base64.b64decode(run + "=" * (-len(run) % 4), validate=True)
            text = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if text and sum(c.isprintable() for c in text) / len(text) > 0.9:
            out.append(_plain(text))
    return out


def forms(message: str) -> tuple[list[str], bool]:
    """The forms of `message` the patterns read, and whether it was disguised at all."""
    plain = _plain(message)
    found = [plain]
    unleet = _MIXED.sub(lambda m: m.group(0).translate(_LEET), plain)
    spelt = _SPELT.sub(lambda m: re.sub(r"[^a-z]", "", m.group(0)), unleet)
    for form in (unleet, spelt):
        if form not in found:
            found.append(form)
    decoded = _decoded(message)
    return found + decoded, len(found) > 1 or bool(decoded)


# --- patterns ---------------------------------------------------------------------------------

_NOT = r"[^.!?\n]"  # within one sentence
_RULES = (
    r"(?:instructions?|rules|guidelines?|guidance|directives?|prompts?|programming|"
    r"restrictions?|guardrails?|constraints?|(?:content|safety|usage) (?:polic(?:y|ies)|"
    r"filters?|rules|checks?)|system (?:message|prompt)|configuration|training|"
    r"what (?:you were|you've been|you have been|they) (?:told|given)|what they told you|"
    r"(?:everything|anything|all) (?:above|before|prior|earlier|you were told|you've been "
    r"told))"
)
_DROP = (
    r"(?:ignore|ignoring|disregard|forget|override|overrule|bypass|circumvent|set aside|"
    r"put aside|pay no attention to|stop following|don'?t follow|do not follow|no longer "
    r"follow|throw out|throw away|discard|abandon)"
)
_YOUR_SETUP = (
    r"(?:your|its|the (?:bot|assistant|ai|model)'?s?) (?:(?:exact|full|original|"
    r"initial|hidden|secret|confidential|internal|complete|entire|whole|current|"
    r"own|system) ){0,2}(?:instructions|prompt|directives|programming|configuration|"
    r"config|set-?up text|system message|initial message|context|training data|rules|"
    r"guidelines)\b(?! (?:for|on|about|to|of) (?!me\b|us\b))"
)
_HIDDEN = (
    r"(?:system|hidden|secret|confidential|internal|initial|original|operating|"
    r"underlying|pre-?) (?:prompt|instructions|rules|guidelines|directives|configuration)"
    r"|system message|context window|pre-?prompt"
)
_PEOPLE = (
    r"(?:customers?|users?|people|persons?|shoppers?|buyers?|clients?|members?|"
    r"subscribers?|visitors?|accounts?)"
)
_DATA = (
    r"(?:names?|e-?mails?|e-?mail addresses|(?:home |postal )?address(?:es)?|phone"
    r"(?: numbers?)?|orders?|order histor(?:y|ies)|purchases?|details|data|information|info|"
    r"records?|card numbers?|passwords?|conversations?|chats?)"
)

INJECTION = [
    # Dropping the instructions.
    rf"\b{_DROP}\b{_NOT}{{0,40}}\b{_RULES}",
    r"\b(?:previous|prior|earlier|above|old|original|initial|existing|current) (?:instructions|"
    rf"rules|guidelines|guidance|directives|prompt|programming|restrictions)\b{_NOT}{{0,40}}"
    r"\b(?:void|cancel+ed|revoked|obsolete|no longer (?:apply|valid|in force)|replaced|"
    r"superseded|expired|lifted|suspended|(?:just )?a test|(?:don'?t|do not) apply)",
    r"\bnew (?:instructions?|directives?|rules?|task|role|persona|policy|orders)\s*[:\-\u2013]",
    r"\b(?:your|the) (?:new|real|actual|true) (?:task|role|instructions?|directives?|persona|"
    r"purpose|job|identity|orders) (?:is|are|replaces?|will)\b",
    r"\bnew (?:rule|instructions?|directive|policy|orders?) (?:from|by) (?:management|the "
    r"(?:admin|administrator|owner|developers?|boss|company)|your (?:boss|owner|developers?|"
    r"creators?|admin))",
    # Asking for the instructions.
    r"\b(?:print|show|reveal|repeat|output|display|dump|write out|type out|spell out|tell me|"
    r"quote|share|give me|paste|list|summari[sz]e|recite|expose|disclose|read out|what (?:are|"
    rf"were|is|was)|send me|copy)\b{_NOT}{{0,40}}\b(?:{_YOUR_SETUP}|{_HIDDEN})",
    r"\b(?:system|hidden|secret|confidential|initial|original|underlying|pre-?) (?:prompt|"
    r"instructions|directives|configuration)\b|\b(?:hidden|secret|confidential|internal|"
    r"operating) (?:rules|guidelines)\b|\bsystem (?:prompt|message)\b|\bcontext window\b|"
    r"\bpre-?prompt\b",
    r"\b(?:instructions|rules|guidelines|prompt|directives|text) (?:that )?you (?:were|have "
    r"been|'ve been|got|received|are given|operate under|follow)\b",
    r"\bwere you (?:told|instructed|programmed|configured|set up) to\b",
    r"\bhow (?:were|are) you (?:configured|programmed|set up|instructed|prompted)\b",
    r"\b(?:everything|anything|all|the text|what(?:ever)?) (?:that )?(?:came|comes|was written|"
    r"is written|appears|was said|you (?:saw|received|got)) (?:before|above|prior to|ahead of)",
    r"\b(?:the )?(?:text|words|lines|message|everything|anything) (?:written |shown |that "
    r"(?:is|was|came) )?(?:above|before) (?:this|my|the first|our)\b",
    r"\b(?:first|last) \d+ (?:words|lines|tokens|characters) of (?:your|the) (?:context|"
    r"prompt|instructions|conversation|input)",
    rf"\b(?:told|given|instructions|prompt|rules|configured|setup|them)\b{_NOT}{{0,60}}"
    r"\b(?:verbatim|word for word|word-for-word)",
    rf"\b(?:verbatim|word for word|word-for-word)\b{_NOT}{{0,60}}\b(?:told|given|instructions|"
    r"prompt|rules)",
    # New personas, games and "modes".
    r"\byou are now\b|\byou'?re (?:now|no longer)\b|\bfrom now on,? (?:you|act|answer|respond|"
    r"behave|pretend|reply)|\bfrom this (?:point|moment) on\b|\bact as (?:if|an?|the|my)\b",
    r"\bpretend (?:to be|you|that you|you're|to have)\b|\bplay (?:a|the) (?:role|part|game)\b|"
    r"\blet'?s (?:play|do) (?:a |an )?(?:game|exercise|role|roleplay|pretend)|\brole-?play|"
    r"\bstay in character\b|\bstop being (?:a|an|the)\b|\bno longer (?:a|an|the) "
    r"\w+ (?:bot|assistant|helper)|\bas if you (?:were|are|had)\b",
    r"\bimagine (?:you|that you) (?:are|were|had|have|could) (?:no|an?|the|without)\b",
    r"\bjailbreak|\bdan\b|do anything now|(?:developer|maintenance|god|debug|admin|sudo|"
    r"unrestricted|unfiltered|evil) mode|\bsudo\b|admin(?:istrator)? (?:access|override|"
    r"password)|\b(?:admin|administrator|developer|root|system) (?:override|command)",
    r"\bunrestricted|\bunfiltered|\buncensored|\bwithout (?:any )?(?:restrictions|limits|"
    r"limitations|rules|filters?|censorship|guidelines)|\bno (?:restrictions|limits|"
    r"limitations|rules|filters|guidelines|boundaries)\b",
    r"\b(?:safety|content) (?:checks?|filters?|rules|settings|features?|guardrails?) (?:are |is "
    r")?(?:off|disabled|switched off|turned off)|\b(?:switch|turn) off (?:the |your )?"
    r"(?:safety|filters?|checks?|guardrails?)",
    r"\b(?:story|fiction|fictional|novel|script|screenplay|poem|tale)\b[^\n]{0,80}\b(?:chatbot|"
    r"assistant|ai|bot|model)\b[^\n]{0,60}\b(?:rules|instructions|prompt|secret|reveal|reads? "
    r"out)",
    # Fake conversation markup.
    r"^\s*#{1,6}\s*(?:system|instructions?|admin|developer)\b|(?:^|\n)\s*(?:system|assistant|"
    r"developer|admin)\s*:|<\/?\s*(?:system|assistant|user|instructions?|im_start|im_end|"
    r"context|help_passages|passages?|prompt)\b|\[\/?(?:inst|system|sys)\]|<<\/?sys>>|"
    r"<\|[a-z_]+\|>|<!--[^>]*\b(?:admin|override|system|print|ignore|reveal)",
    # Claims of authority.
    r"\b(?:i am|i'm|im|this is|as) (?:the |an |your |a )?(?:site |system |shop |store |"
    r"database |lead )?(?:admin|administrator|developer|engineer|moderator|operator|creator|"
    rf"programmer)s?\b{_NOT}{{0,80}}\b(?:authori[sz]e|permission to|grant|override|enter|"
    r"switch|debug|dump|reveal|unlock|disable)",
    r"\b(?:i am|i'm|im) (?:from|with|on|part of) (?:your|the) (?:engineering|dev|development|it|"
    r"security|tech|technical|admin|data|ai|ml|support) team\b",
    # Other people's data (the writer's own is theirs to ask for).
    rf"\b(?:other|another|different) {_PEOPLE}'?s?\b{_NOT}{{0,40}}\b(?:{_DATA}|bought|ordered|"
    r"purchased|paid|placed|spent|live|lives|asked|ask you|told you|said to you|wrote)\b",
    rf"\b(?:someone|somebody|anyone|anybody) else'?s\b|\b{_DATA} (?:of|for|from) (?:someone|"
    r"somebody|anyone|anybody) else\b|\bwho else (?:has |have |had )?(?:bought|ordered|"
    r"purchased|lives?|placed|uses?|signed up|paid)",
    r"(?:all|every) (?:customers?|users?)'?s? (?:orders?|address|e-?mails?|details|data|names)",
    rf"\b{_DATA} (?:of|belonging to|linked to|associated with|attached to|tied to) "
    rf"(?:all |every |any |the |a |that |this |each |another |other |some )?(?:of )?(?:your "
    rf"|the |other )?{_PEOPLE}\b",
    r"\bwhich (?:customers|people|users|shoppers|buyers|clients|accounts) (?:have |had |has )?"
    r"(?:bought|ordered|purchased|paid|placed|live|signed up|spent|returned)",
    r"\baddress(?:es)? (?:linked|attached|tied|associated|belonging|connected) to (?:order|"
    r"account|customer)",
    r"\bselect \* from\b|\bselect\s+[\w.]+(?:\s*,\s*[\w.]+)+\s+from\b|\bunion select\b|"
    r"\b(?:database|db) (?:terminal|shell|console|query|dump)|\brun (?:this |the following )?"
    r"(?:query|sql)\b",
    r"\b(?:database|sql|api key|admin password|credentials|secret key)\b",
    r"\b(?:customer|user|account) (?:#|number |id )?\d+",
    r"(?:e-?mail|address|phone|name)(?: number)? of (?:the )?(?:person|people|customer|buyer|user)",
    r"(?:orders?|address|e-?mail|phone)(?: number| details)? (?:of|belonging to) "
    r"(?:customer|user|mr|mrs|ms|miss|dr)\b",
    r"\b(?:summari[sz]e|read|show|list|print|dump|export)\b[^\n]{0,40}\b(?:all |every )?"
    r"(?:the )?(?:conversations|chats|messages|transcripts)\b[^\n]{0,40}\b(?:you(?:'ve| have)? "
    r"had|today|with (?:other|others|people|everyone|customers))",
    # Abuse the shop's assistant is asked to do.
    r"\bphishing\b|\bmalware\b|\bransomware\b|\bkeylogger\b|\bhack(?:ing|er)?\b"
    rf"{_NOT}{{0,30}}\b(?:into|accounts?|bank|admin|panel|passwords?|site|server|database|"
    r"system)|\bbreak into\b|\btricks? (?:customers|people|users|them) into\b",
    # Encodings used to get text past the screen, or answers out unread.
    r"\b(?:base ?64|rot ?13|hex(?:adecimal)?|morse|caesar|cipher|encod(?:e|ed|ing)|"
    rf"decod(?:e|ed|ing))\b{_NOT}{{0,60}}\b(?:follow|obey|execute|do (?:what|as) it says|"
    r"instructions|run it|and do)",
    rf"\b(?:respond|answer|reply|write|output|print|give)\b{_NOT}{{0,50}}\b(?:in|with|using|as|"
    r"encoded in) (?:base ?64|rot ?13|hex|morse|binary|leetspeak|reverse)",
    rf"\btranslate\b{_NOT}{{0,120}}\b(?:and (?:then )?(?:follow|obey|do|execute|act on)|then "
    r"(?:follow|do|execute|obey))",
    # The same in other languages (accents removed before matching).
    r"\b(?:ignora|ignore|olvida|omite|descarta|saltate|salta|pasa de)\b"
    rf"{_NOT}{{0,40}}\b(?:instrucciones|reglas|indicaciones|normas|directrices|lo que te "
    r"(?:dijeron|han dicho|indicaron))|\b(?:prompt|mensaje) del sistema\b|\b(?:datos|"
    r"informacion|correos|direcciones) (?:de|del|de los) (?:otros |todos los )?(?:clientes|"
    r"usuarios)\b|\bactua como\b|\bfinge\b|\bhaz de cuenta\b|\bsin (?:filtros?|limites|"
    r"restricciones|reglas|censura)\b",
    rf"\b(?:ignore|ignora|esqueca|esquece|descarte|desconsidere)\b{_NOT}{{0,40}}\b(?:instrucoes|"
    r"regras|orientacoes)|\bprompt do sistema\b|\bdados (?:de|dos) (?:outros |todos os )?"
    r"(?:clientes|usuarios)|\bfinja\b|\baja como\b|\bsem (?:filtros?|limites|restricoes|regras)",
    rf"\b(?:ignorier\w*|vergiss|vergessen sie|missacht\w*|uberg\w*)\b{_NOT}{{0,40}}"
    r"\b(?:anweisungen|regeln|vorgaben|instruktionen|richtlinien|befehle)|\bsystem-?(?:prompt|"
    r"nachricht|anweisung\w*)\b|\b(?:urspr\w*|versteckt\w*|geheim\w*|vorherig\w*|bisherig\w*) "
    r"(?:anweisungen|regeln|prompt|vorgaben)|\bdaten (?:anderer|aller|von anderen) (?:kunden|"
    r"nutzer)|\bdu bist (?:jetzt|nun|ab sofort)\b|\btu so,? als\b|\bspiel\w* (?:die|eine) "
    r"rolle\b|\bohne (?:einschrankungen|regeln|grenzen|filter|zensur)\b",
    rf"\b(?:zeig|nenn|gib|wiederhol|verrat)\w*\b{_NOT}{{0,30}}\b(?:deine|ihre|die) \w*\s?"
    r"(?:anweisungen|regeln|prompt|konfiguration|vorgaben)",
    r"\b(?:ignore[zs]?|(?<!ai )oublie[zs]?|ne tiens? pas compte|ne tenez pas compte|fais "
    rf"abstraction|faites abstraction)\b{_NOT}{{0,40}}\b(?:consignes|instructions|regles|"
    r"directives|indications)|\b(?:message|prompt|invite) (?:du )?systeme\b|"
    r"\b(?:donnees|informations|adresses|e-?mails) (?:des|d'autres|de tous les|de nos) "
    r"(?:autres )?clients\b|\bliste des clients\b|\bfais comme si\b|"
    r"\bjoue[zs]? (?:le role|un role)\b|\btu es (?:maintenant|desormais)\b|"
    r"\bsans (?:limites|restrictions|regles|filtres?|censure)\b",
    rf"\b(?:ignora|ignorate|dimentica|dimenticate|trascura)\b{_NOT}{{0,40}}\b(?:istruzioni|"
    r"regole|indicazioni|direttive)|\b(?:prompt|messaggio) di sistema\b|\bdati (?:dei|degli|di "
    r"altri|di tutti i) (?:altri )?clienti\b|\bcomportati come\b|\bfingi\b|\bfai finta\b|"
    r"\bsenza (?:limiti|restrizioni|regole|filtri|censura)\b",
    rf"\b(?:negeer|vergeet)\b{_NOT}{{0,40}}\b(?:instructies|regels|richtlijnen|aanwijzingen)|"
    r"\bsysteem(?:instructies|prompt|bericht)\b|\bverborgen (?:instructies|prompt|regels)|"
    r"\bdoe alsof\b|\bje bent nu\b|\bzonder (?:beperkingen|regels|filters?|grenzen)\b",
]
# Patterns that hold only when the sentence is not about the writer's own things.
INJECTION_UNLESS_OWN = [
    r"\b(?:list|show|give|tell|send|summari[sz]e|export|dump|print) (?:me )?(?:all|every|each) "
    r"(?:\w+ ){0,3}?(?:orders?|customers?|users?|conversations?|chats?|e-?mails?|accounts?|"
    r"buyers?|records?|people|data|details|information|addresses|names|numbers)\b",
    r"\b(?:full |complete |whole )?(?:credit |debit |payment )?card (?:numbers?|details) "
    r"(?:stored|saved|on file|for|of|belonging)",
    r"\bpersonal (?:information|data|details|info)\b[^.!?\n]{0,30}\b(?:you have|you hold|you "
    r"store|access to|of (?:other|all|every|any)|about (?:other|someone|anyone))",
    r"\bkundendaten\b|\bklantgegevens\b|\bdonnees (?:des )?clients\b|"
    r"\bdatos de (?:los )?clientes\b",
]
_OWN = re.compile(
    r"\b(?:my|mine|our|ours|meine?[nrs]?|mijn|mes|mon|ma|mis|mi|meu|minha)\b|"
    r"\bi(?:'ve| have)? (?:placed|made|bought|ordered|purchased)\b"
)
# Run together, for messages spelt out letter by letter ("i g n o r e   a l l ...").
SQUASHED = ("ignoreallprevious", "ignoreprevious", "ignoreyour", "ignoretherules",
            "ignoretheabove", "ignoreallinstructions", "ignoreinstructions", "disregardyour",
            "disregardall", "disregardprevious", "disregardtherules", "disregardinstructions",
            "forgetyour", "forgetallprevious", "forgetprevious", "overrideyour", "bypassyour",
            "systemprompt", "hiddenprompt", "initialprompt", "originalprompt", "secretprompt",
            "yourprompt", "yourinstructions", "yourguidelines", "yourrules", "systemmessage",
            "developermode", "jailbreak", "doanythingnow", "revealyour", "showmeyour",
            "printyour")  # fmt: skip

OFF_TOPIC = [
    r"\b(?:write|compose) (?:me )?(?:a |an )?(?:poem|essay|story|song|code|program|script|letter)",
    r"\b(?:python|javascript|java|c\+\+|sql) (?:code|script|function)",
    r"\b(?:homework|translate this|solve this|math problem|capital of)\b",
]

_INJECTION = [re.compile(p) for p in INJECTION]
_UNLESS_OWN = [re.compile(p) for p in INJECTION_UNLESS_OWN]
_OFF_TOPIC = [re.compile(p) for p in OFF_TOPIC]
_SENTENCES = re.compile(r"[^.!?\n]+")


def _injection(text: str) -> bool:
    if any(p.search(text) for p in _INJECTION):
        return True
    for sentence in _SENTENCES.findall(text):
        if not _OWN.search(sentence) and any(p.search(sentence) for p in _UNLESS_OWN):
            return True
    return False


def screen(message: str) -> str:
    """'injection', 'off_topic' or '' for a customer's chat message."""
    texts, disguised = forms(message)
    if any(_injection(t) for t in texts):
        return "injection"
    if disguised:
        squashed = [re.sub(r"[^a-z]", "", t) for t in texts]
        if any(s in q for q in squashed for s in SQUASHED):
            return "injection"
    if any(p.search(t) for p in _OFF_TOPIC for t in texts):
        return "off_topic"
    return ""
