"""A local HTTP server laid out as a data publisher (PhysioNet, Zenodo) serves its files.

Range requests work (resumed downloads); a file can be made to drop its connection once,
or to arrive corrupted; every request is recorded.
"""

from __future__ import annotations

import contextlib
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Mirror(BaseHTTPRequestHandler):
    """Serves ``root`` under the URL path ``prefix``."""

    root: Path
    prefix: str = "/"
    drop_once: set = set()
    corrupt: set = set()
    requests: list = []

    def do_GET(self):
        name = self.path.removeprefix(self.prefix)
        path = self.root / name
        self.requests.append((name, self.headers.get("Range")))
        if not self.path.startswith(self.prefix) or not path.is_file():
            self.send_error(404)
            return
        body = path.read_bytes()
        if name in self.corrupt:
            body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
        start = int(re.match(r"bytes=(\d+)-", self.headers["Range"]).group(1)) if self.headers.get("Range") else 0
        if start >= len(body):  # as real servers answer a range past the end
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if name in self.drop_once:
            self.drop_once.discard(name)
            self.wfile.write(body[start:start + len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(2)  # the connection drops mid-file
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass



@contextlib.contextmanager
def serve(root: Path, prefix: str = "/"):
    """(handler class, base URL) of a server publishing ``root`` at ``prefix``."""
    handler = type("Served", (Mirror,), {"root": root, "prefix": prefix, "drop_once": set(), "corrupt": set(),
                                         "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield handler, f"http://127.0.0.1:{server.server_port}{prefix}"
    finally:
        server.shutdown()
        server.server_close()
