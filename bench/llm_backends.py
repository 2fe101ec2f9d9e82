"""Generation throughput of the two language-model backends on the same packaged model
(SmolLM2-135M-Instruct, Q4_1 GGUF), the same briefs and the same CPU threads, in one run: the
in-process transformers model (de-quantised to fp32, batches padded on the left) against the
OpenAI-compatible HTTP backend talking to llama.cpp's server through llama-cpp-python (the GGUF
as it is, one request at a time: llama-cpp-python's server has no continuous batching, vLLM
does).

    flock /work/briefs/bench-lock .venv/bin/python bench/llm_backends.py --briefs 6 --copy-briefs 2

Two measures per backend: raw generation (every brief's body prompt K times, 48 new tokens,
sampled, in the backend's batches; the HTTP backend also without logprobs) in tokens/s and
replies/minute; and the copy writer end to end on the first briefs (copywriter.write_many:
candidates, checks, ranking, regeneration) in variants/minute. Needs
llama-cpp-python with its server extra (requirements-dev).
"""

import argparse
import contextlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import services  # noqa: E402

os.environ.setdefault("MARKETING_AI_MODEL_CACHE", str(services.ROOT / "var" / "models"))


@contextlib.contextmanager
def llama_server(gguf: str, threads: int, python: str | None = None) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on a free port, serving `gguf`; yields its
    base URL and stops it on the way out."""
    port = services.free_port()
    command = [
        python or sys.executable, "-m", "llama_cpp.server", "--model", gguf,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096",
        "--n_threads", str(threads), "--n_threads_batch", str(threads), "--verbose", "false",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        services.wait_for_port(port, timeout=120)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def raw(model, conversations: list[list[dict]], tokens: int) -> tuple[int, float]:
    """(new tokens, seconds) for every conversation, in the backend's own batch size."""
    produced = 0
    started = time.perf_counter()
    size = model.batch_size
    for start in range(0, len(conversations), size):
        outs = model.generate(
            conversations[start : start + size], max_new_tokens=tokens, temperature=0.7,
            seed=start,
        )  # fmt: skip
        produced += sum(o.tokens for o in outs)
    return produced, time.perf_counter() - started


def measure_raw(name, model, batch, figures, tokens: int) -> None:
    from bench import copywriting
    from marketing_ai.ml.language import copywriter

    conversations = [copywriter.prompt(b, "body") for b in batch for _ in range(copywriting.K)]
    model.generate(conversations[:1], max_new_tokens=4)  # warm: first-call costs are not speed
    produced, seconds = raw(model, conversations, tokens)
    figures[f"{name}_raw_tokens"] = produced
    figures[f"{name}_raw_tokens_per_second"] = round(produced / seconds, 1)
    figures[f"{name}_raw_replies_per_minute"] = round(len(conversations) / seconds * 60, 1)
    print(f"  {name}: {figures[f'{name}_raw_tokens_per_second']} tokens/s raw", flush=True)


def measure_copy(name, model, batch, names, figures) -> None:
    from bench import copywriting
    from marketing_ai.ml.language import copywriter

    started = time.perf_counter()
    drafts, stats = copywriter.write_many(
        model, batch, copywriting.RULES, k=copywriting.K, catalogue=names
    )
    seconds = time.perf_counter() - started
    variants = sum(len(row) for row in drafts)
    figures[f"{name}_copy_variants_per_minute"] = round(variants / seconds * 60, 1)
    figures[f"{name}_copy_tokens_per_second"] = round(stats["tokens"] / stats["seconds"], 1)
    figures[f"{name}_copy_pass_rate"] = round(
        sum(d.report.passed for row in drafts for d in row) / variants, 4
    )
    figures[f"{name}_copy_seconds"] = round(seconds, 1)
    print(f"  {name}: {figures[f'{name}_copy_variants_per_minute']} variants/min", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--briefs", type=int, default=6, help="raw generation: K replies each")
    parser.add_argument("--copy-briefs", type=int, default=2, help="copy writer, the first N")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--tokens", type=int, default=48, help="new tokens per raw reply")
    parser.add_argument("--llama-python", help="interpreter with llama-cpp-python, if not this")
    args = parser.parse_args()
    if args.llama_python is None and importlib.util.find_spec("llama_cpp") is None:
        sys.exit("llama-cpp-python is not installed: pip install -r requirements-dev.lock")
    os.environ["MARKETING_AI_TORCH_THREADS"] = str(args.threads)

    from bench import copywriting
    from marketing_ai.ml.language import llm
    from marketing_ai.ml.language.remote import OpenAIBackend

    products = copywriting.catalogue()
    batch = copywriting.briefs(products)[: args.briefs]
    names = products["name"].astype(str).str.strip().tolist()
    gguf = llm.default_location()
    copy = batch[: args.copy_briefs]
    figures: dict = {"briefs": len(batch), "copy_briefs": len(copy), "k": copywriting.K,
                     "threads": args.threads, "raw_new_tokens": args.tokens}  # fmt: skip

    model = llm.LanguageModel(gguf)
    figures["inprocess_batch"] = model.batch_size
    measure_raw("inprocess", model, batch, figures, args.tokens)
    measure_copy("inprocess", model, copy, names, figures)
    del model
    with llama_server(gguf, args.threads, args.llama_python) as url:
        remote = OpenAIBackend(url)
        figures["http_concurrency"] = remote.concurrency
        measure_raw("http", remote, batch, figures, args.tokens)
        # The same without the chosen tokens' logprobs, which llama-cpp-python's server
        # computes by sorting the vocabulary in Python for every token.
        measure_raw(
            "http_nologprobs", OpenAIBackend(url, logprobs=False), batch, figures, args.tokens
        )
        measure_copy("http", remote, copy, names, figures)

    f = figures
    rows = []
    for label, key in [
        ("raw generation, tokens/s (with logprobs)", "raw_tokens_per_second"),
        ("raw generation, replies/min", "raw_replies_per_minute"),
        ("copy writer, variants/min", "copy_variants_per_minute"),
        ("copy writer, tokens/s", "copy_tokens_per_second"),
        ("copy writer, pass rate", "copy_pass_rate"),
    ]:
        ours, anchor = f[f"http_{key}"], f[f"inprocess_{key}"]
        rows.append((label, ours, anchor, f"{ours / anchor:.2f}x" if anchor else ""))
    fast = f["http_nologprobs_raw_tokens_per_second"]
    anchor = f["inprocess_raw_tokens_per_second"]
    rows.insert(1, ("raw generation, tokens/s, no logprobs", fast, anchor, f"{fast / anchor:.2f}x"))
    title = (
        f"HTTP backend (llama.cpp server, prefixes by {remote.prefill}) against in-process "
        f"transformers, SmolLM2-135M, {len(batch)} briefs x {copywriting.K}, {args.threads} threads"
    )
    services.print_table(title, rows)
    print(services.write_results("llm_backends", figures))


if __name__ == "__main__":
    main()
