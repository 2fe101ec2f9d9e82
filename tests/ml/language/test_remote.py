"""The OpenAI-compatible backend against a real server: llama-cpp-python's server (llama.cpp)
serving the packaged SmolLM2 GGUF on a free port, for generate, stream, logprob, prefixes and a
server that goes away; and against a small HTTP server of the test's own that answers what busy,
broken or guarded servers answer (5xx, 429 with Retry-After, 401), for the retries."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from marketing_ai.ml.language import copywriter, guardrails, llm
from marketing_ai.ml.language.packaged import ModelNotFound, ModelUnavailable
from marketing_ai.ml.language.remote import ChatTemplate, OpenAIBackend
from tests.conftest import free_port

KEY = "test-key-1"
QUESTION = [{"role": "user", "content": "Describe a teacup in two sentences."}]


def _llama_cpp_python() -> str | None:
    """The interpreter to run llama-cpp-python's server with: this one when it has the package,
    else MARKETING_AI_LLAMA_PYTHON (an environment of its own)."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is not None:
        return sys.executable
    return os.environ.get("MARKETING_AI_LLAMA_PYTHON")


needs_server = pytest.mark.skipif(
    _llama_cpp_python() is None,
    reason="llama-cpp-python is not installed (pip install -r requirements-dev.lock)",
)


def start_server(port: int, *extra: str) -> subprocess.Popen:
    command = [
        _llama_cpp_python(), "-m", "llama_cpp.server", "--model", llm.default_location(),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2",
        "--seed", "0", "--verbose", "false", *extra,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited: {process.stderr.read().decode()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code < 500:
                return process
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    pytest.fail("llama_cpp.server did not start within 60 s")


def stop_server(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="module")
def server():
    port = free_port()
    process = start_server(port, "--api_key", KEY)
    yield f"http://127.0.0.1:{port}/v1"
    stop_server(process)


@pytest.fixture(scope="module")
def backend(server):
    return OpenAIBackend(server, key=KEY, retries=1)


@pytest.fixture(scope="module")
def fast(server):
    """Without logprobs, which cost llama-cpp-python's server 4x the time of the reply."""
    return OpenAIBackend(server, key=KEY, retries=1, logprobs=False)


@needs_server
def test_the_location_picks_the_server_and_describe_says_what_it_serves(server, monkeypatch):
    monkeypatch.setenv("MARKETING_AI_LLM_KEY", KEY)
    llm.language_model.cache_clear()
    try:
        model = llm.language_model(f"openai:{server}")
    finally:
        llm.language_model.cache_clear()
    assert isinstance(model, OpenAIBackend) and model.token_ids_where(str.isdigit) == []
    info = model.describe()
    # llama-cpp-python's server names its model by the path it was given.
    assert info["model"] == llm.default_location() and info["reachable"] is True
    assert info["backend"] == "openai" and info["offline_default"] is True


@needs_server
def test_generate_sends_a_batch_and_reports_logprobs(backend):
    tea = [{"role": "user", "content": "Write one sentence about a teapot for a newsletter."}]
    greedy = backend.generate([QUESTION, tea], max_new_tokens=8, temperature=0)
    assert all(g.tokens > 0 and g.text for g in greedy)
    assert all(g.logprob is not None and g.logprob < 0 for g in greedy)
    without = OpenAIBackend(backend.base_url, key=KEY, logprobs=False)
    again = without.generate([tea], max_new_tokens=8, temperature=0)[0]
    assert again.text == greedy[1].text and again.logprob is None  # greedy: the same reply
    hot = backend.generate([tea] * 2, max_new_tokens=8, temperature=1.5, top_p=1.0, seed=5)
    # Each request its own seed, so a batch of one prompt does not come back as copies; and
    # the sampled tokens are less likely than the greedy ones under the model.
    assert hot[0].text != hot[1].text
    assert max(g.logprob for g in hot) < greedy[1].logprob


@needs_server
def test_prefixes_start_the_reply_through_the_chat_template(backend):
    prefix = "Dear tea lover, our"
    out = backend.generate([QUESTION], max_new_tokens=10, temperature=0, prefixes=[prefix])[0]
    # llama-cpp-python's server opens a new assistant turn after a prefilled one, which the
    # backend finds out by asking, and writes the prompt itself for /completions instead.
    assert backend.prefill == "template"
    assert out.text.startswith(prefix) and len(out.text) > len(prefix) + 5
    assert "Dear tea lover" not in out.text[len(prefix) :]  # continued, not started over
    assert out.logprob is not None and out.tokens > 0
    rendered = backend._chat_template().render(QUESTION)
    assert rendered.endswith("<|im_start|>assistant\n") and "Describe a teacup" in rendered


@needs_server
def test_stream_yields_the_same_reply_as_generate_piece_by_piece(fast):
    whole = fast.generate([QUESTION], max_new_tokens=24, temperature=0)[0].text
    pieces = list(fast.stream(QUESTION, max_new_tokens=24))
    assert len(pieces) > 3 and "".join(pieces).strip() == whole
    prefixed = list(fast.stream(QUESTION, max_new_tokens=8, prefix="A teacup"))
    assert prefixed[0] == "A teacup" and len(prefixed) > 1


@needs_server
def test_the_copy_writer_writes_checked_drafts_through_the_server(fast):
    brief = copywriter.Brief(
        goal="Show tea lovers our new teaware",
        products=[copywriter.Product("ROSES REGENCY TEACUP AND SAUCER", "Bone china teacup")],
    )
    rules = guardrails.BrandRules(required_phrases=["You get this because you subscribed."])
    drafts, stats = copywriter.write(fast, brief, rules, k=1, rounds=1, candidates=1)
    assert len(drafts) == 1 and stats["tokens"] > 0 and stats["generations"] == 3
    for draft in drafts:
        assert draft.fields["body"].endswith("You get this because you subscribed.")


@needs_server
def test_a_wrong_key_is_refused_without_retrying(server):
    started = time.perf_counter()
    with pytest.raises(ModelUnavailable, match="refused the request .* HTTP 401"):
        OpenAIBackend(server, key="wrong", retries=3).generate([QUESTION], max_new_tokens=4)
    assert time.perf_counter() - started < 5


@needs_server
def test_a_server_that_goes_away_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MARKETING_AI_LLM_BACKOFF", "0.05")
    port = free_port()
    process = start_server(port)
    model = OpenAIBackend(f"http://127.0.0.1:{port}/v1", retries=2)
    assert model.generate([QUESTION], max_new_tokens=4, temperature=0)[0].tokens > 0
    stop_server(process)
    with pytest.raises(ModelUnavailable, match=f"server at http://127.0.0.1:{port}/v1 did not"):
        model.generate([QUESTION], max_new_tokens=4)
    with pytest.raises(ModelUnavailable, match="connection failed .*3 tries"):
        list(model.stream(QUESTION, max_new_tokens=4))
    assert model.describe()["reachable"] is False


# -- retries, against a server of the test's own ------------------------------------------


class Scripted(BaseHTTPRequestHandler):
    """Answers each POST with the next (status, headers, body) of the server's script."""

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or "{}")
        self.server.seen.append((time.monotonic(), self.path, body))
        status, headers, body = self.server.script.pop(0)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        data = json.dumps(body).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    httpd.script, httpd.seen = [], []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


REPLY = {
    "choices": [
        {
            "message": {"role": "assistant", "content": "A teacup."},
            "logprobs": {
                "content": [{"token": "A", "logprob": -0.5}, {"token": ".", "logprob": -1.5}]
            },
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2},
}


def test_busy_and_failing_servers_are_retried_with_backoff(scripted, monkeypatch):
    monkeypatch.setenv("MARKETING_AI_LLM_BACKOFF", "0.05")
    scripted.script = [
        (503, {}, {"error": {"message": "loading"}}),
        (429, {"Retry-After": "1"}, {"error": "slow down"}),
        (200, {}, REPLY),
    ]
    url = f"http://127.0.0.1:{scripted.server_port}/v1"
    out = OpenAIBackend(url, model="m", retries=2).generate([QUESTION], max_new_tokens=4)[0]
    assert (out.text, out.tokens, out.logprob) == ("A teacup.", 2, -1.0)
    times = [t for t, _, _ in scripted.seen]
    assert len(times) == 3 and times[2] - times[1] >= 0.95  # the server's Retry-After kept


def test_a_server_that_continues_a_prefilled_reply_gets_it_as_a_chat_message(scripted):
    # What vLLM answers: a one-token prefill costs one prompt token, not a new turn's five.
    scripted.script = [
        (200, {}, {**REPLY, "usage": {"prompt_tokens": 20, "completion_tokens": 1}}),
        (200, {}, {**REPLY, "usage": {"prompt_tokens": 21, "completion_tokens": 1}}),
        (200, {}, REPLY),
    ]
    url = f"http://127.0.0.1:{scripted.server_port}/v1"
    model = OpenAIBackend(url, model="m")
    out = model.generate([QUESTION], prefixes=["Dear tea lover,"])[0]
    assert model.prefill == "continue" and out.text == "Dear tea lover,A teacup."
    path, body = scripted.seen[-1][1:]
    assert path == "/v1/chat/completions" and body["continue_final_message"] is True
    assert body["messages"][-1] == {"role": "assistant", "content": "Dear tea lover,"}
    assert body["add_generation_prompt"] is False and body["logprobs"] is True


def test_retries_run_out_into_model_unavailable_with_the_last_reason(scripted, monkeypatch):
    monkeypatch.setenv("MARKETING_AI_LLM_BACKOFF", "0.01")
    scripted.script = [(502, {}, {"error": "bad gateway"})] * 2
    url = f"http://127.0.0.1:{scripted.server_port}/v1"
    with pytest.raises(ModelUnavailable, match="did not answer: HTTP 502 bad gateway .2 tries"):
        OpenAIBackend(url, model="m", retries=1).generate([QUESTION], max_new_tokens=4)
    assert issubclass(ModelUnavailable, ModelNotFound)


def test_nothing_listening_fails_fast_and_says_where(monkeypatch):
    monkeypatch.setenv("MARKETING_AI_LLM_BACKOFF", "0.01")
    url = f"http://127.0.0.1:{free_port()}/v1"
    started = time.perf_counter()
    model = OpenAIBackend(url, retries=1)  # constructing it reaches nothing
    with pytest.raises(ModelUnavailable, match=f"server at {url} did not answer: connection"):
        model.generate([QUESTION])
    assert time.perf_counter() - started < 5
    assert model.describe() == {
        "backend": "openai", "device": f"server {url}", "server": url, "model": None,
        "reachable": False, "offline_default": False,
    }  # fmt: skip


def test_the_packaged_models_chat_template_renders_its_chatml_prompt():
    template = ChatTemplate.load(llm.default_location())
    system = (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    )
    question = "<|im_start|>user\nDescribe a teacup in two sentences.<|im_end|>\n"
    assert template.tokens == {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}
    assert template.render(QUESTION) == (f"{system}<|im_end|>\n{question}<|im_start|>assistant\n")
    briefed = template.render([{"role": "system", "content": "Be brief."}, *QUESTION])
    assert briefed.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user")
    # Block tags on their own lines leave no blank lines, as transformers renders templates.
    layout = ChatTemplate("{% for m in messages %}\n{{ m['content'] }}\n    {% endfor %}\n")
    assert layout.render(QUESTION) == "Describe a teacup in two sentences.\n"
