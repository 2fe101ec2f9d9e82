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
    # Plumbing, not quality (bench/copywriting.py measures that): the smallest pool that
    # still has a second round for failing fields.
    drafts, stats = copywriter.write(model, brief, rules, k=2, rounds=2, candidates=2, oversample=1)
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


def _greedy_ids_and_logprob(model, conversation, prefix, max_new_tokens):
    """The token ids a plain greedy decode chooses after the prompt, and their mean
    log-probability from one forward pass over prompt + reply (no batching, no padding)."""
    import torch

    prompt = model.tokenizer.apply_chat_template(
        conversation, add_generation_prompt=True, tokenize=False
    )
    ids = model.tokenizer([prompt + prefix], add_special_tokens=False, return_tensors="pt")
    with torch.inference_mode():
        out = model.model.generate(
            **ids, max_new_tokens=max_new_tokens, do_sample=False, repetition_penalty=1.0,
            pad_token_id=model.tokenizer.pad_token_id,
        )  # fmt: skip
        length = ids["input_ids"].shape[1]
        chosen = [t for t in out[0, length:].tolist() if t != model.tokenizer.pad_token_id]
        full = torch.tensor([ids["input_ids"][0].tolist() + chosen])
        logits = model.model(full).logits[0].float()
    steps = torch.log_softmax(logits[length - 1 : -1], dim=-1)
    return chosen, float(steps.gather(-1, torch.tensor(chosen)[:, None]).mean())


def test_logprob_is_the_mean_of_the_chosen_tokens_log_probabilities(model):
    # Two prompts of different lengths: the shorter one is padded on the left in the batch.
    short = [{"role": "user", "content": "Name a colour."}]
    long = [{"role": "user", "content": "Write one sentence about a teapot for a newsletter."}]
    outs = model.generate(
        [short, long], max_new_tokens=12, temperature=0, repetition_penalty=1.0,
        prefixes=["", "Our"],
    )  # fmt: skip
    for out, conversation, prefix in zip(outs, [short, long], ["", "Our"], strict=True):
        chosen, expected = _greedy_ids_and_logprob(model, conversation, prefix, 12)
        assert out.tokens == len(chosen) and out.logprob < 0
        assert out.logprob == pytest.approx(expected, abs=2e-3)
    # Sampling at a high temperature picks less likely tokens than greedy decoding does.
    hot = model.generate([long] * 2, max_new_tokens=12, temperature=1.5, top_p=1.0, seed=3,
                         prefixes=["Our"] * 2)  # fmt: skip
    assert max(out.logprob for out in hot) < outs[1].logprob


def test_stream_yields_the_greedy_reply_piece_by_piece(model):
    question = [{"role": "user", "content": "Describe a teacup in two sentences."}]
    whole = model.generate([question], max_new_tokens=20, temperature=0)[0].text
    pieces = list(model.stream(question, max_new_tokens=20))
    assert len(pieces) > 3
    assert "".join(pieces).strip() == whole
    prefixed = list(model.stream(question, max_new_tokens=10, prefix="A teacup"))
    assert prefixed[0] == "A teacup" and len(prefixed) > 1


def test_closing_a_stream_early_stops_decoding(model):
    import time

    question = [{"role": "user", "content": "Write a long story about a lantern."}]
    started = time.perf_counter()
    stream = model.stream(question, max_new_tokens=400)
    first = next(stream)
    stream.close()
    # The lock is free again within a token or two, long before 400 tokens could be decoded.
    assert first and model.lock.acquire(timeout=5)
    model.lock.release()
    assert time.perf_counter() - started < 20


def test_describe_names_the_backend_and_the_offline_default(model):
    info = model.describe()
    assert info["backend"] == "in-process" and info["device"] == "cpu"
    assert info["offline_default"] is False  # a converted folder given by path is the operator's
    assert llm.default_location().endswith(llm.PACKAGED[1])
