"""The language-model checks that need a GPU: the default model (or MARKETING_AI_LLM) in bf16 on
CUDA, copy for 50 briefs written in device-sized batches and the chat questions answered, with
tokens/s and variants/minute. Without a CUDA device it says so and exits 0, writing nothing.

    .venv/bin/python bench/gpu_language.py
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402

os.environ.setdefault("MARKETING_AI_MODEL_CACHE", str(services.ROOT / "var" / "models"))


def main() -> None:
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: GPU checks skipped")
        return
    os.environ["MARKETING_AI_DEVICE"] = "cuda"
    from bench import chat, copywriting
    from marketing_ai.ml.language import copywriter
    from marketing_ai.ml.language.llm import language_model

    model = language_model()
    assert model.model.dtype == torch.bfloat16, model.model.dtype
    products = copywriting.catalogue()
    briefs = copywriting.briefs(products)
    names = products["name"].astype(str).str.strip().tolist()
    started = time.perf_counter()
    drafts, stats = copywriter.write_many(
        model, briefs, copywriting.RULES, k=copywriting.K, catalogue=names
    )
    seconds = time.perf_counter() - started
    variants = len(briefs) * copywriting.K
    passed = sum(d.passed for row in drafts for d in row)
    figures = {
        "gpu": torch.cuda.get_device_name(0),
        "dtype": "bfloat16",
        "batch": model.batch_size,
        "copy_variants": variants,
        "copy_pass_rate": round(passed / variants, 4),
        "copy_tokens_per_second": round(stats["tokens"] / stats["seconds"], 1),
        "copy_variants_per_minute": round(variants / seconds * 60, 1),
    }
    index, ids = chat.build_index()
    from marketing_ai.ml.language.assistant import Assistant
    from marketing_ai.ml.language.embeddings import encoder

    bot = Assistant(index, encoder(), model)
    started = time.perf_counter()
    for question, _ in chat.CASES["questions"]:
        bot.reply(question)
    figures["chat_seconds_per_turn"] = round(
        (time.perf_counter() - started) / len(chat.CASES["questions"]), 3
    )
    rows = [(k, v, "", "") for k, v in figures.items()]
    services.print_table(f"Language model on {figures['gpu']}", rows)
    print(services.write_results("gpu_language", figures))


if __name__ == "__main__":
    main()
