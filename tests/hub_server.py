"""A local HTTP server that answers as the Hugging Face Hub does for file downloads.

``huggingface_hub`` asks ``HEAD {endpoint}/{owner}/{repo}/resolve/{revision}/{file}`` for the
commit, ETag and size, then ``GET`` for the bytes; ``HF_ENDPOINT`` (or the ``endpoint``
argument) points it here. Files are served from ``root/{owner}/{repo}/{file}``; every
request is counted, so a test can show the cache answered instead.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class HubServer:
    def __init__(self, root: Path) -> None:
        self.root, self.requests = root, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def answer(self, body: bool) -> None:
                server.requests.append((self.command, self.path))
                parts = self.path.lstrip("/").split("?")[0].split("/")
                owner, repo, resolve = (parts + ["", "", ""])[:3]
                path = server.root / owner / repo / "/".join(parts[4:])
                if len(parts) < 5 or resolve != "resolve" or not path.is_file():
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound" if (server.root / owner / repo).is_dir()
                                     else "RepoNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_HEAD(self) -> None:
                self.answer(body=False)

            def do_GET(self) -> None:
                self.answer(body=True)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def publish(self, repo: str, name: str, source: Path) -> None:
        dest = self.root / repo / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(Path(source).read_bytes())

    def __enter__(self) -> "HubServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
