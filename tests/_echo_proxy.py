"""A hostile auth proxy on 127.0.0.1 that says the credentials it got back, in every way an
answer can carry text; the first part of the path picks the way:

- ``/textN/...``: 401, a text body echoing the request's headers, ``Authorization`` first,
  its credential starting a few bytes before byte ``N`` (where an excerpt is cut);
- ``/json/...``: 500, a Prometheus API error whose message echoes them;
- ``/reason/...``: 401 with the ``Authorization`` value in the reason phrase;
- ``/page/...``: 200, a metrics page whose ``secure_metric`` line holds it (unparsable);
- ``/warn/...``: 200, a Prometheus answer with one series and a warning echoing it.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

_NOT_ECHOED = {"host", "content-length", "content-type", "accept-encoding", "connection"}


class _Handler(BaseHTTPRequestHandler):
    requests: list[dict[str, str]]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer()

    def _answer(self) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        type(self).requests.append(headers)
        auth = headers.get("authorization", "")
        said = "".join(
            f"{name}: {value}\n" for name, value in headers.items() if name not in _NOT_ECHOED
        )
        way = self.path.strip("/").split("/")[0]
        reason = None
        if cut := re.fullmatch(r"text(\d+)", way):
            # The credential (after "Bearer " or "Basic ") starts 5 bytes before the cut.
            lead = "denied, you sent: "
            pad = max(0, int(cut[1]) - 5 - len(lead) - len("authorization: Bearer "))
            status, kind = 401, "text/plain"
            body = ("x" * pad + lead + f"authorization: {auth}\n" + said).encode()
        elif way == "json":
            status, kind = 500, "application/json"
            error = f"proxy refused the credentials: {said}"
            body = json.dumps({"status": "error", "errorType": "internal", "error": error})
            body = body.encode()
        elif way == "reason":
            status, kind, reason = 401, "text/plain", f"Unauthorized {auth}"
            body = b"no"
        elif way == "page":
            status, kind = 200, "text/plain; version=0.0.4"
            body = f'secure_metric{{got="x"}} {auth}\n'.encode()
        else:
            status, kind = 200, "application/json"
            result = [{"metric": {"__name__": "up"}, "value": [1, "1"]}]
            body = json.dumps(
                {
                    "status": "success",
                    "data": {"resultType": "vector", "result": result},
                    "warnings": [f"the proxy saw {said}"],
                }
            ).encode()
        self.send_response(status, reason)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class EchoingProxy:
    def __init__(self) -> None:
        self.handler = type("Handler", (_Handler,), {"requests": []})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self.handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def requests(self) -> list[dict[str, str]]:
        """The headers of each request received."""
        return self.handler.requests

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def shown_pieces(text: str, secrets: Iterable[str], piece: int = 6) -> list[str]:
    """The pieces of ``secrets`` (any ``piece`` characters in a row, as written or escaped
    by JSON, ``repr``, HTML or a URL) that show in ``text``: a secret cut in two must not
    show either."""
    found = []
    for secret in secrets:
        forms = {secret, json.dumps(secret)[1:-1], repr(secret)[1:-1], html.escape(secret)}
        forms.add(quote(secret, safe=""))
        for form in forms:
            found += [form[i : i + piece] for i in range(len(form) - piece + 1)]
    return sorted({one for one in found if one in text and len(_ESCAPES.sub("", one)) >= 3})


_ESCAPES = re.compile(r"&[a-z#0-9]*;?|%[0-9A-F]{0,2}|\\\\.?")
"""Pieces of escapes (``&quot;``, ``%22``, ``\\"``): a piece made mostly of them is ordinary
escaped text, not a secret."""
