"""An HTTP fake of the Kubeflow Pipelines v2beta1 REST API (what ``kfp.Client`` 2.x
calls: healthz, experiments, runs), on 127.0.0.1 in a background thread, so the unchanged
client talks to it over real HTTP. It keeps what arrived (to compare with what was
compiled), checks a bearer token when told to, and plays a run through a script of
states, as the backend would report them."""

import json
import re
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = "/apis/v2beta1"
NOW = "2026-11-30T00:00:00Z"


class FakePipelines:
    """``token``: the bearer token it accepts (None: no auth); ``forbidden``: a token it
    knows but refuses (403). ``script``: for each GET of a run, its state and its tasks'
    states; the last entry repeats."""

    def __init__(self, *, token=None, forbidden=None, script=None, experiments=()):
        self.token, self.forbidden = token, forbidden
        self.script = list(script or [("SUCCEEDED", {})])
        self.experiments = {}
        for name in experiments:
            self._add_experiment({"display_name": name})
        self.runs = {}
        self.requests = []
        self.gets = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method):
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null") if length else None
                auth = self.headers.get("Authorization")
                fake.requests.append({"method": method, "path": url.path,
                                      "query": dict(urllib.parse.parse_qsl(url.query)),
                                      "body": body, "authorized": auth is not None})
                if fake.token is not None:
                    if auth == f"Bearer {fake.forbidden}":
                        return self._send(403, {"code": 7, "message": "forbidden"})
                    if auth != f"Bearer {fake.token}":
                        return self._send(401, {"code": 16, "message": "unauthenticated"})
                status, answer = fake.route(method, url.path, body,
                                            dict(urllib.parse.parse_qsl(url.query)))
                self._send(status, answer)

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def _add_experiment(self, body):
        exp = {"experiment_id": str(uuid.uuid4()), "display_name": body["display_name"],
               "namespace": body.get("namespace") or "", "created_at": NOW,
               "storage_state": "AVAILABLE"}
        self.experiments[exp["experiment_id"]] = exp
        return exp

    def route(self, method, path, body, query):
        if (method, path) == ("GET", f"{PREFIX}/healthz"):
            return 200, {"multi_user": False}
        if (method, path) == ("GET", f"{PREFIX}/experiments"):
            wanted = None
            if query.get("filter"):
                predicates = json.loads(query["filter"]).get("predicates", [])
                wanted = next((p.get("stringValue") or p.get("string_value")
                               for p in predicates if p.get("key") == "display_name"), None)
            found = [e for e in self.experiments.values()
                     if wanted is None or e["display_name"] == wanted]
            return 200, ({"experiments": found, "total_size": len(found)} if found else {})
        if (method, path) == ("POST", f"{PREFIX}/experiments"):
            return 200, self._add_experiment(body)
        if (method, path) == ("POST", f"{PREFIX}/runs"):
            if body.get("experiment_id") not in self.experiments:
                return 404, {"code": 5, "message": "experiment not found"}
            run = {**body, "run_id": str(uuid.uuid4()), "state": "PENDING",
                   "created_at": NOW, "storage_state": "AVAILABLE"}
            self.runs[run["run_id"]] = run
            return 200, run
        match = re.fullmatch(f"{PREFIX}/runs/([^/]+)", path)
        if method == "GET" and match:
            run = self.runs.get(match.group(1))
            if run is None:
                return 404, {"code": 5, "message": "run not found"}
            state, tasks = self.script[min(self.gets, len(self.script) - 1)]
            self.gets += 1
            answer = {**run, "state": state, "run_details": {"task_details": [
                {"task_id": f"t{i}", "display_name": t, "state": s, "run_id": run["run_id"]}
                for i, (t, s) in enumerate(tasks.items())]}}
            if state == "FAILED":
                answer["error"] = {"code": 2, "message": "task smoke-test failed"}
            return 200, answer
        return 404, {"code": 5, "message": f"no route {method} {path}"}
