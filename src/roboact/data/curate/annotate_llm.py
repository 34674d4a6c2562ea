"""LLM annotator over any OpenAI-compatible chat-completions API (the paper uses DeepSeek R1,
`deepseek-reasoner`), with only the standard library for HTTP.

Built for ~200k requests: bounded concurrency (a thread pool; the work is waiting on the network),
retries with exponential backoff on 429 / 5xx / timeouts / dropped connections (honouring Retry-After),
a request budget after which the remaining instructions are left *pending* (not rejected) for a rerun,
and a persistent SQLite cache written per answer. A refused key (401/403) stops the run at once, since
every further request would fail the same way; the answers obtained so far stay in the cache.
The API key is sent in the Authorization header only, and never logged or saved.
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable, Sequence

from roboact.data.curate.annotation import AnnotationFailure, Outcome
from roboact.data.curate.llm_answer import PROMPT_TEMPLATE, AnswerFormatError, parse_answer, render_messages
from roboact.data.curate.llm_cache import LLMCache, cache_key
from roboact.utils.config import check

log = logging.getLogger(__name__)
KEY_ENV_VARS = ("ROBOACT_LLM_API_KEY", "DEEPSEEK_API_KEY", "OPENAI_API_KEY")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def api_key_from_env() -> str:
    """First non-empty of ROBOACT_LLM_API_KEY, DEEPSEEK_API_KEY, OPENAI_API_KEY ('' if none)."""
    return next((os.environ[v] for v in KEY_ENV_VARS if os.environ.get(v)), "")


@dataclass
class LLMConfig:
    base_url: str = "https://api.deepseek.com"     # POST {base_url}/chat/completions
    model: str = "deepseek-reasoner"
    api_key: str = field(default="", repr=False)   # never printed, logged or saved
    timeout_s: float = 180.0                       # per request; reasoning models think for a while
    max_retries: int = 5                           # extra attempts after a transient error or a bad answer
    backoff_s: float = 1.0                         # first retry delay; doubles per attempt, with jitter
    max_backoff_s: float = 60.0
    concurrency: int = 8                           # requests in flight at once
    max_requests: int = 0                          # request budget for this run (0: unlimited)
    max_tokens: int = 0                            # 0: the server's default
    cache_path: str = ""                           # default: <out_dir>/llm_cache.sqlite

    def __post_init__(self) -> None:
        check(self.base_url.startswith(("http://", "https://")), "llm.base_url",
              f"must start with http:// or https://, got {self.base_url!r}")
        check(bool(self.model.strip()), "llm.model", "must be a non-empty model name")
        check(self.timeout_s > 0, "llm.timeout_s", f"must be > 0, got {self.timeout_s}")
        check(self.max_retries >= 0, "llm.max_retries", f"must be >= 0, got {self.max_retries}")
        check(self.backoff_s >= 0 and self.max_backoff_s >= 0, "llm.backoff_s", "delays must be >= 0")
        check(self.concurrency >= 1, "llm.concurrency", f"must be >= 1, got {self.concurrency}")
        check(self.max_requests >= 0, "llm.max_requests", f"must be >= 0 (0 = unlimited), got {self.max_requests}")
        check(self.max_tokens >= 0, "llm.max_tokens", f"must be >= 0, got {self.max_tokens}")


class TransientError(RuntimeError):
    """Worth retrying: rate limit, server error, timeout, dropped connection."""

    def __init__(self, msg: str, retry_after: float | None = None):
        super().__init__(msg)
        self.retry_after = retry_after


class RequestError(RuntimeError):
    """The server refused this request for good (4xx); asking again would not help."""


class LLMAuthError(RuntimeError):
    """The server refused the API key (401/403)."""


class ChatClient:
    """One chat-completions request per call; raises TransientError / RequestError / LLMAuthError."""

    def __init__(self, cfg: LLMConfig):
        self.cfg = cfg
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        host = urllib.parse.urlsplit(self.url).hostname or ""
        # never send loopback traffic through an environment proxy
        handlers = [urllib.request.ProxyHandler({})] if host in _LOOPBACK else []
        self._opener = urllib.request.build_opener(*handlers)

    def complete(self, messages: list[dict]) -> str:
        payload: dict = {"model": self.cfg.model, "messages": messages, "stream": False}
        if self.cfg.max_tokens:
            payload["max_tokens"] = self.cfg.max_tokens
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.cfg.api_key:
            headers["Authorization"] = f"Bearer {self.cfg.api_key}"
        req = urllib.request.Request(self.url, data=json.dumps(payload).encode("utf-8"), headers=headers,
                                     method="POST")
        return _message_content(self._send(req))

    def _send(self, req: urllib.request.Request) -> bytes:
        try:
            with self._opener.open(req, timeout=self.cfg.timeout_s) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            raise _http_error(e) from None
        except (TimeoutError, socket.timeout):
            raise TransientError(f"timed out after {self.cfg.timeout_s:g} s") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (TimeoutError, socket.timeout)):
                raise TransientError(f"timed out after {self.cfg.timeout_s:g} s") from None
            raise TransientError(f"connection failed ({e.reason})") from None
        except (ConnectionError, http.client.HTTPException) as e:
            raise TransientError(f"connection dropped ({type(e).__name__})") from None


def _http_error(e: urllib.error.HTTPError) -> Exception:
    detail = " ".join(e.read(300).decode("utf-8", "replace").split()) if e.fp else ""
    msg = f"HTTP {e.code}{': ' + detail if detail else ''}"
    if e.code in (401, 403):
        return LLMAuthError(msg)
    if e.code in (408, 409, 425, 429) or e.code >= 500:
        return TransientError(msg, retry_after=_retry_after(e.headers.get("Retry-After")))
    return RequestError(msg)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def _message_content(body: bytes) -> str:
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        snippet = body[:120].decode("utf-8", "replace")
        raise TransientError(f"response is not a chat completion: {snippet!r}") from None
    return content if isinstance(content, str) else ""


class RequestBudget:
    """Counts HTTP requests (retries included); `take` says whether one more may be sent."""

    def __init__(self, limit: int):
        self.limit, self.used = limit, 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.limit and self.used >= self.limit:
                return False
            self.used += 1
            return True


class LLMAnnotator:
    def __init__(self, cfg: LLMConfig, cache: LLMCache, progress: bool = True,
                 sleep: Callable[[float], None] = time.sleep):
        self.cfg, self.cache, self.progress, self._sleep = cfg, cache, progress, sleep
        self.name = f"llm:{cfg.model}"
        self.client = ChatClient(cfg)
        self.budget = RequestBudget(cfg.max_requests)
        self._stop = threading.Event()
        self._auth_error: LLMAuthError | None = None
        self._stats_lock = threading.Lock()
        self.stats = {"cache_hits": 0, "requests": 0, "answered": 0, "retried": 0, "bad_answers": 0,
                      "pending": 0, "failed": 0}

    def annotate_all(self, instructions: Sequence[str]) -> dict[str, Outcome]:
        out: dict[str, Outcome] = {}
        todo = [t for t in dict.fromkeys(instructions) if not self._from_cache(t, out)]
        log.info("LLM %s at %s: %d cached, %d to ask (concurrency %d, budget %s)", self.cfg.model,
                 self.cfg.base_url, len(out), len(todo), self.cfg.concurrency, self.cfg.max_requests or "none")
        self._ask_all(todo, out)
        if self._auth_error is not None:
            raise LLMAuthError(f"{self.client.url} refused the API key ({self._auth_error}); "
                               f"{len(self.cache)} answers are kept in {self.cache.path}") from None
        return out

    def close(self) -> None:
        self.cache.close()

    def _from_cache(self, text: str, out: dict[str, Outcome]) -> bool:
        content = self.cache.get(self._key(text))
        if content is None:
            return False
        try:
            out[text] = parse_answer(content, self.name)
        except AnswerFormatError:
            return False  # stored by an older parser that accepted it: ask again
        self._count("cache_hits")
        return True

    def _ask_all(self, todo: list[str], out: dict[str, Outcome]) -> None:
        from tqdm import tqdm

        from roboact.utils import shutdown

        pool = ThreadPoolExecutor(max_workers=self.cfg.concurrency)
        with tqdm(total=len(todo), desc="annotate (llm)", unit="text", disable=not self.progress) as bar:
            futures = {pool.submit(self._ask, text): text for text in todo}
            try:
                for fut in as_completed(futures):
                    out[futures[fut]] = fut.result()
                    bar.update()
                    shutdown.note(f"{bar.n} of {len(todo)} instructions annotated, answers kept in {self.cache.path}")
            except BaseException:  # Ctrl-C, SIGTERM: wait neither for the queued requests nor those in flight
                self._stop.set()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        pool.shutdown()

    def _ask(self, text: str) -> Outcome:
        """Ask until a parsed answer, a permanent refusal, the budget's end or the last retry."""
        last = ""
        transient = False
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                self._count("retried")
            if self._stop.is_set():
                return self._pending("pending: run stopped")
            if not self.budget.take():
                return self._pending("pending: budget")
            self._count("requests")
            try:
                content = self.client.complete(render_messages(text))
                ann = parse_answer(content, self.name)
            except TransientError as e:
                last, transient = str(e), True
                self._sleep(self._delay(attempt, e.retry_after))
                continue
            except AnswerFormatError as e:
                last, transient = str(e), False
                self._count("bad_answers")
                continue
            except RequestError as e:
                self._count("failed")
                return AnnotationFailure("llm_error", f"llm request refused: {e}")
            except LLMAuthError as e:
                self._auth_error = e
                self._stop.set()
                return self._pending("pending: run stopped")
            self.cache.put(self._key(text), self.cfg.model, text, content, _as_dict(ann))
            self._count("answered")
            return ann
        tries = self.cfg.max_retries + 1
        if transient:
            return self._pending(f"pending: llm unavailable ({last}; {tries} tries)")
        self._count("failed")
        return AnnotationFailure("llm_unparseable", f"llm answer unusable after {tries} tries: {last}")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.cfg.max_backoff_s)
        return min(self.cfg.backoff_s * 2 ** attempt, self.cfg.max_backoff_s) * random.uniform(0.5, 1.0)

    def _pending(self, reason: str) -> AnnotationFailure:
        self._count("pending")
        return AnnotationFailure("pending", reason, pending=True)

    def _key(self, text: str) -> str:
        return cache_key(self.cfg.model, PROMPT_TEMPLATE, text)

    def _count(self, name: str) -> None:
        with self._stats_lock:
            self.stats[name] += 1


def _as_dict(ann) -> dict:
    return {"num_actions": ann.num_actions, "actions": [{"verb": a.verb, "object": a.object} for a in ann.actions]}
