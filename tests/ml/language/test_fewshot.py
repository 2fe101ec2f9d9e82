"""marketing_ai.ml.language.fewshot: which past variants are winners, and the messages that show
them to the copy writer."""

from marketing_ai.ml.language import copywriter, fewshot

FOOTER = "You receive this e-mail because you subscribed."


def result(variant, sent, clicks, at="2026-11-01T10:00:00+00:00", **fields):
    return fewshot.Result(
        variant=variant,
        sent=sent,
        clicks=clicks,
        at=at,
        fields=fields or {"subject": f"Subject {variant}"},
        brief={"products": ["JUMBO BAG RED RETROSPOT"], "goal": "Sell bags", "offer": ""},
    )


def test_winners_rank_by_the_lower_bound_not_the_raw_rate():
    lucky = result(1, 100, 3)  # 3.0%, lower bound 1.0%
    steady = result(2, 1000, 25)  # 2.5%, lower bound 1.7%
    tiny = result(3, 2, 1)  # 50%, but two sends
    silent = result(4, 5000, 0)
    assert [w.variant for w in fewshot.winners([lucky, steady, tiny, silent])] == [2, 1]
    assert steady.click_bound > lucky.click_bound and tiny.click_bound > steady.click_bound
    # Had two sends been enough, the bound would still not put one click on top of 30%.
    strong = result(5, 20, 6)
    assert [w.variant for w in fewshot.winners([tiny, strong], min_sends=2)] == [5, 3]


def test_winners_take_the_latest_among_equal_bounds_and_stop_at_the_limit():
    old = result(1, 200, 10, at="2026-10-01T00:00:00+00:00")
    new = result(2, 200, 10, at="2026-11-01T00:00:00+00:00")
    newest_worse = result(3, 200, 4, at="2026-12-01T00:00:00+00:00")
    assert [w.variant for w in fewshot.winners([old, newest_worse, new])] == [2, 1, 3]
    assert [w.variant for w in fewshot.winners([old, newest_worse, new], limit=1)] == [2]
    assert fewshot.winners([]) == []


def test_an_example_leaves_out_the_required_lines_and_says_what_it_answered():
    won = result(7, 300, 12, subject="Bags for you?", body=f"Our Jumbo Bag is roomy.\n\n{FOOTER}")
    example = fewshot.example(won, drop=[FOOTER])
    assert example["body"] == "Our Jumbo Bag is roomy." and example["subject"] == "Bags for you?"
    assert example["variant"] == 7 and example["products"] == ["JUMBO BAG RED RETROSPOT"]
    assert example["goal"] == "Sell bags" and example["offer"] == ""


def brief(examples=()):
    return copywriter.Brief(
        goal="Introduce new arrivals",
        products=[copywriter.Product("REGENCY CAKESTAND 3 TIER")],
        examples=list(examples),
    )


def test_messages_show_each_winner_as_its_own_request_and_answer_best_nearest():
    best = fewshot.example(result(1, 500, 40, subject="Bags for you?"))
    second = fewshot.example(result(2, 500, 20, subject="New bags are in"))
    assert fewshot.messages(brief(), "subject") == []
    shown = fewshot.messages(brief([best, second]), "subject")
    assert [m["role"] for m in shown] == ["user", "assistant"] * 2
    assert [m["content"] for m in shown[1::2]] == ["New bags are in", "Bags for you?"]
    # The request names the winner's own products, never the new brief's.
    assert all("Jumbo Bag Red Retrospot" in m["content"] for m in shown[::2])
    assert not any("Cakestand" in m["content"] for m in shown)
    # An example without the task's field (an SMS winner for an e-mail body) is not shown.
    assert fewshot.messages(brief([{"text": "Hi", "products": ["X"]}]), "body") == []
    assert fewshot.sources(brief([best, second])) == [1, 2]


def test_messages_stay_within_the_token_budget_and_never_cut_an_example():
    long_body = "Our bag is roomy and bright. " * 40
    examples = [
        fewshot.example(result(i, 500, 30 - i, body=long_body if i % 2 else "Our bag is roomy."))
        for i in range(1, 4)
    ]
    shown = fewshot.messages(brief(examples), "body")
    assert sum(fewshot.tokens(m["content"]) for m in shown) <= fewshot.MAX_TOKENS
    assert [m["content"] for m in shown[1::2]] == ["Our bag is roomy."]  # the long ones left out
    assert fewshot.tokens("word " * 100) >= 100


def test_the_copy_writer_puts_the_examples_between_its_instructions_and_the_request():
    example = fewshot.example(result(1, 500, 40, subject="Bags for you?"))
    conversation = copywriter.prompt(brief([example]), "subject")
    assert conversation[0]["role"] == "system" and conversation[-1]["role"] == "user"
    assert "Regency Cakestand" in conversation[-1]["content"]
    assert conversation[1:-1] == fewshot.messages(brief([example]), "subject")
