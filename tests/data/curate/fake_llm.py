"""A local chat-completions server that misbehaves on purpose, for testing the LLM annotator.

Each instruction has a script: a list of behaviours consumed one per request, after which the server
answers with the instruction's `answers` entry. Behaviours:
  ("status", code[, retry_after])  reply with that HTTP status
  ("hang", seconds)                 wait (longer than the client's timeout), then answer
  ("content", text)                 reply 200 with this message content (reasoning, broken JSON, ...)
  ("body", bytes)                   reply 200 with this raw body (not a chat completion)
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def answer(*actions: tuple[str, str], num: int | None = None) -> str:
    return json.dumps({"num_actions": len(actions) if num is None else num,
                       "actions": [{"verb": v, "object": o} for v, o in actions]})


class FakeChatServer:
    def __init__(self, answers: dict[str, str] | None = None, script: dict[str, list] | None = None,
                 hold_s: float = 0.0):
        self.answers = dict(answers or {})
        self.script = defaultdict(list, {k: list(v) for k, v in (script or {}).items()})
        self.hold_s = hold_s            # every request takes this long (to observe concurrency)
        self.requests: Counter = Counter()
        self.auth_headers: list[str] = []
        self.bodies: list[dict] = []
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    def __enter__(self) -> "FakeChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def _next(self, instruction: str):
        with self._lock:
            self.requests[instruction] += 1
            steps = self.script[instruction]
            return steps.pop(0) if steps else ("content", self.answers.get(instruction, answer()))

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                instruction = body["messages"][-1]["content"].rsplit("Text: ", 1)[-1]
                with server._lock:
                    server.bodies.append(body)
                    server.auth_headers.append(self.headers.get("Authorization", ""))
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.hold_s)
                    self._reply(server._next(instruction))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _reply(self, step) -> None:
                kind = step[0]
                if kind == "status":
                    self.send_response(step[1])
                    if len(step) > 2:
                        self.send_header("Retry-After", str(step[2]))
                    data = json.dumps({"error": {"message": f"scripted {step[1]}"}}).encode()
                elif kind == "hang":
                    time.sleep(step[1])
                    return self._reply(("content", answer(("open", "drawer"))))
                else:
                    self.send_response(200)
                    data = step[1] if kind == "body" else json.dumps(
                        {"id": "x", "object": "chat.completion",
                         "choices": [{"index": 0, "message": {"role": "assistant", "content": step[1],
                                                              "reasoning_content": "thinking..."}}]}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
