"""A language model behind an OpenAI-compatible HTTP server (vLLM, llama.cpp's server, TGI,
Ollama, llama-cpp-python): the GPU nodes run the server, the workers send it work.

Chosen by `MARKETING_AI_LLM=openai:http://gpu-node:8000/v1`. Settings (environment):
  MARKETING_AI_LLM_MODEL        model name sent with each request (default: the server's first
                                /models entry)
  MARKETING_AI_LLM_KEY          bearer key, if the server wants one
  MARKETING_AI_LLM_CONCURRENCY  requests in flight at once (16): the server batches them
  MARKETING_AI_LLM_BATCH        conversations handed to one `generate` call by the copy writer (64)
  MARKETING_AI_LLM_TIMEOUT      seconds to wait for a reply, or between two streamed pieces (120)
  MARKETING_AI_LLM_CONNECT_TIMEOUT  seconds to open a connection (5)
  MARKETING_AI_LLM_RETRIES      further tries after a refused connection, a timeout, 5xx or 429 (3)
  MARKETING_AI_LLM_PREFILL      how a reply is started with a given prefix: `continue` (the prefix
                                as a final assistant message the server continues: vLLM,
                                llama.cpp's llama-server), `template` (the chat template rendered
                                here and sent to /completions: llama-cpp-python's server, which
                                always opens a new assistant turn), or `auto` (default: asks the
                                server once which of the two it does)
  MARKETING_AI_LLM_TEMPLATE     the chat template for `template`: a .gguf file or a Jinja file
                                (default: the server's /props, or the served .gguf when the
                                model's name is a path on this machine)
  MARKETING_AI_LLM_LOGPROBS     1 (default): ask for the chosen tokens' log-probabilities, which
                                the copy writer ranks candidates by; 0 saves llama-cpp-python's
                                server its cost (it sorts the whole vocabulary in Python for each
                                token: 4x slower there, free in vLLM and llama-server)

The server batches concurrent requests itself (continuous batching), so `generate` sends one
request per conversation, `MARKETING_AI_LLM_CONCURRENCY` at a time. A server that does not
answer after the retries raises ModelUnavailable, which says where and why.
"""

import json
import os
import random
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path

import requests
from jinja2.sandbox import ImmutableSandboxedEnvironment

from marketing_ai.ml.language.backend import Generation
from marketing_ai.ml.language.packaged import ModelUnavailable

SCHEME = "openai:"
RETRY_STATUS = {429, 500, 502, 503, 504}
# The packaged offline default, whatever a server calls it (a path, an alias, a hub id).
OFFLINE_DEFAULT = "smollm2-135m"


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


class OpenAIBackend:
    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        key: str | None = None,
        concurrency: int | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        retries: int | None = None,
        prefill: str | None = None,
        template: str | None = None,
        logprobs: bool | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.location = SCHEME + self.base_url
        self.model_name = model or os.environ.get("MARKETING_AI_LLM_MODEL") or None
        key = key or os.environ.get("MARKETING_AI_LLM_KEY")
        self.concurrency = concurrency or int(_env_number("MARKETING_AI_LLM_CONCURRENCY", 16))
        self.batch_size = int(_env_number("MARKETING_AI_LLM_BATCH", 64))
        self.timeout = (
            connect_timeout or _env_number("MARKETING_AI_LLM_CONNECT_TIMEOUT", 5),
            timeout or _env_number("MARKETING_AI_LLM_TIMEOUT", 120),
        )
        self.retries = int(
            retries if retries is not None else _env_number("MARKETING_AI_LLM_RETRIES", 3)
        )
        self.prefill = prefill or os.environ.get("MARKETING_AI_LLM_PREFILL") or "auto"
        if self.prefill not in ("auto", "continue", "template"):
            raise ValueError(
                f"MARKETING_AI_LLM_PREFILL must be auto, continue or template, not {self.prefill!r}"
            )
        self.template_source = template or os.environ.get("MARKETING_AI_LLM_TEMPLATE") or None
        if logprobs is None:
            logprobs = os.environ.get("MARKETING_AI_LLM_LOGPROBS", "1") not in ("0", "false", "")
        self.logprobs = logprobs
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=self.concurrency)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"
        self.reachable: bool | None = None
        self._resolving = threading.RLock()  # model() is asked for again while probing
        self._template = None

    # -- what the copy writer and the chat call --------------------------------------------

    def describe(self) -> dict:
        """Model name, backend and whether it is the small offline default; `reachable` says
        whether the last request to the server was answered (None before the first)."""
        info = {"backend": "openai", "device": f"server {self.base_url}", "server": self.base_url}
        try:
            info["model"] = self.model()
        except ModelUnavailable:
            info["model"] = self.model_name
        info["reachable"] = self.reachable
        info["offline_default"] = OFFLINE_DEFAULT in (info["model"] or "").lower()
        return info

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
        """One reply per conversation, sent as concurrent requests. `suppress` is ignored (the
        server has our token ids no more than we have its; the guardrails check every reply);
        `prefixes` start each reply and are part of the text returned."""
        prefixes = prefixes or [""] * len(conversations)
        if len(prefixes) != len(conversations):
            raise ValueError("one prefix per conversation")
        options = _sampling(max_new_tokens, temperature, top_p, repetition_penalty)

        def one(i: int) -> Generation:
            # Each request its own seed: a batch of the same prompt must not come back as copies.
            path, body = self._request(conversations[i], prefixes[i], options, seed + i)
            reply = self._post(path, {**body, **(_logprobs_for(path) if self.logprobs else {})})
            return _generation(reply, prefixes[i])

        if len(conversations) <= 1:
            return [one(i) for i in range(len(conversations))]
        with ThreadPoolExecutor(min(self.concurrency, len(conversations))) as pool:
            return list(pool.map(one, range(len(conversations))))

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
        """The reply as text pieces as the server sends them (server-sent events), the prefix
        first when given. Closing the iterator closes the connection, which stops the server."""
        options = _sampling(max_new_tokens, temperature, top_p, repetition_penalty)
        path, body = self._request(conversation, prefix, options, seed)
        response = self._send(path, {**body, "stream": True}, stream=True)
        try:
            if prefix:
                yield prefix
            for piece in _events(response, self.base_url):
                if piece:
                    yield piece
        finally:
            response.close()

    def token_ids_where(self, predicate) -> list[int]:
        return []  # the server's vocabulary is not ours to constrain

    # -- the server -----------------------------------------------------------------------

    def model(self) -> str:
        """The model name requests carry: configured, else the server's first /models entry."""
        if self.model_name:
            return self.model_name
        with self._resolving:
            if not self.model_name:
                listed = self._send("/models", None).json().get("data") or []
                if not listed:
                    raise ModelUnavailable(
                        f"the language model server at {self.base_url} lists no model"
                    )
                self.model_name = str(listed[0]["id"])
        return self.model_name

    def _request(self, conversation, prefix, options, seed) -> tuple[str, dict]:
        body = {"model": self.model(), "seed": seed, **options}
        if not prefix:
            return "/chat/completions", {**body, "messages": conversation}
        if self._prefill_mode() == "continue":
            messages = [*conversation, {"role": "assistant", "content": prefix}]
            # vLLM's names; llama-server continues a final assistant message without them.
            extra = {"continue_final_message": True, "add_generation_prompt": False}
            return "/chat/completions", {**body, "messages": messages, **extra}
        prompt = self._chat_template().render(conversation) + prefix
        return "/completions", {**body, "prompt": prompt}

    def _prefill_mode(self) -> str:
        if self.prefill == "auto":
            with self._resolving:
                if self.prefill == "auto":
                    self.prefill = "continue" if self._continues_assistant() else "template"
        return self.prefill

    def _continues_assistant(self) -> bool:
        """Whether the server continues a final assistant message rather than closing it and
        opening a new turn: a one-token prefill then costs about one prompt token more than no
        prefill, where a new turn adds the template's end-of-turn and header tokens too."""
        question = [{"role": "user", "content": "Hi"}]
        base = {"model": self.model(), "max_tokens": 1, "temperature": 0}
        plain = self._post("/chat/completions", {**base, "messages": question})
        try:
            continued = self._post(
                "/chat/completions",
                {
                    **base,
                    "messages": [*question, {"role": "assistant", "content": "Hi"}],
                    "continue_final_message": True,
                    "add_generation_prompt": False,
                },
            )
        except ModelUnavailable:
            # Up (it just answered) but refusing a final assistant message, as some templates do.
            return False
        try:
            extra = continued["usage"]["prompt_tokens"] - plain["usage"]["prompt_tokens"]
        except (KeyError, TypeError):
            # No token counts: trust the server to continue unless we hold a template to use.
            return self._find_template() is None
        return extra <= 2

    def _chat_template(self):
        if self._template is None:
            source = self._find_template()
            if source is None:
                raise ModelUnavailable(
                    f"the language model server at {self.base_url} does not continue a "
                    "prefilled reply and no chat template was found to write the prompt with: "
                    "set MARKETING_AI_LLM_TEMPLATE to the model's .gguf or a Jinja template file"
                )
            self._template = ChatTemplate.load(source)
        return self._template

    def _find_template(self) -> str | dict | None:
        if self.template_source:
            return self.template_source
        served = Path(self.model())
        if served.suffix == ".gguf" and served.is_file():
            return str(served)
        try:  # llama-server publishes its template beside the API
            props = self.session.get(
                self.base_url.removesuffix("/v1") + "/props", timeout=self.timeout
            )
            if props.ok and props.json().get("chat_template"):
                return props.json()
        except (requests.RequestException, ValueError):
            pass
        return None

    def _post(self, path: str, body: dict) -> dict:
        response = self._send(path, body)
        try:
            return response.json()
        except ValueError as exc:
            raise ModelUnavailable(
                f"the language model server at {self.base_url} answered {path} with something "
                f"other than JSON: {response.text[:200]!r}"
            ) from exc

    def _send(self, path: str, body: dict | None, stream: bool = False) -> requests.Response:
        """One request with retries on what a busy or restarting server answers; raises
        ModelUnavailable once they are spent, and on an answer no retry will change."""
        url = self.base_url + path
        reason = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(_backoff(attempt, reason))
            try:
                if body is None:
                    response = self.session.get(url, timeout=self.timeout)
                else:
                    response = self.session.post(
                        url, json=body, timeout=self.timeout, stream=stream
                    )
            except requests.RequestException as exc:
                reason = _plain(exc)
                continue
            if response.status_code in RETRY_STATUS:
                reason = f"HTTP {response.status_code} {_error_text(response)}".strip()
                retry_after = response.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    reason += f" (retry after {retry_after} s)"
                response.close()
                continue
            self.reachable = True  # it answered, if only to refuse
            if response.status_code >= 400:
                raise ModelUnavailable(
                    f"the language model server at {self.base_url} refused the request to "
                    f"{path}: HTTP {response.status_code} {_error_text(response)}".strip()
                )
            return response
        self.reachable = False
        tries = self.retries + 1
        raise ModelUnavailable(
            f"the language model server at {self.base_url} did not answer: {reason} "
            f"({tries} {'try' if tries == 1 else 'tries'})"
        )


def _sampling(max_new_tokens, temperature, top_p, repetition_penalty) -> dict:
    options = {"max_tokens": max_new_tokens, "temperature": temperature}
    if temperature > 0:
        options["top_p"] = top_p
    if repetition_penalty != 1.0:
        # vLLM and TGI call it repetition_penalty, llama.cpp repeat_penalty; each ignores the other.
        options.update(repetition_penalty=repetition_penalty, repeat_penalty=repetition_penalty)
    return options


def _logprobs_for(path: str) -> dict:
    # The chosen tokens' own log-probabilities; llama-cpp-python reports them only when asked
    # for at least one alternative as well.
    if path == "/completions":
        return {"logprobs": 1}
    return {"logprobs": True, "top_logprobs": 1}


def _generation(reply: dict, prefix: str) -> Generation:
    try:
        choice = reply["choices"][0]
    except (KeyError, IndexError, TypeError) as exc:
        raise ModelUnavailable(
            f"the language model server answered without a reply: {reply!r:.200}"
        ) from exc
    text = choice["message"]["content"] if "message" in choice else choice.get("text", "")
    logprobs = choice.get("logprobs") or {}
    if isinstance(logprobs.get("content"), list):  # chat
        chosen = [t.get("logprob") for t in logprobs["content"]]
    else:  # completions
        chosen = logprobs.get("token_logprobs") or []
    chosen = [float(x) for x in chosen if x is not None]
    tokens = (reply.get("usage") or {}).get("completion_tokens") or len(chosen)
    mean = sum(chosen) / len(chosen) if chosen else None
    return Generation((prefix + (text or "")).strip(), int(tokens), mean)


def _events(response: requests.Response, base_url: str) -> Iterator[str]:
    """The text of each server-sent event of a streamed completion, until [DONE]."""
    try:
        for line in response.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                return
            event = json.loads(data)
            if "error" in event:
                raise ModelUnavailable(
                    f"the language model server at {base_url} stopped the reply: {event['error']}"
                )
            for choice in event.get("choices") or []:
                if "delta" in choice:  # chat
                    yield (choice["delta"] or {}).get("content") or ""
                else:  # completions
                    yield choice.get("text") or ""
    except requests.RequestException as exc:
        raise ModelUnavailable(
            f"the language model server at {base_url} stopped answering mid-reply: {_plain(exc)}"
        ) from exc


def _backoff(attempt: int, reason: str) -> float:
    """Seconds before try `attempt` (1, 2, ...): exponential with jitter, capped at 10 s, or the
    server's Retry-After when it gave one under a minute."""
    if "(retry after " in reason:
        asked = int(reason.rsplit("(retry after ", 1)[1].split()[0])
        if asked <= 60:
            return float(asked)
    base = _env_number("MARKETING_AI_LLM_BACKOFF", 0.5)
    # Jitter, not secrecy: spreads the workers that saw the same failure over the wait.
    return min(10.0, base * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)  # noqa: S311


def _plain(exc: Exception) -> str:
    if isinstance(exc, requests.ConnectionError):
        return f"connection failed ({exc.__class__.__name__}: {str(exc)[:160]})"
    if isinstance(exc, requests.Timeout):
        return f"no answer in time ({exc.__class__.__name__})"
    return f"{exc.__class__.__name__}: {str(exc)[:160]}"


def _error_text(response: requests.Response) -> str:
    try:
        error = response.json().get("error", response.text)
    except ValueError:
        error = response.text
    if isinstance(error, dict):
        error = error.get("message", error)
    return str(error)[:300]


class ChatTemplate:
    """A model's chat template (Jinja, as Hugging Face tokenizers carry it) rendered here, for
    servers that take a prompt but will not continue a prefilled reply."""

    def __init__(self, source: str, bos_token: str = "", eos_token: str = "") -> None:
        def raise_exception(message):
            raise ValueError(message)

        # The settings transformers renders chat templates with, so the prompt is the same.
        environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        environment.globals["raise_exception"] = raise_exception
        self.template = environment.from_string(source)
        self.tokens = {"bos_token": bos_token, "eos_token": eos_token}

    def render(self, conversation: list[dict]) -> str:
        return self.template.render(
            messages=conversation, add_generation_prompt=True, **self.tokens
        )

    @staticmethod
    def load(source: str | dict) -> "ChatTemplate":
        """From llama-server's /props answer, a .gguf file's metadata, or a Jinja file."""
        if isinstance(source, dict):
            return ChatTemplate(
                source["chat_template"], source.get("bos_token", ""), source.get("eos_token", "")
            )
        if source.endswith(".gguf"):
            return ChatTemplate(*_gguf_template(source))
        return ChatTemplate(Path(source).read_text())


@lru_cache(maxsize=4)
def _gguf_template(path: str) -> tuple[str, str, str]:
    """(chat template, BOS token, EOS token) from a GGUF file's metadata."""
    fields = gguf_metadata(path)
    if "tokenizer.chat_template" not in fields:
        raise ModelUnavailable(f"{path} carries no chat template")
    tokens = fields.get("tokenizer.ggml.tokens") or []

    def special(name: str) -> str:
        index = fields.get(f"tokenizer.ggml.{name}_token_id")
        return tokens[index] if isinstance(index, int) and index < len(tokens) else ""

    return fields["tokenizer.chat_template"], special("bos"), special("eos")


# GGUF metadata value types: struct format of each fixed-size one (8 is a string, 9 an array).
_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q",
                 11: "q", 12: "d"}  # fmt: skip


def gguf_metadata(path: str) -> dict:
    """The key/value header of a GGUF file (version 2 or 3), without its tensors: the gguf
    package's reader takes seconds over a 50,000-token vocabulary, this a fraction of one."""
    with open(path, "rb") as f:
        if f.read(4) != b"GGUF":
            raise ModelUnavailable(f"{path} is not a GGUF file")
        version, _tensors, count = struct.unpack("<IQQ", f.read(20))
        if version < 2:
            raise ModelUnavailable(f"{path} is GGUF version {version}, too old to read")

        def number(fmt: str):
            return struct.unpack("<" + fmt, f.read(struct.calcsize(fmt)))[0]

        def string() -> str:
            return f.read(number("Q")).decode("utf-8", errors="replace")

        def value(kind: int):
            if kind == 8:
                return string()
            if kind == 9:
                item, length = number("I"), number("Q")
                return [value(item) for _ in range(length)]
            return number(_GGUF_SCALARS[kind])

        fields = {}
        for _ in range(count):
            key = string()
            fields[key] = value(number("I"))
    return fields
