"""Where cases run: in this process, in a pool of local processes, or as Ray tasks.

All backends run the same :func:`~longisynth.dataset.worker.run_case` on the same tasks, so they
give the same files; they differ only in scheduling. Work in flight is bounded (``max_in_flight``
tasks submitted at once), so a dataset of 100 000 cases holds 100 000 small task descriptions,
not 100 000 futures with results.
"""

from __future__ import annotations

import multiprocessing
import socket
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from longisynth.dataset.manifest import plan_row
from longisynth.dataset.store import Layout, atomic_json
from longisynth.dataset.worker import CaseResult, CaseTask, run_case
from longisynth.errors import InvalidInputError

ResultFn = Callable[[CaseResult], None]


@dataclass(frozen=True)
class Scheduling:
    """How many cases run at once and what each asks the scheduler for.

    Attributes:
        workers: cases running at the same time (local processes; Ray: concurrency bound).
        max_in_flight: tasks submitted but not finished (default 2 × workers).
        memory_bytes: Ray memory reservation per case (a scheduling hint, bytes).
        cpus_per_case: Ray CPU reservation per case.
        memory_explicit: the design set ``memory_bytes`` (else it is an estimate).
    """

    workers: int | None = 1
    max_in_flight: int | None = None
    memory_bytes: int | None = None
    cpus_per_case: float = 1.0
    memory_explicit: bool = False

    def in_flight(self, default_workers: int = 1) -> int:
        return self.max_in_flight or 2 * max(1, self.workers or default_workers)


def failed_result(task: CaseTask, message: str) -> CaseResult:
    """Error row for a case whose worker died (the worker could not write it itself)."""
    row = plan_row(task.case)
    row["status"], row["error"] = "error", message
    layout = Layout(task.out_dir, task.design.name, task.design.dataset_id)
    try:
        layout.clear_case(task.case.case_id)
        atomic_json(layout.root / layout.error(task.case.case_id), {"case_id": task.case.case_id, "row": row})
    except OSError:
        pass
    return CaseResult(row, 0.0, worker="lost")


def run_local(tasks: Iterable[CaseTask], sched: Scheduling, on_result: ResultFn) -> None:
    """One worker: in this process, case after case. More: a pool of spawned processes; a
    process that dies (killed, out of memory) fails the cases in flight, and a new pool goes on."""
    workers = sched.workers or 1
    if workers <= 1:
        for task in tasks:
            on_result(run_case(task))
        return
    pending = deque(tasks)
    ctx = multiprocessing.get_context("spawn")  # no fork of a threaded parent
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    inflight: dict[Future[CaseResult], CaseTask] = {}
    try:
        while pending or inflight:
            while pending and len(inflight) < sched.in_flight():
                task = pending.popleft()
                inflight[pool.submit(run_case, task)] = task
            done, _ = wait(inflight, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                task = inflight.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    broken = True
                    result = failed_result(task, "worker process died (killed or out of memory)")
                except Exception as exc:
                    result = failed_result(task, f"internal error: {type(exc).__name__}: {exc}")
                on_result(result)
            if broken:
                for fut, task in list(inflight.items()):
                    inflight.pop(fut)
                    on_result(failed_result(task, "worker process died (killed or out of memory)"))
                pool.shutdown(wait=False, cancel_futures=True)
                pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _require_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds, not minutes, when nothing listens at ``host:port`` (ray.init would retry)."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise InvalidInputError(f"Ray address {address!r} is not host:port, ray://host:port or auto")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise InvalidInputError(f"cannot reach Ray at {address!r}: {exc.strerror or exc}") from None


def connect_ray(address: str | None, workers: int | None) -> bool:
    """Make sure this process is connected to Ray; returns whether it started a local instance
    (which the caller stops with ``ray.shutdown()``).

    Uses the instance this process is already connected to, else connects to ``address``
    (``ray://host:10001``, ``host:6379`` or ``auto``), else starts a local one on 127.0.0.1 with
    ``workers`` CPUs (default: all), no dashboard.

    Raises:
        InvalidInputError: Ray is not installed, or the cluster cannot be reached.
    """
    try:
        import ray
    except ImportError:
        raise InvalidInputError("the ray backend needs Ray: pip install 'longisynth[dataset]'") from None
    if ray.is_initialized():
        return False
    if address:
        _require_reachable(address)
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InvalidInputError(f"cannot connect to Ray at {address!r}: {first}") from None
        return False
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    return True


def check_ray_resources(sched: Scheduling) -> None:
    """Refuse a per-case memory reservation no node could ever grant (before any work starts)."""
    import ray

    _memory_hint(sched, float(ray.cluster_resources().get("memory", 0.0)))


def run_ray(tasks: Iterable[CaseTask], sched: Scheduling, on_result: ResultFn) -> None:
    """Each case is a Ray task (``num_cpus``/``memory`` hints from ``sched``, no retries: a failed
    case is an error row, and a rerun of the dataset retries it) on the Ray instance this process
    is connected to (:func:`connect_ray`). Without ``workers``, the in-flight bound follows the
    cluster's CPUs. The output folder must be on storage every Ray node can write.
    """
    import ray

    inflight: dict[object, CaseTask] = {}
    try:
        resources = ray.cluster_resources()
        cluster_cpus = float(resources.get("CPU", 1.0))
        in_flight = sched.in_flight(max(1, int(cluster_cpus // sched.cpus_per_case)))
        options: dict[str, object] = {"num_cpus": sched.cpus_per_case, "max_retries": 0}
        memory = _memory_hint(sched, float(resources.get("memory", 0.0)))
        if memory:
            options["memory"] = memory
        remote = ray.remote(run_case).options(**options)
        pending = deque(tasks)
        while pending or inflight:
            while pending and len(inflight) < in_flight:
                task = pending.popleft()
                inflight[remote.remote(task)] = task
            ready, _ = ray.wait(list(inflight), num_returns=1)
            for ref in ready:
                task = inflight.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    result = failed_result(task, f"Ray task failed: {type(exc).__name__}: {first}")
                on_result(result)
    finally:
        for ref in inflight:
            ray.cancel(ref, force=True)


def _memory_hint(sched: Scheduling, cluster_bytes: float) -> int | None:
    """The per-case memory reservation: an estimate is capped at the cluster's memory; an explicit
    value larger than the cluster is an error (Ray would wait for it forever)."""
    if not sched.memory_bytes:
        return None
    if cluster_bytes and sched.memory_bytes > cluster_bytes:
        if sched.memory_explicit:
            raise InvalidInputError(
                f"resources.memory_mb asks for {sched.memory_bytes / 2**20:.0f} MiB per case, more than "
                f"the Ray cluster's {cluster_bytes / 2**20:.0f} MiB"
            )
        return int(cluster_bytes)
    return int(sched.memory_bytes)
