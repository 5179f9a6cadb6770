"""The hostile-input suite's harness: a sandbox of pre-existing files that must not change, a
local HTTP server on 127.0.0.1 that counts every contact, a private temp folder that must be
empty afterwards, and the CLI run in-process (main) or, where a real process is needed
(file size limits, signals), as a subprocess."""
from __future__ import annotations

import hashlib
import http.server
import io
import os
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


class CountingServer:
    """Answers every GET with a small CSV (or an mm params JSON for *.json) and counts."""

    def __init__(self):
        counter = self
        self.contacts = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                counter.contacts += 1
                body = (b'{"expr": "A @ B"}' if self.path.endswith(".json") else b"1,2\n3,4\n")
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def server():
    s = CountingServer()
    yield s
    s.close()


@pytest.fixture(scope="session", autouse=True)
def _blender_once(tmp_path_factory):
    """bpy is imported once, its user folders in a session folder, before any test's private
    temp folder exists (Blender makes its own temp folder when it is imported)."""
    runtime = tmp_path_factory.mktemp("blender_runtime")
    saved = {k: os.environ.get(k) for k in ("MM_BLENDER_RUNTIME_DIR", "MM_BLENDER_USER_CACHE")}
    os.environ.setdefault("MM_BLENDER_RUNTIME_DIR", str(runtime))
    os.environ.setdefault("MM_BLENDER_USER_CACHE", str(runtime / "user_cache"))
    from mm_blender import bpy_env
    bpy_env.prepare()
    import bpy  # noqa: F401
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def _snapshot(folder: Path) -> dict:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            out[str(p.relative_to(folder))] = (hashlib.sha256(p.read_bytes()).hexdigest(),
                                               st.st_mtime_ns)
        elif not p.is_file():
            out[str(p.relative_to(folder))] = "other"
    return out


class Sandbox:
    """A folder of the user's files. `refused(result)` checks the whole contract of a hostile
    case: exit 2, one line without a traceback, no file changed or added, no network contact,
    no temp folder left."""

    def __init__(self, root: Path, server: CountingServer, temp: Path):
        self.root = root
        self.server = server
        self.temp = temp
        self.contacts = server.contacts
        self.before = None

    def path(self, name: str) -> Path:
        return self.root / name

    def write(self, name: str, data: str | bytes) -> Path:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        return p

    def freeze(self) -> None:
        """The files as the user left them; call after writing the case's files."""
        self.before = _snapshot(self.root)

    def cli(self, *args: str) -> Result:
        """The CLI's main() in this process, in the sandbox folder."""
        from mm_blender import cli
        if self.before is None:
            self.freeze()
        out, err = io.StringIO(), io.StringIO()
        old = sys.stdout, sys.stderr, os.getcwd()
        sys.stdout, sys.stderr = out, err
        os.chdir(self.root)
        try:
            code = cli.main([str(a) for a in args])
        finally:
            sys.stdout, sys.stderr = old[0], old[1]
            os.chdir(old[2])
        return Result(code, out.getvalue(), err.getvalue())

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env["PYTHONPATH"] = str(ROOT)
        env["TMPDIR"] = str(self.temp)
        env.pop("MM_BLENDER_RUNTIME_DIR", None)   # a real run makes (and must remove) its own
        return env

    def start(self, *args: str, preexec_fn=None) -> subprocess.Popen:
        """`python -m mm_blender ARGS` as a process of its own."""
        if self.before is None:
            self.freeze()
        return subprocess.Popen([sys.executable, "-m", "mm_blender", *map(str, args)],
                                cwd=self.root, env=self.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn)

    def run(self, *args: str, preexec_fn=None, timeout: float = 120) -> Result:
        proc = self.start(*args, preexec_fn=preexec_fn)
        out, err = proc.communicate(timeout=timeout)
        return Result(proc.returncode, out, err)

    def refused(self, result: Result, *words: str) -> str:
        """Assert the contract; returns the error line."""
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        errors = [line for line in lines if line.startswith("mm_blender: error: ")]
        assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, result.stderr
        assert len(errors) == 1, result.stderr
        line = errors[0]
        assert len(line) < 600, line
        # only Blender's own chatter may share stderr with our one line
        assert all(not line.startswith("mm_blender") or line in errors for line in lines)
        for w in words:
            assert w in line, (w, line)
        assert _snapshot(self.root) == self.before, "a pre-existing file changed or was added"
        assert self.server.contacts == self.contacts, "the network was contacted"
        assert list(self.temp.iterdir()) == [], list(self.temp.iterdir())
        return line


@pytest.fixture
def sandbox(tmp_path, server, monkeypatch):
    root = tmp_path / "user"
    root.mkdir()
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))   # in-process temp files land here
    box = Sandbox(root, server, temp)
    yield box
