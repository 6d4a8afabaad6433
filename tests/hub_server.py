"""A local HTTP server that answers as the Hugging Face Hub does for file downloads and uploads.

``huggingface_hub`` asks ``HEAD {endpoint}/{owner}/{repo}/resolve/{revision}/{file}`` for the
commit, ETag and size, then ``GET`` for the bytes; ``HF_ENDPOINT`` (or the ``endpoint``
argument) points it here. Files are served from ``root/{owner}/{repo}/{file}``; every
request is counted, so a test can show the cache answered instead. Uploads (``HfApi.create_repo``,
``upload_folder``) write there: the repository is created, every file goes up inline.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

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

            def do_POST(self) -> None:
                """Uploads as huggingface_hub makes them: create the repository, ask how each file
                goes up (all inline here), commit them (NDJSON, base64 contents)."""
                server.requests.append((self.command, self.path))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.lstrip("/").split("?")[0].split("/")
                if parts[:3] == ["api", "repos", "create"]:
                    request = json.loads(body)
                    repo = f"{request.get('organization') or request.get('organisation')}/{request['name']}" \
                        if "/" not in request["name"] else request["name"]
                    (server.root / repo).mkdir(parents=True, exist_ok=True)
                    return self.reply({"url": f"{server.url}/{repo}", "name": repo})
                if parts[:2] == ["api", "validate-yaml"]:  # a model card: its front matter must be YAML
                    content = json.loads(body)["content"]
                    try:
                        yaml.safe_load(content.split("---")[1] if content.startswith("---") else content)
                    except yaml.YAMLError as error:
                        return self.reply({"errors": [{"message": str(error)}]}, 400)
                    return self.reply({"warnings": []})
                if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "preupload":
                    files = json.loads(body)["files"]
                    return self.reply({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                 for f in files]})
                if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "commit":
                    repo = server.root / parts[2] / parts[3]
                    for line in body.decode().splitlines():
                        entry = json.loads(line)
                        if entry["key"] == "file":
                            dest = repo / entry["value"]["path"]
                            dest.parent.mkdir(parents=True, exist_ok=True)
                            dest.write_bytes(base64.b64decode(entry["value"]["content"]))
                    return self.reply({"commitUrl": f"{server.url}/{parts[2]}/{parts[3]}/commit/{COMMIT}",
                                       "commitOid": COMMIT, "pullRequestUrl": None})
                self.reply({"error": f"not served here: {self.path}"}, 404)

            def reply(self, document: dict, status: int = 200) -> None:
                data = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

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


@contextlib.contextmanager
def hub_for_pushes(folder: Path, monkeypatch):
    """The server as ``HF_ENDPOINT``, with a token and a fresh ``HF_HOME`` (its cache), for a test that
    pushes and reads back (in a fresh interpreter: huggingface_hub fixes its cache folder at import)."""
    monkeypatch.setenv("HF_HOME", str(folder / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    with HubServer(folder / "hub") as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", "a-token")
        yield hub
