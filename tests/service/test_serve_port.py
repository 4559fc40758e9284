"""``scaleladder serve`` on a port that is taken fails at once, before it starts Ray or recovers any study
(issue 13: it used to start a Ray, pick up the first server's running study and fail 85 s later)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.server import free_port

REPO = Path(__file__).resolve().parents[2]


def _serve(tmp_path: Path, port: int, executor: str) -> subprocess.Popen:
    # RAY_TMPDIR: where a Ray started by this server would put its session, so the test can see one
    env = {**os.environ, "RAY_TMPDIR": str(tmp_path / "ray"), "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--port", str(port),
                             "--database-url", f"sqlite:///{tmp_path / 'serve.db'}", "--executor", executor],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_serve_on_a_busy_port_fails_fast_without_starting_ray(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        proc = _serve(tmp_path, port, "ray")
        out, _ = proc.communicate(timeout=60)
        elapsed = time.monotonic() - started
    assert proc.returncode == 1, out
    assert f"cannot listen on 127.0.0.1:{port}: the port is in use" in out, out
    assert "serving on" not in out
    assert not (tmp_path / "ray").exists(), "a Ray was started"
    assert elapsed < 30, elapsed  # the imports only; starting Ray alone takes about 5 s more


def test_serve_on_a_free_port_listens_on_the_socket_it_checked(tmp_path):
    port = free_port()
    proc = _serve(tmp_path, port, "external")
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
