"""A local stand-in for the Hugging Face Hub, for upload/download tests without internet.

It speaks the subset of the Hub HTTP API that the real ``huggingface_hub`` client (with
``HF_HUB_DISABLE_XET=1``), ``transformers`` and ``datasets`` use to push and load models and
datasets: repo creation and info, ``preupload`` + git-LFS batch upload + NDJSON ``commit``, tree
listing, ``paths-info``, ``resolve`` downloads (HEAD/GET/Range), refs, commits, branches and
``validate-yaml``. Repos live in memory with their blobs on disk, one commit history per branch.
Unknown routes answer 404 and are recorded in ``LocalHubServer.unhandled`` so a test can show
what a new client version started to call.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import json
import re
import secrets
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

_REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# Files the real Hub stores in LFS whatever their content (its default .gitattributes patterns).
_LFS_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".npy", ".npz",
    ".parquet", ".arrow", ".zip", ".gz", ".tar", ".png", ".jpg", ".jpeg", ".mp4", ".wav", ".flac",
    ".mp3", ".pkl", ".model",
)  # fmt: skip
_REGULAR_MAX_SIZE = 10 * 1024 * 1024
_DEFAULT_GITATTRIBUTES = (
    b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.parquet filter=lfs diff=lfs merge=lfs -text\n"
)


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass(frozen=True)
class _Entry:
    """One file in a commit: its content is ``blobs/<sha256>``."""

    sha256: str
    size: int
    lfs: bool

    @property
    def pointer(self) -> bytes:
        return _lfs_pointer(self.sha256, self.size)


@dataclass
class _Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict[str, _Entry]


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)
    next_pr: int = 1


class HubError(Exception):
    """An HTTP error answered with the Hub's ``X-Error-Code`` header, so the client raises its typed error."""

    def __init__(
        self, status: int, message: str, code: str | None = None, commit: str | None = None, **extra: Any
    ):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit
        self.extra = extra  # more fields of the JSON error body


class HubState:
    """Repos, commits and blobs. All mutations happen under one lock (tests are tiny)."""

    def __init__(self, root: Path, user: str, token: str):
        self.root, self.user, self.token = root, user, token
        self.blob_dir = root / "blobs"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.repos: dict[tuple[str, str], _Repo] = {}
        self.lock = threading.RLock()
        self._counter = 0

    # ---- blobs -------------------------------------------------------------------------------
    def blob_path(self, sha256: str) -> Path:
        return self.blob_dir / sha256

    def has_blob(self, sha256: str, size: int | None = None) -> bool:
        path = self.blob_path(sha256)
        return path.exists() and (size is None or path.stat().st_size == size)

    def put_blob(self, data: bytes, expected_sha256: str | None = None) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if expected_sha256 is not None and sha != expected_sha256:
            raise HubError(400, f"content sha256 {sha} does not match oid {expected_sha256}")
        path = self.blob_path(sha)
        if not path.exists():
            tmp = path.with_suffix(f".tmp{threading.get_ident()}")
            tmp.write_bytes(data)
            tmp.replace(path)
        return sha

    # ---- repos and revisions ------------------------------------------------------------------
    def repo(self, repo_type: str, repo_id: str, authorized: bool) -> _Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not authorized):
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def create_repo(self, repo_type: str, repo_id: str, private: bool, url: str) -> _Repo:
        with self.lock:
            if (repo_type, repo_id) in self.repos:
                raise HubError(409, f"You already created this {repo_type} repo", url=url)
            repo = _Repo(repo_type, repo_id, private, _now())
            self.repos[(repo_type, repo_id)] = repo
            sha = self.put_blob(_DEFAULT_GITATTRIBUTES)
            files = {".gitattributes": _Entry(sha, len(_DEFAULT_GITATTRIBUTES), lfs=False)}
            self._append_commit(repo, "main", None, "initial commit", "", files)
            return repo

    def resolve_revision(self, repo: _Repo, revision: str) -> _Commit:
        if revision in repo.branches:
            return repo.commits[repo.branches[revision]]
        if re.fullmatch(r"[0-9a-f]{7,40}", revision):
            matches = [oid for oid in repo.commits if oid.startswith(revision)]
            if len(matches) == 1:
                return repo.commits[matches[0]]
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _append_commit(
        self, repo: _Repo, branch: str, parent: str | None, title: str, message: str, files: dict
    ) -> _Commit:
        self._counter += 1
        seed = f"{repo.repo_id}\0{branch}\0{parent}\0{title}\0{self._counter}\0{secrets.token_hex(8)}"
        commit = _Commit(hashlib.sha1(seed.encode()).hexdigest(), parent, title, message, _now(), files)
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit

    def commit(
        self, repo: _Repo, revision: str, lines: list[dict], create_pr: bool
    ) -> tuple[_Commit, int | None]:
        """Apply an NDJSON commit payload (header, file, lfsFile, deletedFile, deletedFolder)."""
        with self.lock:
            if revision not in repo.branches:
                raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            head = repo.commits[repo.branches[revision]]
            header = next((line["value"] for line in lines if line.get("key") == "header"), {})
            parent_commit = header.get("parentCommit")
            if parent_commit and not create_pr and not head.oid.startswith(parent_commit):
                raise HubError(412, f"Parent commit {parent_commit} is not the head of {revision}")
            base = repo.commits[self.resolve_revision(repo, parent_commit).oid] if parent_commit else head
            files = dict(base.files)
            for line in lines:
                key, value = line.get("key"), line.get("value", {})
                if key == "file":
                    data = (
                        base64.b64decode(value["content"])
                        if value.get("encoding") == "base64"
                        else value["content"].encode()
                    )
                    files[value["path"]] = _Entry(self.put_blob(data), len(data), lfs=False)
                elif key == "lfsFile":
                    oid = value["oid"]
                    if not self.has_blob(oid):
                        raise HubError(422, f"LFS object {oid} for {value['path']} was never uploaded")
                    size = self.blob_path(oid).stat().st_size
                    files[value["path"]] = _Entry(oid, size, lfs=True)
                elif key == "deletedFile":
                    if value["path"] not in files:
                        raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                    del files[value["path"]]
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    for path in [p for p in files if p.startswith(prefix)]:
                        del files[path]
                elif key != "header":
                    raise HubError(400, f"Unknown commit operation {key!r}")
            branch, pr_number = revision, None
            if create_pr:
                pr_number = repo.next_pr
                repo.next_pr += 1
                branch = f"refs/pr/{pr_number}"
            title = header.get("summary", "")
            commit = self._append_commit(repo, branch, base.oid, title, header.get("description", ""), files)
            return commit, pr_number

    def history(self, repo: _Repo, commit: _Commit) -> list[_Commit]:
        out, oid = [], commit.oid
        while oid is not None:
            out.append(repo.commits[oid])
            oid = repo.commits[oid].parent
        return out

    def last_commit_touching(self, repo: _Repo, commit: _Commit, path: str) -> _Commit:
        history = self.history(repo, commit)
        for newer, older in zip(history, history[1:] + [None]):
            mine = {p: e for p, e in newer.files.items() if p == path or p.startswith(path + "/")}
            theirs = (
                {}
                if older is None
                else {p: e for p, e in older.files.items() if p == path or p.startswith(path + "/")}
            )
            if mine != theirs:
                return newer
        return history[-1]


def _dir_oid(commit: _Commit, path: str) -> str:
    listing = "".join(f"{p}{e.sha256}" for p, e in sorted(commit.files.items()) if p.startswith(path + "/"))
    return hashlib.sha1(listing.encode()).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalHubServer

    # ---- plumbing ------------------------------------------------------------------------------
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence per-request logs
        return

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False
    ) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(payload).encode(), headers)

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {self.server.state.token}"

    def _require_auth(self) -> None:
        if not self._authorized():
            raise HubError(401, "Invalid credentials in Authorization header")

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        segments = [unquote(s) for s in url.path.split("/")[1:]]
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self._body() if method in ("POST", "PUT", "DELETE") else b""
        try:
            if not self._route(method, segments, query, body):
                self.server.unhandled.append(f"{method} {self.path}")
                raise HubError(404, f"No local-hub route for {method} {url.path}")
        except HubError as err:
            headers = {"X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            if err.commit:
                headers["X-Repo-Commit"] = err.commit
            body = json.dumps({"error": err.message, **err.extra}).encode()
            self._send(err.status, body, headers, head=method == "HEAD")
        except Exception as err:  # a server bug must surface as a 500, not a hung client
            self.server.errors.append(f"{method} {self.path}: {err!r}")
            self._send(500, json.dumps({"error": repr(err)}).encode(), {"X-Error-Message": repr(err)})

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # ---- routing -------------------------------------------------------------------------------
    def _route(self, method: str, seg: list[str], query: dict[str, str], body: bytes) -> bool:
        state = self.server.state
        if seg[:2] == ["api", "whoami-v2"] and method == "GET":
            self._require_auth()
            self._json(200, self._whoami())
            return True
        if seg[:2] == ["api", "validate-yaml"] and method == "POST":
            self._validate_yaml(json.loads(body or b"{}"))
            return True
        if seg[:2] == ["api", "repos"] and method in ("POST", "DELETE") and len(seg) == 3:
            self._require_auth()
            payload = json.loads(body or b"{}")
            if seg[2] == "create":
                self._create_repo(payload)
                return True
            if seg[2] == "delete":
                repo_type = payload.get("type") or "model"
                repo_id = f"{payload.get('organization') or state.user}/{payload['name']}"
                with state.lock:
                    state.repo(repo_type, repo_id, True)
                    del state.repos[(repo_type, repo_id)]
                self._json(200, {})
                return True
        if seg[0] == "api" and len(seg) >= 4 and seg[1] in _REPO_TYPES:
            return self._route_api(method, _REPO_TYPES[seg[1]], f"{seg[2]}/{seg[3]}", seg[4:], query, body)
        if seg[0] == "_lfs" and len(seg) == 3:
            return self._route_lfs_transfer(method, seg[1], seg[2], body)
        repo_type, rest = ("model", seg)
        if seg and seg[0] in _REPO_TYPES and seg[0] != "models":
            repo_type, rest = _REPO_TYPES[seg[0]], seg[1:]
        if len(rest) >= 2 and rest[1].endswith(".git") and rest[2:] == ["info", "lfs", "objects", "batch"]:
            self._lfs_batch(repo_type, f"{rest[0]}/{rest[1][:-4]}", json.loads(body))
            return True
        if len(rest) >= 5 and rest[2] == "resolve" and method in ("GET", "HEAD"):
            repo = state.repo(repo_type, f"{rest[0]}/{rest[1]}", self._authorized())
            self._resolve(repo, rest[3], "/".join(rest[4:]), head=method == "HEAD")
            return True
        return False

    def _route_api(
        self, method: str, repo_type: str, repo_id: str, rest: list[str], query: dict, body: bytes
    ) -> bool:
        state = self.server.state
        if method == "GET" and (not rest or (rest[0] == "revision" and len(rest) == 2)):
            repo = state.repo(repo_type, repo_id, self._authorized())
            self._json(200, self._repo_info(repo, rest[1] if rest else "main"))
            return True
        if not rest:
            return False
        action = rest[0]
        if action in ("preupload", "commit", "branch") and method in ("POST", "DELETE"):
            self._require_auth()
        repo = state.repo(repo_type, repo_id, self._authorized())
        if action == "preupload" and method == "POST" and len(rest) == 2:
            self._preupload(repo, rest[1], json.loads(body))
            return True
        if action == "commit" and method == "POST" and len(rest) == 2:
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            commit, pr = state.commit(repo, rest[1], lines, create_pr=query.get("create_pr") == "1")
            base = f"{self.server.endpoint}/{_URL_PREFIX[repo.repo_type]}{repo.repo_id}"
            self._json(
                200,
                {
                    "success": True,
                    "commitOid": commit.oid,
                    "commitUrl": f"{base}/commit/{commit.oid}",
                    "pullRequestUrl": f"{base}/discussions/{pr}" if pr is not None else None,
                },
            )
            return True
        if action == "tree" and method == "GET" and len(rest) >= 2:
            commit = state.resolve_revision(repo, rest[1])
            self._json(200, self._tree(repo, commit, "/".join(rest[2:]).strip("/"), query))
            return True
        if action == "paths-info" and method == "POST" and len(rest) == 2:
            commit = state.resolve_revision(repo, rest[1])
            form = parse_qs(body.decode())
            paths = form.get("paths", [])
            if not paths and body.startswith(b"{"):
                paths = json.loads(body).get("paths", [])
            expand = form.get("expand", ["False"])[-1].lower() == "true"
            self._json(200, [e for p in paths if (e := self._path_entry(repo, commit, p.strip("/"), expand))])
            return True
        if action == "refs" and method == "GET":
            branches = [
                {"name": name, "ref": f"refs/heads/{name}", "targetCommit": oid}
                for name, oid in repo.branches.items()
                if not name.startswith("refs/pr/")
            ]
            prs = [
                {"name": name, "ref": name, "targetCommit": oid}
                for name, oid in repo.branches.items()
                if name.startswith("refs/pr/")
            ]
            payload = {"branches": branches, "tags": [], "converts": []}
            if query.get("include_prs"):
                payload["pullRequests"] = prs
            self._json(200, payload)
            return True
        if action == "commits" and method == "GET" and len(rest) == 2:
            commit = state.resolve_revision(repo, rest[1])
            self._json(
                200,
                [
                    {
                        "id": c.oid,
                        "title": c.title,
                        "message": c.message,
                        "authors": [{"user": state.user}],
                        "date": c.date,
                    }
                    for c in state.history(repo, commit)
                ],
            )
            return True
        if action == "branch" and len(rest) == 2:
            branch = rest[1]
            with state.lock:
                if method == "POST":
                    if branch in repo.branches:
                        raise HubError(409, f"Branch {branch} already exists")
                    start = json.loads(body or b"{}").get("startingPoint") or "main"
                    repo.branches[branch] = state.resolve_revision(repo, start).oid
                elif method == "DELETE":
                    repo.branches.pop(branch, None)
            self._json(200, {})
            return True
        return False

    # ---- endpoints -----------------------------------------------------------------------------
    def _whoami(self) -> dict:
        user = self.server.state.user
        return {
            "type": "user",
            "id": hashlib.sha1(user.encode()).hexdigest()[:24],
            "name": user,
            "fullname": user,
            "orgs": [],
            "auth": {"type": "access_token", "accessToken": {"displayName": "local-hub", "role": "write"}},
        }

    def _validate_yaml(self, payload: dict) -> None:
        content = payload.get("content", "")
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, flags=re.S)
        errors = []
        if match:
            try:
                metadata = yaml.safe_load(match.group(1))
                if metadata is not None and not isinstance(metadata, dict):
                    errors.append({"message": "metadata must be a YAML mapping"})
            except yaml.YAMLError as err:
                errors.append({"message": f"invalid YAML: {err}"})
        self._json(400 if errors else 200, {"errors": errors, "warnings": []})

    def _create_repo(self, payload: dict) -> None:
        state = self.server.state
        repo_type = payload.get("type") or "model"
        namespace = payload.get("organization") or state.user
        if namespace != state.user:
            raise HubError(403, f"You don't have the rights to create a repo under {namespace}")
        repo_id = f"{namespace}/{payload['name']}"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        url = f"{self.server.endpoint}/{_URL_PREFIX[repo_type]}{repo_id}"
        state.create_repo(repo_type, repo_id, private, url)
        self._json(200, {"url": url, "name": repo_id, "id": hashlib.sha1(repo_id.encode()).hexdigest()[:24]})

    def _repo_info(self, repo: _Repo, revision: str) -> dict:
        commit = self.server.state.resolve_revision(repo, revision)
        siblings = []
        for path, entry in sorted(commit.files.items()):
            sibling: dict[str, Any] = {"rfilename": path, "size": entry.size}
            if entry.lfs:
                sibling["blobId"] = _git_blob_oid(entry.pointer)
                sibling["lfs"] = {
                    "size": entry.size,
                    "sha256": entry.sha256,
                    "pointerSize": len(entry.pointer),
                }
            else:
                sibling["blobId"] = _git_blob_oid(self.server.state.blob_path(entry.sha256).read_bytes())
            siblings.append(sibling)
        author = repo.repo_id.split("/")[0]
        card_data = None
        if "README.md" in commit.files:
            readme = self.server.state.blob_path(commit.files["README.md"].sha256).read_text(errors="replace")
            match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", readme, flags=re.S)
            try:
                card_data = yaml.safe_load(match.group(1)) if match else None
            except yaml.YAMLError:
                card_data = None
        return {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": author,
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
            "usedStorage": sum(e.size for e in commit.files.values()),
            **({"cardData": card_data} if isinstance(card_data, dict) else {}),
        }

    def _preupload(self, repo: _Repo, revision: str, payload: dict) -> None:
        commit = self.server.state.resolve_revision(repo, revision)
        files = []
        for item in payload.get("files", []):
            path, size = item["path"], int(item["size"])
            sample = base64.b64decode(item.get("sample", ""))
            lfs = size >= _REGULAR_MAX_SIZE or path.lower().endswith(_LFS_SUFFIXES) or b"\0" in sample
            if not lfs:
                try:
                    sample[: max(0, len(sample) - 4)].decode("utf-8")
                except UnicodeDecodeError:
                    lfs = True
            existing = commit.files.get(path)
            oid = None
            if existing is not None:
                if existing.lfs:
                    oid = existing.sha256
                else:
                    oid = _git_blob_oid(self.server.state.blob_path(existing.sha256).read_bytes())
            files.append(
                {"path": path, "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid}
            )
        self._json(200, {"files": files, "commitOid": commit.oid})

    def _lfs_batch(self, repo_type: str, repo_id: str, payload: dict) -> None:
        state = self.server.state
        self._require_auth()
        state.repo(repo_type, repo_id, True)
        if payload.get("operation") != "upload":
            raise HubError(400, "the local hub only implements LFS uploads")
        objects = []
        for obj in payload.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if not state.has_blob(oid, size):
                # Content-addressed, as the real Hub: identical files in one batch (or in batches in flight
                # together) each get a ticket, and every ticket issued for the object stays valid.
                ticket = secrets.token_hex(8)
                self.server.lfs_tickets.setdefault(oid, set()).add(ticket)
                base = f"{self.server.endpoint}/_lfs/{oid}"
                entry["actions"] = {
                    "upload": {"href": f"{base}/{ticket}", "expires_in": 3600},
                    "verify": {"href": f"{base}/verify", "header": {}},
                }
            objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode(),
            {"Content-Type": "application/vnd.git-lfs+json"},
        )

    def _route_lfs_transfer(self, method: str, oid: str, ticket: str, body: bytes) -> bool:
        """PUT ``/_lfs/<oid>/<ticket>`` stores an object (like a pre-signed S3 URL, no auth header);
        POST ``/_lfs/<oid>/verify`` checks it arrived whole."""
        state = self.server.state
        if method == "PUT" and ticket != "verify":
            if ticket not in self.server.lfs_tickets.get(oid, ()):
                raise HubError(403, "unknown or expired LFS upload ticket")
            state.put_blob(body, expected_sha256=oid)  # idempotent: an object uploaded twice is stored once
            self._send(200, b"", {"ETag": f'"{oid}"'})
            return True
        if method == "POST" and ticket == "verify":
            self._require_auth()
            payload = json.loads(body or b"{}")
            if not state.has_blob(oid, int(payload.get("size", -1))):
                raise HubError(404, f"LFS object {oid} is missing or has the wrong size")
            self._json(200, {"success": True})
            return True
        return False

    def _path_entry(self, repo: _Repo, commit: _Commit, path: str, expand: bool) -> dict | None:
        state = self.server.state
        entry = commit.files.get(path)
        if entry is not None:
            info: dict[str, Any] = {"type": "file", "path": path, "size": entry.size}
            if entry.lfs:
                info["oid"] = _git_blob_oid(entry.pointer)
                info["lfs"] = {"oid": entry.sha256, "size": entry.size, "pointerSize": len(entry.pointer)}
            else:
                info["oid"] = _git_blob_oid(state.blob_path(entry.sha256).read_bytes())
        elif any(p.startswith(path + "/") for p in commit.files) and path:
            info = {"type": "directory", "path": path, "oid": _dir_oid(commit, path), "size": 0}
        else:
            return None
        if expand:
            last = state.last_commit_touching(repo, commit, path)
            info["lastCommit"] = {"id": last.oid, "title": last.title, "date": last.date}
        return info

    def _tree(self, repo: _Repo, commit: _Commit, path: str, query: dict) -> list[dict]:
        recursive = query.get("recursive", "false").lower() == "true"
        expand = query.get("expand", "false").lower() == "true"
        prefix = path + "/" if path else ""
        below = [p for p in commit.files if p.startswith(prefix)]
        if path and not below:
            raise HubError(404, f"{path} does not exist on {commit.oid}", "EntryNotFound", commit.oid)
        names: set[str] = set()
        for file_path in below:
            parts = file_path[len(prefix) :].split("/")
            depth = len(parts) if recursive else 1
            for i in range(1, depth + 1):
                names.add(prefix + "/".join(parts[:i]))
        entries = [self._path_entry(repo, commit, name, expand) for name in sorted(names)]
        # The Hub lists directories before files at each level.
        return sorted((e for e in entries if e), key=lambda e: (e["type"] != "directory", e["path"]))

    def _resolve(self, repo: _Repo, revision: str, path: str, head: bool) -> None:
        state = self.server.state
        commit = state.resolve_revision(repo, revision)
        entry = commit.files.get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", commit.oid)
        blob = state.blob_path(entry.sha256)
        size = entry.size
        etag = entry.sha256 if entry.lfs else _git_blob_oid(blob.read_bytes())
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{etag}"',
            "X-Repo-Commit": commit.oid,
            "Accept-Ranges": "bytes",
        }
        start, end, status = 0, size - 1, 200
        range_header = self.headers.get("Range")
        if range_header:
            match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
            if match is None:
                raise HubError(400, f"bad Range {range_header}")
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:
                start = max(0, size - int(match.group(2)))
            if start >= size and size > 0:
                self._send(416, b"", {"Content-Range": f"bytes */{size}", "X-Repo-Commit": commit.oid}, head)
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(0, end - start + 1)
        headers["Content-Length"] = str(length)
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head and length:
            with open(blob, "rb") as f:
                f.seek(start)
                self.wfile.write(f.read(length))


class LocalHubServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, root: Path, user: str, token: str):
        super().__init__(("127.0.0.1", port), _Handler)
        self.endpoint = f"http://127.0.0.1:{self.server_address[1]}"
        self.state = HubState(root, user, token)
        self.lfs_tickets: dict[str, set[str]] = {}  # object id -> the upload tickets issued for it
        self.unhandled: list[str] = []
        self.errors: list[str] = []


@dataclass
class LocalHub:
    """Handle the tests use: ``endpoint`` (the value of ``HF_ENDPOINT``), a write ``token`` and the
    ``user`` namespace the token owns (``f"{hub.user}/my-repo"``)."""

    endpoint: str
    token: str
    user: str
    server: LocalHubServer
    thread: threading.Thread

    def repo_id(self, name: str) -> str:
        return f"{self.user}/{name}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_local_hub(
    port: int = 0, root: Path | None = None, user: str = "avt-tester", token: str = "hf_localtesttoken"
) -> LocalHub:
    """Start the server on a daemon thread and return its handle (``stop()`` to end it)."""
    root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="avt-local-hub-"))
    server = LocalHubServer(port, root, user, token)
    thread = threading.Thread(target=server.serve_forever, name="local-hub", daemon=True)
    thread.start()
    return LocalHub(server.endpoint, token, user, server, thread)
