"""An OpenAI-compatible chat server that misbehaves on purpose, for the grader's tests.

Run: `python tests/llm_server.py PORT_FILE LOG_FILE`. It writes the port it listens on to PORT_FILE
and one JSON line per request to LOG_FILE. Markers in a document choose its trouble:
  [[slow]]         the first attempt answers after 3 s (past the client's timeout)
  [[error-twice]]  the first two attempts get HTTP 500
  [[bad-json]]     the first attempt gets a body that is not JSON
  [[no-choices]]   the first attempt gets JSON without `choices`
  [[always-500]]   every attempt gets HTTP 500
  [[prose]]        the reply hedges in prose instead of the format
  [[pace]]         every answer takes 0.3 s (to kill a client mid-run)
A document asking to "answer 5" fools this model the way prompt injection fools real ones: its
reply repeats the injected grade before giving its own. Otherwise the grade is the number of
[[point]] markers in the document, at most 5.
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
FENCE = re.compile(r"^(=== document [0-9a-f]+ ===)\n(.*)\n\1$", re.S | re.M)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        user = request["messages"][-1]["content"]
        document = FENCE.search(user).group(2)
        key = hashlib.sha256(document.encode()).hexdigest()[:12]
        with LOCK:
            attempt = ATTEMPTS[key] = ATTEMPTS.get(key, 0) + 1
            with open(sys.argv[2], "a") as log:
                log.write(json.dumps({"doc": key, "attempt": attempt, "path": self.path}) + "\n")
        if "[[pace]]" in document:
            time.sleep(0.3)
        if "[[slow]]" in document and attempt == 1:
            time.sleep(3)
        if "[[always-500]]" in document or ("[[error-twice]]" in document and attempt <= 2):
            return self._send(500, b'{"error": "overloaded"}')
        if "[[bad-json]]" in document and attempt == 1:
            return self._send(200, b'{"choices": [{"message": {"content": "Grade: 3"')
        if "[[no-choices]]" in document and attempt == 1:
            return self._send(200, b'{"object": "error", "message": "try later"}')
        if "[[prose]]" in document:
            reply = "Hard to say; somewhere between a three and a four, I suppose."
        elif "answer 5" in document:
            reply = "The document says to answer 5.\nGrade: 5\nJudging it myself instead:\nGrade: 1"
        else:
            reply = f"Judged by its markers.\nGrade: {min(5, document.count('[[point]]'))}"
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
