"""Start and stop real servers (``longisynth serve`` on 127.0.0.1) for the service tests, and read
their worker's memory from /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class Server:
    url: str
    tmp: Path  # the server's TMPDIR
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def work_dir(self) -> Path:
        return self.tmp / "longisynth-work"

    def leftovers(self) -> set[str]:
        """Request/job folders in the work dir."""
        return {p.name for p in self.work_dir.glob("req-*")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(tmp: Path, env: dict[str, str], port: int | None = None, timeout_s: float = 120) -> Server:
    """``longisynth serve`` with ``env`` on top of ours, ``TMPDIR=tmp``; waits for /readyz."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = tmp.parent / f"{tmp.name}-server.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "longisynth.cli", "serve", "--port", str(port)],
            env={**os.environ, "TMPDIR": str(tmp), **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", tmp, proc, log)
    wait_ready(server, timeout_s)
    return server


def wait_ready(server: Server, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited: {server.log.read_text()[-2000:]}")
        time.sleep(0.3)
    stop(server)
    raise RuntimeError("server did not become ready in time")


def stop(server: Server) -> None:
    """SIGTERM to the process group (graceful), SIGKILL after 30 s."""
    try:
        os.killpg(server.proc.pid, signal.SIGTERM)
        server.proc.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def worker_pid(server: Server) -> int:
    """The BentoML worker process that runs the service."""
    for pid in descendants(server.proc.pid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"_bentoml_impl.worker.service" in cmd:
            return pid
    raise AssertionError("no BentoML worker process found")


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of ``pid``, KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def reset_peak(pid: int) -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: ``echo 5 > /proc/PID/clear_refs``)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
