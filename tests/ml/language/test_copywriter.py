"""The copy writer's choice among candidates (relevance, likelihood, diversity, the checks), the
template drafts offered beside the model's, and prompts that ask for each field as what it is.
The sentence encoder is the packaged MiniLM; no language model is loaded here."""

import pytest

from marketing_ai.ml.language import copywriter, guardrails
from marketing_ai.ml.language.copywriter import Candidate, Draft, Ranker
from marketing_ai.ml.language.embeddings import encoder

RULES = guardrails.BrandRules()
STAND = copywriter.Product("REGENCY CAKESTAND 3 TIER", "Three-tier cake stand in bone china")


@pytest.fixture(scope="module")
def ranker():
    return Ranker(encoder())


def brief(**overrides) -> copywriter.Brief:
    fields = {"goal": "Get ready for Christmas gifting", "products": [STAND]}
    return copywriter.Brief(**{**fields, **overrides})


def candidate(text, failures=(), logprob=None) -> Candidate:
    return Candidate(text, list(failures), logprob, 1)


def test_the_candidate_about_the_product_is_chosen(ranker):
    pool = [
        candidate("An innovative smart glass for a more comfortable winter experience."),
        candidate("Our Regency Cakestand has three tiers of bone china for your cakes."),
        candidate("Your order will be delivered shortly after."),
    ]
    (chosen,) = ranker.choose(brief(), pool, 1)
    assert chosen.text.startswith("Our Regency Cakestand")


def test_a_passing_candidate_goes_before_a_more_relevant_failing_one(ranker):
    failure = guardrails.Failure("unsupported", "body", "glassblowing techniques")
    pool = [
        candidate("The Regency Cakestand 3 Tier, made with glassblowing techniques.", [failure]),
        candidate("A lovely stand for the table this Christmas, three tiers of china."),
    ]
    first, second = ranker.choose(brief(), pool, 2)
    assert not first.failures and second.failures == [failure]


def test_likelihood_breaks_a_tie_and_none_is_safe(ranker):
    text = "Our Regency Cakestand 3 Tier brings three tiers of bone china to the table."
    pool = [candidate(text, logprob=-3.0), candidate(text.replace("brings", "puts"), logprob=-0.4)]
    (chosen,) = ranker.choose(brief(), pool, 1)
    assert chosen.logprob == -0.4
    # A backend that cannot say (logprob None) is ranked on the rest.
    unknown = [candidate(c.text) for c in pool] + [candidate("Smart glass for winter.")]
    assert "Cakestand" in ranker.choose(brief(), unknown, 1)[0].text


def test_k_variants_differ_rather_than_repeat_one_line(ranker):
    same = "Our Regency Cakestand 3 Tier is here for Christmas."
    pool = [
        candidate(same),
        candidate(same.replace("here", "ready")),
        candidate("Three tiers of bone china: the Regency Cakestand for your Christmas table."),
    ]
    chosen = ranker.choose(brief(), pool, 2)
    assert {c.text for c in chosen} != {pool[0].text, pool[1].text}
    # A pool with fewer distinct candidates than K repeats them rather than inventing copy.
    assert len(ranker.choose(brief(), [candidate(same), candidate(same)], 3)) == 3


def draft(fields, failures=(), relevance=None) -> Draft:
    report = guardrails.Report(list(failures))
    scores = {} if relevance is None else {"relevance": relevance, "logprob": -1.0}
    return Draft(fields, report, 1, 0, {}, "model", scores)


def email(body) -> dict:
    return {"subject": "Three tiers for Christmas", "preheader": "A stand for cakes.", "body": body}


def test_a_template_is_offered_for_each_failing_draft(ranker):
    failure = guardrails.Failure("unsupported", "body", "glassblowing")
    drafts = [
        draft(email("Made with glassblowing techniques."), [failure], 0.9),
        draft(email("Smart glass for winter."), [failure], 0.9),
        draft(email("Our Regency Cakestand 3 Tier for your cakes."), [], 0.99),
    ]
    offered = copywriter.templates_beside(brief(), drafts, RULES, encoder=ranker.encoder)
    assert len(offered) == 2
    for template in offered:
        assert template.source == "template" and template.passed
        assert "Regency Cakestand 3 Tier" in template.fields["subject"]
        assert template.scores["relevance"] > 0.5 and template.scores["logprob"] is None


def test_a_template_is_offered_when_it_is_more_relevant_than_every_passing_draft(ranker):
    weak = [draft(email("A lovely thing for the table."), [])]
    (offered,) = copywriter.templates_beside(brief(), weak, RULES, encoder=ranker.encoder)
    assert offered.source == "template"
    strong = [draft(email("Our Regency Cakestand 3 Tier."), [], relevance=0.999)]
    assert copywriter.templates_beside(brief(), strong, RULES, encoder=ranker.encoder) == []


def test_sms_templates_are_offered_as_sms(ranker):
    sms = brief(channel="sms")
    failing = [Draft({"text": "x"}, guardrails.Report([guardrails.Failure("length", "text", "")]),
                     1, 0, {}, "model", {"relevance": 0.1})]  # fmt: skip
    (offered,) = copywriter.templates_beside(sms, failing, RULES, encoder=ranker.encoder)
    assert set(offered.fields) == {"text"} and len(offered.fields["text"]) <= 160


def test_subject_and_sms_are_asked_for_as_what_they_are():
    rules = guardrails.BrandRules()
    rules.max_length.update(text=140, preheader=90)
    subject = copywriter.prompt(brief(), "subject", rules)[-1]["content"]
    assert "subject line" in subject and "Regency Cakestand 3 Tier" in subject
    assert "Three-tier cake stand in bone china" in subject  # the product's own words
    preheader = copywriter.prompt(brief(), "preheader", rules)[-1]["content"]
    assert "at most 90 characters" in preheader
    sms = copywriter.prompt(brief(channel="sms"), "text", rules)[-1]["content"]
    assert "SMS" in sms and "at most 140 characters" in sms
    assert copywriter.TASKS["text"][1] < copywriter.TASKS["body"][1]


def test_subjects_alternate_between_the_products_name_and_the_models_own_start():
    two = brief(products=[STAND, copywriter.Product("JUMBO BAG RED RETROSPOT")])
    starts = [copywriter.opening(two, "subject", slot) for slot in range(4)]
    assert starts == ["", "The Regency Cakestand 3 Tier", "", "The Jumbo Bag Red Retrospot"]
    assert copywriter.opening(two, "preheader", 1) == ""
    assert copywriter.opening(two, "body", 1) == "Meet the Jumbo Bag Red Retrospot"


def test_a_subject_cut_mid_phrase_ends_on_a_whole_word():
    rules = guardrails.BrandRules()
    cut = copywriter.clean("subject", "The Regency Cakestand is a special gift from the", rules)
    assert cut == "The Regency Cakestand is a special gift"
    assert copywriter.clean("preheader", "Three tiers of china - for your", rules) == (
        "Three tiers of china"
    )
    assert copywriter.clean("subject", "Tea & Cake", rules) == "Tea & Cake"


CHRISTMAS_RULES = guardrails.BrandRules(required_phrases=["You get this e-mail as a subscriber."])


def test_a_failing_body_keeps_its_sound_sentence_without_the_one_that_fails():
    christmas = brief(offer="free gift wrapping this week")
    facts = christmas.facts()
    own = (
        "Our Regency Cakestand 3 Tier brings three tiers of bone china to your Christmas table. "
        "It is the perfect companion for a sunny summer picnic on the beach."
    )
    text = copywriter.with_required(
        "body", copywriter.with_offer("body", own, christmas, CHRISTMAS_RULES), CHRISTMAS_RULES
    )
    failures = guardrails.check_field("body", text, CHRISTMAS_RULES, facts)
    assert [f.rule for f in failures] == ["season"]
    ((kept, rest),) = copywriter.trimmed("body", own, failures, christmas, CHRISTMAS_RULES, facts)
    assert rest == own.split(". ")[0] + "."
    assert "summer" not in kept and "Free gift wrapping this week." in kept
    assert kept.endswith("You get this e-mail as a subscriber.")
    assert not guardrails.check_field("body", kept, CHRISTMAS_RULES, facts)
    # Nothing to drop from one sentence, and a passing body is not trimmed.
    summer = "Our Regency Cakestand 3 Tier is the companion for a sunny summer beach picnic."
    assert copywriter.trimmed("body", summer, failures, christmas, CHRISTMAS_RULES, facts) == []
    assert copywriter.trimmed("body", own, [], christmas, CHRISTMAS_RULES, facts) == []
    assert copywriter.trimmed("subject", own, failures, christmas, CHRISTMAS_RULES, facts) == []


def test_variants_are_worded_apart_not_only_meant_apart(ranker):
    first = "Our Regency Cakestand 3 Tier brings three tiers of bone china to the table."
    pool = [
        candidate(first),
        candidate(first.replace("the table", "your table")),
        candidate("Three tiers of bone china: set the Regency Cakestand 3 Tier on your table."),
    ]
    words = Ranker(ranker.encoder)
    words.REDUNDANCY = 0.0  # the word pairs alone
    chosen = words.choose(brief(), pool, 2)
    assert pool[1] not in chosen or pool[0] not in chosen
    assert copywriter._bigrams("The Cakestand, the cakestand") == {
        ("the", "cakestand,"),
        ("cakestand,", "the"),
        ("the", "cakestand"),
    }


class Generation:
    def __init__(self, text):
        self.text, self.tokens, self.logprob = text, len(text.split()), -1.0


class ScriptedModel:
    """Writes the same line per field: a body whose second sentence is about summer."""

    batch_size = 8
    REPLIES = {
        "subject": " for your Christmas table",
        "preheader": "Three tiers of bone china for Christmas.",
        "body": " brings three tiers of bone china to your Christmas table. It is the perfect "
        "companion for a sunny summer picnic on the beach.",
    }

    def token_ids_where(self, banned):
        return []

    def generate(self, conversations, max_new_tokens, temperature, top_p, seed, suppress,
                 prefixes):  # fmt: skip
        task = next(t for t, (words, _) in copywriter.TASKS.items()
                    if words.split("{")[0] in conversations[0][-1]["content"])  # fmt: skip
        return [Generation(p + self.REPLIES[task]) for p in prefixes]


def test_write_many_offers_the_trimmed_body_and_counts_it(ranker):
    christmas = brief()
    (drafts,), stats = copywriter.write_many(
        ScriptedModel(), [christmas], CHRISTMAS_RULES, k=2, rounds=1, encoder=ranker.encoder
    )
    assert stats["trimmed"] >= 1
    for d in drafts:
        assert "summer" not in d.fields["body"] and "Christmas table" in d.fields["body"]
        assert not any(f.field == "body" for f in d.report.failures)
