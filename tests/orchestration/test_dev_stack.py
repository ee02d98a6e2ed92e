"""`make dev` starts from a state consistent with its fresh sandbox and stops fully and fast: Ctrl-C (SIGINT to
make's process group) leaves no process of the stack alive after 10 s (Dagster's daemon and code servers used to
linger for over a minute), and a warehouse or analyst database left by an earlier stack is gone."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
STALE = b"built against an earlier sandbox"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:120]
    except OSError:
        return "?"


def test_ctrl_c_stops_every_process_of_the_dev_stack_within_ten_seconds(tmp_path):
    dev_dir = tmp_path / "dev"
    dev_dir.mkdir()
    for stale in ("warehouse.duckdb", "analyst.duckdb", "inbox.sqlite3"):
        (dev_dir / stale).write_bytes(STALE)
    dagster_port, gateway_port = free_port(), free_port()
    env = {**os.environ, "IDLINK_DEV_DIR": str(dev_dir), "SANDBOX_SIZE": "30", "DAGSTER_PORT": str(dagster_port),
           "GATEWAY_PORT": str(gateway_port), "DAGSTER_HOME": str(tmp_path / "make_dagster_home")}
    stack = subprocess.Popen(["make", "--no-print-directory", "dev"], cwd=REPO, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    processes: set[int] = set()
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{dagster_port}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert stack.poll() is None and time.monotonic() < deadline, "the dev stack did not come up"
            time.sleep(1)
        for stale in ("warehouse.duckdb", "analyst.duckdb", "inbox.sqlite3"):
            path = dev_dir / stale
            assert not path.exists() or path.read_bytes()[:len(STALE)] != STALE, f"{stale} of an earlier stack kept"
        time.sleep(3)  # Dagster's daemon and code servers are up by now
        processes = descendants(stack.pid)
        commands = " ".join(command(pid) for pid in processes)
        for part in ("sandbox serve", "gateway serve", "gateway fast-lane", "dagster dev"):
            assert part in commands, f"{part} is not running"

        os.killpg(stack.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends to make's process group
        sent = time.monotonic()
        while any(alive(pid) for pid in processes) and time.monotonic() - sent < 10:
            time.sleep(0.1)
        left = {pid: command(pid) for pid in processes if alive(pid)}
        print(f"dev stack of {len(processes)} processes stopped in {time.monotonic() - sent:.1f} s")
        assert left == {}
    finally:
        for pid in descendants(stack.pid) | processes | {stack.pid}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
