"""Answers read, never held (issue 22): on a route whose response layers only watch (the AI
gateway's token usage), Envoy's answer reader reads what they need as the answer passes and hands
it to the sidecar once it has passed, so a streamed answer reaches the client whole while the
sidecar is stalled or dead, and the stream's usage is still charged to the caller's budget."""
from __future__ import annotations

import json
import os
import signal
import threading

import pytest
from extproc_lab.keys import secret_hash
from tests.support.e2e_support import request, started_stack, wait_for
from tests.support.llm_upstream import COMPLETION_TOKENS, FakeLlm

# Fault paths: every test here once through each transport (tests/e2e/conftest.py); the stack
# fixtures take `transport` too, so each transport gets stacks of its own.
pytestmark = pytest.mark.usefixtures("transport")

PROMPT_TOKENS = 1000
PIECES, PAUSE_AT = 40, 20
ENFORCING, REPORTS = "http.ingress.ext_proc.", "cluster.extproc_answers."
SECRET = "gate-secret-of-at-least-32-characters"
POLICY = f"""
version: 1
access:
  service_tokens:
    agent: {{client_id: agent.access, secret_hash: {secret_hash(SECRET)}}}
  apps: [{{name: llm, routes: [llm], policies: [{{name: agents, include: [{{service_token: [agent]}}]}}]}}]
defaults:
  layers:
    access: {{budget_ms: 50}}
routes:
  - name: llm
    match: {{path_prefix: /v1/}}
    layers:
      ai_gateway:
        budget_ms: 200
        groups:
          "*": {{models: ["gpt-4o*"], tokens_per_day: 2000}}
        audit_path: AUDIT
"""
PROMPT = "Tell me a long story about the sea, " * 4


@pytest.fixture
def llm():
    fake = FakeLlm(PROMPT_TOKENS, pieces=PIECES, pause_at=PAUSE_AT)
    yield fake
    fake.resume.set()
    fake.close()


@pytest.fixture
def stack(transport, llm, tmp_path):
    audit = tmp_path / "ai-audit.jsonl"
    with started_stack("answers observed", POLICY.replace("AUDIT", str(audit)), tmp_path,
                       upstream_port=llm.port, sidecar_args=["--drain-seconds", "1"]) as s:
        s.audit = audit
        yield s


def chat(stack, stream: bool = True):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "stream": stream,
            "max_tokens": 50}
    headers = [("x-access-client-id", "agent.access"), ("x-access-client-secret", SECRET),
               ("content-type", "application/json")]
    return request(stack.listen_port, "POST", "/v1/chat/completions", headers=headers,
                   body=json.dumps(body).encode(), timeout=30)


def streamed_in_background(stack) -> tuple[threading.Thread, list]:
    answers: list = []
    thread = threading.Thread(target=lambda: answers.append(chat(stack)), daemon=True)
    thread.start()
    return thread, answers


def assert_whole(response) -> None:
    """Every piece of the echo in order, then the usage event and [DONE]: nothing cut."""
    assert response.status == 200, response
    events = [line.removeprefix(b"data: ") for line in response.body.split(b"\n\n") if line]
    assert events[-1] == b"[DONE]" and json.loads(events[-2])["usage"]["completion_tokens"] == COMPLETION_TOKENS
    pieces = [json.loads(event)["choices"][0]["delta"]["content"] for event in events[:-2]]
    assert len(pieces) == PIECES and "".join(pieces) == PROMPT


def usage_records(stack) -> list[dict]:
    # Whole lines only: the audit writer's thread may be halfway through the last one.
    lines = stack.audit.read_text().split("\n")[:-1] if stack.audit.exists() else []
    return [record for record in map(json.loads, lines) if record.get("kind") == "llm_usage"]


def stats(stack, prefix: str) -> dict[str, int]:
    return {name.removeprefix(prefix): value for name, value in stack.envoy.stats(prefix).items()
            if name.count(".") == prefix.count(".")}


def test_the_answer_is_read_beside_the_stream_and_its_usage_charged(stack, llm):
    assert stack.observed.routes == ("llm",)  # the harness gave the route the observe-only filter
    llm.resume.set()
    assert_whole(chat(stack))
    (usage,) = wait_for(lambda: usage_records(stack) or None, 10, what="the stream's llm_usage record")
    assert usage["tokens"] == usage["charged_tokens"] == PROMPT_TOKENS + COMPLETION_TOKENS and usage["stream"]
    # The request's own stream saw the request only (headers, body); of the answer's 40-odd chunks
    # the sidecar got one report, after the answer had passed.
    enforcing = stats(stack, ENFORCING)
    assert enforcing["streams_started"] == 1 and enforcing["stream_msgs_sent"] == 2
    assert stats(stack, REPORTS)["upstream_rq_total"] == 1
    # 1,007 tokens charged of 2,000 a day: a second call fits, a third does not.
    llm.resume.set()
    assert_whole(chat(stack))
    wait_for(lambda: len(usage_records(stack)) == 2 or None, 10, what="the second llm_usage record")
    refused = chat(stack, stream=False)
    assert refused.status == 429 and int(refused.header("retry-after")) >= 1


def test_a_stalled_sidecar_neither_slows_nor_cuts_the_answer_and_still_charges_it(stack, llm):
    llm.resume.set()
    assert_whole(chat(stack))  # warm: connections to the sidecar are open
    llm.mid_stream.clear()
    llm.resume.clear()
    thread, answers = streamed_in_background(stack)
    assert llm.mid_stream.wait(15)  # the answer's first half has gone by
    pid = stack.sidecar.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        llm.resume.set()
        thread.join(30)
        assert answers, "the client still waits for its answer"
        assert_whole(answers[0])  # the whole answer while the sidecar could not run at all
    finally:
        os.kill(pid, signal.SIGCONT)
    # The report waited for the sidecar (up to its 5 s timeout): once it runs again, it is read.
    wait_for(lambda: len(usage_records(stack)) == 2 or None, 10, what="the stalled answer's llm_usage record")
    assert [r["charged_tokens"] for r in usage_records(stack)] == [PROMPT_TOKENS + COMPLETION_TOKENS] * 2


def test_a_sidecar_that_dies_mid_answer_does_not_cut_it(stack, llm):
    thread, answers = streamed_in_background(stack)
    assert llm.mid_stream.wait(15)
    stack.sidecar.process.kill()
    stack.sidecar.process.wait(10)
    llm.resume.set()
    thread.join(30)
    assert answers, "the client still waits for its answer"
    assert_whole(answers[0])
    # Only the request is checked by a sidecar that is down: the next call fails closed.
    assert chat(stack).status == 500


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
def test_an_answer_cut_into_small_chunks_is_still_read_for_its_usage(tmp_path, crlf):
    fake = FakeLlm(PROMPT_TOKENS, pieces=4, split=7, crlf=crlf)  # the usage event in 7-byte pieces
    audit = tmp_path / "ai-audit.jsonl"
    try:
        with started_stack("answers cut", POLICY.replace("AUDIT", str(audit)), tmp_path,
                           upstream_port=fake.port, sidecar_args=["--drain-seconds", "1"]) as s:
            s.audit = audit
            response = chat(s)
            assert response.status == 200 and response.body.endswith(b"data: [DONE]" + fake.line_end * 2)
            (usage,) = wait_for(lambda: usage_records(s) or None, 10, what="the cut answer's llm_usage record")
            assert usage["tokens"] == PROMPT_TOKENS + COMPLETION_TOKENS
    finally:
        fake.close()
