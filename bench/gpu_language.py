"""The language-model checks that need a GPU: the default model (or MARKETING_AI_LLM) in bf16 on
CUDA, copy for 50 briefs written in device-sized batches and the chat questions answered, with
tokens/s and variants/minute. Without a CUDA device it says so and exits 0, writing nothing.

With `--llm openai:URL` the same work goes to an OpenAI-compatible server instead (vLLM, TGI,
llama.cpp's server on the GPU node; the CUDA device is the server's, so none is needed here),
sent as concurrent requests (MARKETING_AI_LLM_CONCURRENCY), and the chat turns are streamed, with
the seconds to the first piece. Results go to gpu_language_http.json.

    .venv/bin/python bench/gpu_language.py
    .venv/bin/python bench/gpu_language.py --llm openai:http://gpu-node:8000/v1
    # at small size against any server, e.g. llama-cpp-python's on this CPU:
    .venv/bin/python bench/gpu_language.py --llm openai:http://127.0.0.1:8001/v1 --briefs 2 \
        --questions 10
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402

os.environ.setdefault("MARKETING_AI_MODEL_CACHE", str(services.ROOT / "var" / "models"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm", help="openai:URL of a server; default: the model in-process")
    parser.add_argument("--briefs", type=int, default=None, help="default: bench/copywriting's")
    parser.add_argument("--questions", type=int, default=None, help="default: all of bench/chat's")
    args = parser.parse_args()
    if args.llm and not args.llm.startswith("openai:"):
        parser.error("--llm takes openai:URL (set MARKETING_AI_LLM for a model loaded here)")
    import torch

    if not args.llm and not torch.cuda.is_available():
        print("no CUDA device: GPU checks skipped")
        return
    from bench import chat, copywriting
    from marketing_ai.ml.language import copywriter
    from marketing_ai.ml.language.llm import language_model

    if args.llm:
        model = language_model(args.llm)
        info = model.describe()
        figures = {"server": info["server"], "model": info["model"],
                   "concurrency": model.concurrency}  # fmt: skip
    else:
        os.environ["MARKETING_AI_DEVICE"] = "cuda"
        model = language_model()
        assert model.model.dtype == torch.bfloat16, model.model.dtype
        figures = {"gpu": torch.cuda.get_device_name(0), "dtype": "bfloat16"}
    figures["batch"] = model.batch_size
    products = copywriting.catalogue()
    briefs = copywriting.briefs(products)[: args.briefs]
    names = products["name"].astype(str).str.strip().tolist()
    started = time.perf_counter()
    drafts, stats = copywriter.write_many(
        model, briefs, copywriting.RULES, k=copywriting.K, catalogue=names
    )
    seconds = time.perf_counter() - started
    variants = len(briefs) * copywriting.K
    passed = sum(d.passed for row in drafts for d in row)
    figures.update(
        copy_variants=variants,
        copy_pass_rate=round(passed / variants, 4),
        copy_tokens_per_second=round(stats["tokens"] / stats["seconds"], 1),
        copy_variants_per_minute=round(variants / seconds * 60, 1),
    )
    index, ids = chat.build_index()
    from marketing_ai.ml.language.assistant import Assistant
    from marketing_ai.ml.language.embeddings import encoder

    bot = Assistant(index, encoder(), model)
    questions = [question for question, _ in chat.CASES["questions"]][: args.questions]
    started = time.perf_counter()
    for question in questions:
        bot.reply(question)
    figures["chat_seconds_per_turn"] = round((time.perf_counter() - started) / len(questions), 3)
    if args.llm:
        figures["chat_seconds_to_first_piece"] = round(_first_piece(model, questions), 3)
    rows = [(k, v, "", "") for k, v in figures.items()]
    where = figures.get("gpu") or f"{figures['model']} at {figures['server']}"
    services.print_table(f"Language model on {where}", rows)
    print(services.write_results("gpu_language_http" if args.llm else "gpu_language", figures))


def _first_piece(model, questions: list[str]) -> float:
    """Mean seconds from asking to the first streamed piece of the answer (what a customer
    waits before the widget shows anything)."""
    waits = []
    for question in questions:
        started = time.perf_counter()
        stream = model.stream([{"role": "user", "content": question}], max_new_tokens=70)
        next(stream, None)
        waits.append(time.perf_counter() - started)
        stream.close()
    return sum(waits) / len(waits)


if __name__ == "__main__":
    main()
