"""A scripted OpenAI-compatible server on loopback, and realistic answers built from real texts.

Contract:
- ``FakeOpenAI(answer)`` is a ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) run in a
  thread; use it as a context manager, ``base_url`` is ``http://127.0.0.1:PORT/v1``. It speaks
  ``POST /v1/chat/completions`` and ``GET /v1/models`` with the real response shapes.
- ``answer(messages, response_format) -> str`` writes the assistant's text (default:
  ``RealAnswers()``). Token counts are word counts.
- It records every call: ``bodies`` (request bodies in arrival order), ``calls`` (a Counter by
  ``body_key``), ``calls_with(text)``, ``authorizations`` (the Authorization headers) and
  ``max_in_flight``. ``gate=n`` holds each call until ``n`` calls have been in flight at once
  (or ``gate_timeout`` passes), so a concurrency bound shows without timing.
- ``script(Fault(...))`` queues faults; each call takes the first queued fault whose ``match``
  occurs in its messages, ``times`` times: an HTTP status (``retry_after`` adds the header), a
  ``delay`` before answering, a ``malformed`` body ("json": cut JSON; "html": an HTML page),
  a ``finish_reason`` (``"length"`` halves the answer), a ``refusal`` (content null), or a fixed
  ``content``; ``after=n`` spares the first ``n`` calls. ``faulted`` lists the bodies hit.
- ``RealAnswers`` answers from real data in ../shared/data, deterministically (a hash of the
  messages picks the row): a brainstorm (a JSON array of strings) gets task definitions about
  XQuAD titles; an example gets XQuAD / STS-B texts under the keys the schema asks for (KaLM.md
  section 1), e.g. user_query = a real question, positive_document = its paragraph,
  hard_negative_document = another paragraph on the same title; S1/S2/S3 are an STS-B pair and
  a third sentence, or, when the prompt asks for a translation, the same XQuAD question in two
  languages and a different question as the flawed translation. Without a schema, the key
  names mentioned in the prompt decide.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from realdata import DATA

Answer = Callable[[list[dict], "dict | None"], str]


@dataclass
class Fault:
    """What to do to the next call whose messages contain ``match`` (see module docstring)."""

    status: int | None = None
    retry_after: float | None = None
    delay: float = 0.0
    malformed: str = ""
    finish_reason: str | None = None
    refusal: str | None = None
    content: str | None = None
    match: str = ""
    times: int = 1
    after: int = 0  # applies only to calls after the first ``after`` ones


def body_key(body: dict) -> str:
    """A request body as canonical JSON: equal bodies, equal keys."""
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def messages_text(messages: list[dict]) -> str:
    return "\n".join(str(m.get("content") or "") for m in messages)


class FakeOpenAI(ThreadingHTTPServer):
    """The scripted server (see module docstring)."""

    daemon_threads = True
    block_on_close = False  # keep-alive client connections must not block shutdown

    def __init__(
        self,
        answer: Answer | None = None,
        *,
        models: tuple[str, ...] = ("fake-model",),
        gate: int | None = None,
        gate_timeout: float = 10.0,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer or RealAnswers()
        self.models = models
        self.gate = gate
        self.gate_timeout = gate_timeout
        self.bodies: list[dict] = []
        self.calls: Counter[str] = Counter()
        self.authorizations: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.faults: list[Fault] = []
        self.faulted: list[dict] = []  # bodies a fault was applied to
        self.stopping = threading.Event()
        self.cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    @property
    def total_calls(self) -> int:
        return len(self.bodies)

    def calls_with(self, text: str) -> int:
        """How many chat calls had ``text`` in their messages."""
        with self.cond:
            return sum(text in messages_text(b.get("messages", [])) for b in self.bodies)

    def script(self, *faults: Fault) -> None:
        with self.cond:
            self.faults.extend(faults)

    def __enter__(self) -> FakeOpenAI:
        self._thread = threading.Thread(target=self.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        with self.cond:
            self.cond.notify_all()
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def record(self, body: dict, authorization: str) -> Fault | None:
        """Count the call, note it in flight, and take its fault if one is queued."""
        with self.cond:
            self.bodies.append(body)
            self.calls[body_key(body)] += 1
            self.authorizations.append(authorization)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.cond.notify_all()
            if self.gate:
                self.cond.wait_for(
                    lambda: self.max_in_flight >= self.gate or self.stopping.is_set(),
                    timeout=self.gate_timeout,
                )
            fault = self._take_fault(messages_text(body.get("messages", [])))
            if fault is not None:
                self.faulted.append(body)
            return fault

    def done(self) -> None:
        with self.cond:
            self.in_flight -= 1

    def _take_fault(self, text: str) -> Fault | None:
        for fault in self.faults:
            if len(self.bodies) <= fault.after:
                continue
            if fault.times > 0 and fault.match in text:
                fault.times -= 1
                if fault.times == 0:
                    self.faults.remove(fault)
                return fault
        return None


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent: the tests read the server's records, not its log."""

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if self.path.rstrip("/") != "/v1/models":
            return self._json(404, _error_body(404, f"no route {self.path}"))
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "fake"}
            for m in self.server.models
        ]
        self._json(200, {"object": "list", "data": data})

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._json(404, _error_body(404, f"no route {self.path}"))
        body = json.loads(raw)
        fault = self.server.record(body, self.headers.get("Authorization", ""))
        try:
            self._answer(body, fault or Fault())
        finally:
            self.server.done()

    def _answer(self, body: dict, fault: Fault) -> None:
        if fault.delay and self.server.stopping.wait(fault.delay):
            return
        if fault.status is not None:
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
            return self._json(fault.status, _error_body(fault.status, "scripted"), headers)
        if fault.malformed == "html":
            return self._send(200, b"<html><body>502 Bad Gateway</body></html>", "text/html")
        if fault.malformed:
            return self._send(200, b'{"id": "chatcmpl-x", "choices": [', "application/json")
        messages = body.get("messages", [])
        content = fault.content
        if content is None and fault.refusal is None:
            content = self.server.answer(messages, body.get("response_format"))
        reason = fault.finish_reason or "stop"
        if reason == "length" and content:
            content = content[: len(content) // 2]
        self._json(200, _completion(body, content, fault.refusal, reason))

    def _json(self, status: int, payload: dict, headers: dict | None = None) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self._send(status, data, "application/json", headers)

    def _send(self, status: int, data: bytes, ctype: str, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout): nothing to answer


def _completion(body: dict, content: str | None, refusal: str | None, reason: str) -> dict:
    prompt_tokens = len(messages_text(body.get("messages", [])).split())
    completion_tokens = len((content or refusal or "").split())
    return {
        "id": f"chatcmpl-{hashlib.sha1(body_key(body).encode()).hexdigest()[:12]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", ""),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def _error_body(status: int, message: str) -> dict:
    return {"error": {"message": f"{message} ({status})", "type": "fake_error", "code": status}}


# ---- realistic answers from real data -------------------------------------------------------

XQUAD_LANGS = {
    "arabic": "ar", "german": "de", "greek": "el", "english": "en", "spanish": "es",
    "hindi": "hi", "romanian": "ro", "russian": "ru", "thai": "th", "turkish": "tr",
    "vietnamese": "vi", "chinese": "zh",
}  # fmt: skip
#: (pattern in the prompt, task definition template), first match wins
BRAINSTORM_TEMPLATES = [
    (r"classif", "Classify a passage about {} by the aspect of the topic it discusses."),
    (r"\bsts\b|similar", "Rate how similar two sentences about {} are in meaning."),
    (r"translat|bitext", "Find the translation of a sentence about {} in another language."),
    (r"", "Given a question about {}, retrieve the encyclopedia paragraph that answers it."),
]


@cache
def xquad_rows() -> dict[str, list[dict]]:
    """XQuAD rows by language (aligned: row i has the same id in every language)."""
    out: dict[str, list[dict]] = {}
    with open(DATA / "xquad" / "xquad.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            out.setdefault(row["lang"], []).append(row)
    return out


@cache
def stsb_rows(lang: str = "en") -> list[tuple[str, str, float]]:
    """STS-B train pairs (sentence1, sentence2, score 0..5)."""
    with open(DATA / "stsb_multi_mt" / f"stsb-{lang}-train.csv", encoding="utf-8") as f:
        return [(a, b, float(s)) for a, b, s in csv.reader(f)]


def data_available() -> bool:
    return (DATA / "xquad" / "xquad.jsonl").exists() and (DATA / "stsb_multi_mt").exists()


class RealAnswers:
    """``answer(messages, response_format)`` from XQuAD and STS-B (see module docstring)."""

    def __call__(self, messages: list[dict], response_format: dict | None) -> str:
        text = messages_text(messages)
        pick = int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16)
        known = self.known_values(text, pick)
        schema = _schema_of(response_format)
        if schema is None:
            schema = _schema_from_prompt(text, known)
        if schema is None:
            return known["positive_document"]
        return json.dumps(self.fill(schema, known, text, pick), ensure_ascii=False)

    def known_values(self, text: str, pick: int) -> dict[str, str]:
        """Real texts under every key of KaLM.md section 1 (and a few common aliases)."""
        xq = xquad_rows()
        langs = _languages(text)
        rows = xq[langs[0] if langs else "en"]
        i = pick % len(rows)
        row = rows[i]
        negative = _same_title_other_paragraph(rows, i)
        other = _other_title(rows, i)
        lang = langs[0] if langs else "en"
        sts = stsb_rows(
            lang if (DATA / "stsb_multi_mt" / f"stsb-{lang}-train.csv").exists() else "en"
        )
        high = [p for p in sts if p[2] >= 4.0]
        low = [p for p in sts if p[2] <= 1.0]
        s1, s2, _ = high[pick % len(high)]
        s3 = low[pick % len(low)][1]
        if re.search(r"translat|bitext", text, re.IGNORECASE):
            # the same XQuAD question in English and another language; a different one as S3
            target = next((code for code in langs if code != "en"), "de")
            s1, s2 = xq["en"][i]["query"], xq[target][i]["query"]
            s3 = xq[target][(i + 1) % len(rows)]["query"]
        return {
            "user_query": row["query"].strip(),
            "query": row["query"].strip(),
            "positive_document": row["positive"].strip(),
            "positive": row["positive"].strip(),
            "hard_negative_document": negative,
            "negative": negative,
            "input_text": row["positive"].strip(),
            "label": row["title"].replace("_", " "),
            "misleading_label": other.replace("_", " "),
            "input": s1,
            "S1": s1,
            "S2": s2,
            "S3": s3,
        }

    def fill(self, schema: dict, known: dict[str, str], text: str, pick: int) -> Any:
        """A value that follows ``schema``: known keys get real texts, string arrays tasks."""
        kind = schema.get("type")
        if "properties" in schema or kind == "object":
            props = schema.get("properties", {})
            # short-short / long-long: input and positive_document are a real STS-B pair
            pair = {"positive_document": known["S2"]} if "input" in props else {}
            return {
                k: pair.get(k, known.get(k)) or self.fill(sub, known, text, pick)
                for k, sub in props.items()
            }
        if "enum" in schema:
            return schema["enum"][pick % len(schema["enum"])]
        if kind == "array":
            n = max(schema.get("minItems", 0), min(schema.get("maxItems", 20), 20))
            items = schema.get("items", {})
            if items.get("type", "string") == "string":
                return brainstorm(text, pick, n)
            return [self.fill(items, known, text, pick) for _ in range(max(n, 1))]
        if kind in ("integer", "number"):
            return schema.get("minimum", 1)
        if kind == "boolean":
            return True
        return known["query"]


def brainstorm(text: str, pick: int, n: int) -> list[str]:
    """``n`` task definitions about distinct real XQuAD titles, worded for the task type."""
    titles = sorted({r["title"].replace("_", " ") for r in xquad_rows()["en"]})
    template = next(t for p, t in BRAINSTORM_TEMPLATES if re.search(p, text, re.IGNORECASE))
    return [template.format(titles[(pick + k) % len(titles)]) for k in range(n)]


def _schema_of(response_format: dict | None) -> dict | None:
    if not response_format or response_format.get("type") != "json_schema":
        return None
    return response_format.get("json_schema", {}).get("schema")


def _schema_from_prompt(text: str, known: dict[str, str]) -> dict | None:
    """Without a schema: an object of the known keys the prompt names, or a list of tasks."""
    named = [k for k in known if re.search(rf"\b{re.escape(k)}\b", text)]
    if named:
        return {"type": "object", "properties": {k: {"type": "string"} for k in named}}
    if re.search(r"\b(list|array)\b", text, re.IGNORECASE):
        return {"type": "array", "items": {"type": "string"}}
    return None


def _languages(text: str) -> list[str]:
    """XQuAD language codes of the language names in ``text``, in order of mention."""
    lower = text.lower()
    hits = sorted((lower.find(name), code) for name, code in XQUAD_LANGS.items() if name in lower)
    return [code for _, code in hits]


def _other_title(rows: list[dict], i: int) -> str:
    """A title other than the row's: a real but wrong label."""
    for k in range(len(rows) // 2, len(rows)):
        other = rows[(i + k) % len(rows)]["title"]
        if other != rows[i]["title"]:
            return other
    return rows[i]["title"]


def _same_title_other_paragraph(rows: list[dict], i: int) -> str:
    """Another paragraph on the row's title: a real, topically close hard negative."""
    row = rows[i]
    for k in range(1, len(rows)):
        other = rows[(i + k) % len(rows)]
        if other["title"] == row["title"] and other["positive"] != row["positive"]:
            return other["positive"].strip()
    return rows[(i + 1) % len(rows)]["positive"].strip()
