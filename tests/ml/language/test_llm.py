"""The packaged SmolLM2 GGUF: converted once into a cached checkpoint (sha256 checked), loaded
from a local folder, generating under decode-time constraints; and the copy writer end to end."""

import shutil

import pytest

from marketing_ai.ml.language import copywriter, guardrails, llm
from marketing_ai.ml.language.packaged import ModelNotFound


@pytest.fixture(scope="module")
def folder():
    from pathlib import Path

    # The shared cache (MARKETING_AI_MODEL_CACHE), as workers use it: converted once per checkout.
    converted = llm.converted(Path(llm.default_location()))
    assert llm.valid(converted)
    return converted


@pytest.fixture(scope="module")
def model(folder):
    return llm.LanguageModel(str(folder))


def test_conversion_is_cached_and_checked(folder, tmp_path):
    from pathlib import Path

    stamp = (folder / llm.WEIGHTS).stat().st_mtime_ns
    again = llm.converted(Path(llm.default_location()), folder.parent)
    assert again == folder and (folder / llm.WEIGHTS).stat().st_mtime_ns == stamp
    # An altered checkpoint no longer matches its recorded sha256 (and would be converted again).
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    with open(copy / llm.WEIGHTS, "r+b") as f:
        f.seek(4096)
        f.write(b"\0" * 64)
    assert not llm.valid(copy)


def test_missing_models_are_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFound, match="does not exist"):
        llm.LanguageModel(str(tmp_path / "nothing-here"))
    with pytest.raises(ModelNotFound, match="does not exist"):
        llm.LanguageModel(str(tmp_path / "model.gguf"))


def test_generates_from_a_local_folder_without_suppressed_tokens(model):
    digits = model.token_ids_where(lambda text: any(c.isdigit() for c in text))
    question = [{"role": "user", "content": "List the years 1990 to 1999, one per line."}]
    free = model.generate([question, question], max_new_tokens=24, temperature=0)[0]
    held = model.generate([question], max_new_tokens=24, temperature=0, suppress=digits)[0]
    assert any(c.isdigit() for c in free.text)
    assert held.tokens > 0 and not any(c.isdigit() for c in held.text)


def test_copy_writer_returns_checked_drafts(model):
    brief = copywriter.Brief(
        goal="Show tea lovers our new teaware",
        products=[
            copywriter.Product(
                "ROSES REGENCY TEACUP AND SAUCER", "Bone china teacup and saucer with roses"
            )
        ],
    )
    rules = guardrails.BrandRules(required_phrases=["You get this because you subscribed."])
    drafts, stats = copywriter.write(model, brief, rules, k=2, rounds=2, oversample=2)
    assert len(drafts) == 2 and stats["tokens"] > 0
    facts = brief.facts()
    for draft in drafts:
        assert set(draft.fields) == {"subject", "preheader", "body"}
        assert draft.fields["body"].endswith("You get this because you subscribed.")
        # The stored report is the rules' verdict on the stored copy.
        assert draft.report.as_dict() == guardrails.check(draft.fields, rules, facts).as_dict()
        assert 1 <= draft.attempts <= 2


def test_generated_text_cannot_run_template_code():
    html = copywriter.as_html("Hello {{ customer.email }} {% load x %}\n\n<b>bold</b>")
    assert "{{" not in html and "{%" not in html and "<b>" not in html
    assert html.count("<p>") == 2


def test_sms_copy_is_one_text_within_the_limit(model):
    brief = copywriter.Brief(
        goal="Remind customers about our lanterns",
        channel="sms",
        products=[copywriter.Product("MOROCCAN METAL LANTERN", "Metal lantern for candles")],
    )
    rules = guardrails.BrandRules(required_phrases=["STOP to opt out"])
    drafts, _ = copywriter.write(model, brief, rules, k=1, rounds=1)
    (draft,) = drafts
    text = draft.fields["text"]
    assert set(draft.fields) == {"text"} and text.endswith("STOP to opt out")
    assert len(text) <= 160
