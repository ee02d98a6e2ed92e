"""``python -m gateway serve``: starts the app with uvicorn, over TLS when given a certificate."""
from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import trustme

from gateway.fast_lane import CONSUMER
from inbox import Inbox

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_healthz_over_tls_with_the_given_certificate(tmp_path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "server.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "server.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKAMAI_", "CONNECTOR_", "SALESFORCE_"))}
    env["PYTHONPATH"] = str(REPO_ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--inbox", str(tmp_path / "inbox.sqlite3"),
         "--ssl-certfile", str(tmp_path / "server.pem"), "--ssl-keyfile", str(tmp_path / "server.key"),
         "--log-level", "warning"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"https://127.0.0.1:{port}/healthz", verify=ssl.create_default_context(cafile=str(tmp_path / "ca.pem")))
                break
            except httpx.ConnectError:
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "inbox_can_store": True, "webhook": False, "connector": False,
                                   "inbox": {"pending": 0, "total": 0}}
        assert (tmp_path / "inbox.sqlite3").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_certificate_without_its_key_is_refused() -> None:
    result = subprocess.run([sys.executable, "-m", "gateway", "serve", "--ssl-certfile", "x.pem"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0 and "go together" in result.stderr


def test_the_fast_lane_refuses_to_start_without_its_settings_and_says_which(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKAMAI_", "SALESFORCE_"))}
    env["PYTHONPATH"] = str(REPO_ROOT)
    done = subprocess.run([sys.executable, "-m", "gateway", "fast-lane", "--inbox", str(tmp_path / "inbox.sqlite3")],
                          check=False, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "fast lane not started" in done.stderr and "AKAMAI_BASE_URL" in done.stderr


def test_the_fast_lane_follows_the_inbox_until_terminated(sandbox, tmp_path) -> None:
    env = {**os.environ, **sandbox.env, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "gateway", "fast-lane", "--inbox", str(tmp_path / "inbox.sqlite3")],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        inbox = Inbox(tmp_path / "inbox.sqlite3")
        deadline = time.monotonic() + 60
        while inbox.consumer_seq(CONSUMER) is None:  # started: it set its cursor
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the fast lane did not start"
            time.sleep(0.1)
        inbox.close()
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
