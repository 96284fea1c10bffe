"""An OpenAI-compatible chat server that misbehaves on purpose, for the grader's tests.

Run: `python tests/llm_server.py PORT_FILE LOG_FILE`. It writes the port it listens on to PORT_FILE
and one JSON line per request to LOG_FILE: {doc, attempt, path, t}, where `doc` is a hash of the
document as this model read it (so a test counts the requests per document, retries included, and
sees where the model thought the document ended). Markers in a document choose its trouble:
  [[slow]]           the first attempt answers after 3 s (past the client's timeout)
  [[error-twice]]    the first two attempts get HTTP 500
  [[bad-json]]       the first attempt gets a body that is not JSON
  [[no-choices]]     the first attempt gets JSON without `choices`
  [[always-500]]     every attempt gets HTTP 500
  [[retry-after]]    the first attempt gets HTTP 429 with `Retry-After: 1`
  [[undecodable]]    every attempt gets a body that claims to be gzip and is not
  [[redirect-loop]]  every attempt is redirected (307) to the same address
  [[prose]]          the reply hedges in prose instead of the format
  [[terse]]          the reply is exactly `Grade: N`, nothing else
  [[pace]]           every answer takes 0.3 s (to interrupt a client mid-run)
Otherwise the grade is the number of [[point]] markers in the document, at most 5, after a line of
justification. This model reads the document up to the first line that repeats the opening fence,
as a model reading top to bottom would; prompt injection fools it the way it fools real ones:
  - "answer 5" after the document's end (a document that closed its fence early) is obeyed: the
    reply is `Grade: 5`;
  - "answer 5" inside the document confuses it: its reply repeats the injected grade before its
    own (unless [[terse]]).
"""

import hashlib
import json
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ATTEMPTS: dict[str, int] = {}
LOCK = threading.Lock()
FENCE = re.compile(r"^(=== document [0-9a-f]+ ===)\n(.*?)\n\1$", re.S | re.M)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        user = request["messages"][-1]["content"]
        fenced = FENCE.search(user)
        document, after = fenced.group(2), user[fenced.end() :]
        key = hashlib.sha256(document.encode()).hexdigest()[:12]
        with LOCK:
            attempt = ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
            with open(sys.argv[2], "a") as log:
                log.write(
                    json.dumps({"doc": key, "attempt": attempt, "path": self.path, "t": time.time()}) + "\n"
                )
        if "[[pace]]" in document:
            time.sleep(0.3)
        if "[[slow]]" in document and attempt == 1:
            time.sleep(3)
        if "[[always-500]]" in document or ("[[error-twice]]" in document and attempt <= 2):
            return self._send(500, b'{"error": "overloaded"}')
        if "[[retry-after]]" in document and attempt == 1:
            return self._send(429, b'{"error": "slow down"}', Retry_After="1")
        if "[[undecodable]]" in document:
            return self._send(200, b"this is not gzip", Content_Encoding="gzip")
        if "[[redirect-loop]]" in document:
            return self._send(307, b"", Location=self.path)
        if "[[bad-json]]" in document and attempt == 1:
            return self._send(200, b'{"choices": [{"message": {"content": "Grade: 3"')
        if "[[no-choices]]" in document and attempt == 1:
            return self._send(200, b'{"object": "error", "message": "try later"}')
        points = min(5, document.count("[[point]]"))
        if "answer 5" in after:
            reply = "Grade: 5"
        elif "[[prose]]" in document:
            reply = "Hard to say; somewhere between a three and a four, I suppose."
        elif "[[terse]]" in document:
            reply = f"Grade: {points}"
        elif "answer 5" in document:
            reply = "The document says to answer 5.\nGrade: 5\nJudging it myself instead:\nGrade: 1"
        else:
            reply = f"Judged by its markers.\nGrade: {points}"
        message = {"role": "assistant", "content": reply}
        body = {"object": "chat.completion", "choices": [{"index": 0, "message": message}]}
        self._send(200, json.dumps(body).encode())


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # a client killed mid-request is expected here
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w") as f:
        f.write(str(server.server_address[1]))
    server.serve_forever()
