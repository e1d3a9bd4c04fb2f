"""One device's part of a bench: push once, measure in interleaved rounds, record every outcome.

A failure touches only what it hits: a variant the board cannot load fails that variant, an unreachable
device (or one another bench holds longer than ``--lock-timeout``) fails that device's runs, and every other
measurement is still written. Each round is on disk as soon as it is measured (a run not finished yet is a failed
run that says how many of its rounds it has), so a bench that dies keeps its rounds. A cancelled bench (Ctrl-C)
stops between runner calls and keeps the rounds it measured, marked as interrupted.
"""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

from ..accuracy.device_pass import measure_accuracy
from ..accuracy.reference import ModelAccuracyPlan
from ..devices.base import Device
from ..devices.cache import DeviceCache
from ..devices.lock import DEFAULT_LOCK_TIMEOUT_S, BoardLock
from ..devices.replies import BenchReply, ProbeReply
from ..devices.runner import BenchSettings, RunnerClient
from ..errors import DeviceError, EdgepruneError
from ..results.document import STATUS_FAILED, STATUS_OK, ResultsWriter, RunRecord
from .stats import Latency
from .targets import BenchTarget, RefusedTarget

NS_PER_MS = 1e6
Progress = Callable[[str, str], None]
T = TypeVar("T")


@dataclass(frozen=True)
class BenchPlan:
    runs: int = 100
    warmup: int = 10
    min_seconds: float = 0.0
    rounds: int = 3
    threads: tuple[int, ...] = ()  # empty: the device's own 'threads' setting, else 1
    xnnpack_modes: tuple[bool, ...] = (True,)
    runtime: str = "auto"
    timeout_s: float = 600.0
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S

    def round_settings(self, threads: int, xnnpack: bool) -> BenchSettings:
        """Each round takes its share of the runs and of the minimum duration."""
        return BenchSettings(
            threads=threads,
            warmup=self.warmup,
            runs=max(1, -(-self.runs // self.rounds)),
            min_seconds=self.min_seconds / self.rounds,
            xnnpack=xnnpack,
            runtime=self.runtime,
            timeout_s=self.timeout_s,
        )

    def to_json(self) -> dict[str, Any]:
        return {"runs": self.runs, "warmup": self.warmup, "min_seconds": self.min_seconds, "rounds": self.rounds,
                "threads": list(self.threads), "xnnpack": list(self.xnnpack_modes), "runtime": self.runtime}


@dataclass
class RoundsAccumulator:
    """The replies of one variant's rounds, merged into one run."""

    planned: int
    replies: list[BenchReply] = field(default_factory=list)
    error: str | None = None

    def to_record(self, base: dict[str, Any]) -> RunRecord:
        """The run: ok when every round is in; failed with the error otherwise, keeping the rounds measured."""
        if not self.replies:
            return RunRecord(**base, status=STATUS_FAILED, error=self.error or "no measurement")
        return self.measured(base) if self.error is None else self.failed(base, self.error)

    def unfinished_record(self, base: dict[str, Any], state: str) -> RunRecord:
        """The rounds measured so far of a run the bench has not finished: kept, as a failed run that says so."""
        return self.failed(base, f"{state}: {len(self.replies)} of {self.planned} rounds measured, their samples "
                                 "are kept")

    def failed(self, base: dict[str, Any], error: str) -> RunRecord:
        record = self.measured(base)
        record.status, record.error = STATUS_FAILED, error
        return record

    def measured(self, base: dict[str, Any]) -> RunRecord:
        samples_ms = [ns / NS_PER_MS for reply in self.replies for ns in reply["samples_ns"]]
        first, last = self.replies[0], self.replies[-1]
        rss = [reply["peak_rss_mb"] for reply in self.replies if reply.get("peak_rss_mb") is not None]
        return RunRecord(
            **base,
            status=STATUS_OK,
            runtime=first["runtime"],
            latency_ms=Latency.from_values(samples_ms).to_json(),
            samples_ms=[round(value, 6) for value in samples_ms],
            init_ms=statistics.median(reply["init_ns"] for reply in self.replies) / NS_PER_MS,
            first_invoke_ms=statistics.median(reply["first_invoke_ns"] for reply in self.replies) / NS_PER_MS,
            peak_rss_mb=max(rss) if rss else None,
            xnnpack_delegate=first["xnnpack"],
            board_state={"before": first["state_before"], "after": last["state_after"]},
            rounds={"done": len(self.replies), "planned": self.planned},
        )


class BenchCancelled(Exception):
    """Raised in a device worker once the bench is cancelled: it stops measuring, keeping what it measured."""


@dataclass
class DeviceSession:
    """Holds the device's cache and runner for the whole bench: one connection, nothing uploaded twice."""

    device: Device
    cancel: threading.Event = field(default_factory=threading.Event)
    cache: DeviceCache = field(init=False)
    runner: RunnerClient | None = field(default=None, init=False)
    info: ProbeReply | None = field(default=None, init=False)
    error: str | None = field(default=None, init=False)
    wall_seconds: float = field(default=0.0, init=False)
    lost: DeviceError | None = field(default=None, init=False)  # why the device is gone, once it is

    def summary(self) -> dict[str, Any]:
        """The device's entry in the results document: what it is, what it cost to reach it."""
        return {"address": self.device.address, **self.device.facts(), "info": self.info, "error": self.error,
                "uploaded_bytes": self.cache.uploaded_bytes, "wall_seconds": round(self.wall_seconds, 3),
                "runner_seconds": round(self.runner.device_seconds, 3) if self.runner else 0.0}

    def __post_init__(self) -> None:
        self.cache = DeviceCache(self.device)

    def open(self, runtime: str) -> ProbeReply:
        """Push the runner and probe the device; a device without a usable runtime is an error here."""
        info = self.describe(runtime)
        if info.get("runtime") is None:
            raise DeviceError(self.device.name, str(info.get("runtime_error")),
                              hint=f"run 'edgeprune devices setup {self.device.name}' or set its python")
        return info

    def describe(self, runtime: str) -> ProbeReply:
        """What the device is and has, even when it has no TFLite runtime yet."""
        self.runner = RunnerClient(self.device, self.cache.ensure_runner())
        self.info = self.runner.probe(runtime=runtime)
        return self.info

    def attempt(self, call: Callable[[], T], progress: Progress) -> T:
        """One call on the device. Once the device is lost (unreachable, not answering), the calls after it fail at
        once with that reason instead of each waiting out its own timeouts."""
        if self.lost is not None:
            raise DeviceError(self.device.name, f"not tried: lost earlier in this bench ({self.lost.detail})",
                              lost=True)
        try:
            return call()
        except DeviceError as exc:
            if exc.lost:
                self.lost = exc
                self.error = str(exc)
                progress(self.device.name, f"lost: {exc.detail}; its remaining runs are not tried")
            raise

    def stop_if_cancelled(self) -> None:
        """Called before each step and on each failure: a failure caused by the cancel is no result."""
        if self.cancel.is_set():
            raise BenchCancelled(self.device.name)


def bench_device(
    device: Device,
    targets: Sequence[BenchTarget],
    plan: BenchPlan,
    writer: ResultsWriter,
    progress: Progress,
    accuracy_plans: dict[str, ModelAccuracyPlan] | None = None,
    cancel: threading.Event | None = None,
) -> DeviceSession:
    session = DeviceSession(device, cancel or threading.Event())
    started = time.perf_counter()
    try:
        measure_on_device(session, targets, plan, writer, progress, accuracy_plans)
    except BenchCancelled:
        session.error = "interrupted before all of its runs were measured"
    finally:
        session.wall_seconds = time.perf_counter() - started
    return session


def measure_on_device(
    session: DeviceSession,
    targets: Sequence[BenchTarget],
    plan: BenchPlan,
    writer: ResultsWriter,
    progress: Progress,
    accuracy_plans: dict[str, ModelAccuracyPlan] | None,
) -> None:
    device = session.device
    try:
        # A farm place is waited for like the board lock, so --lock-timeout bounds both.
        device.claim(timeout_s=plan.lock_timeout_s, on_wait=lambda message: progress(device.name, message))
        progress(device.name, f"connecting to {device.address}")
        session.open(plan.runtime)
        assert session.runner is not None
        session.stop_if_cancelled()
        # Everything after the probe needs the board to itself: another bench would skew the timings.
        lock = BoardLock.take(device, session.runner.runner_path, timeout_s=plan.lock_timeout_s,
                              on_wait=lambda message: progress(device.name, message))
    except DeviceError as exc:
        session.stop_if_cancelled()
        fail_every_run(session, targets, plan, writer, progress, exc)
        return
    try:
        measure_locked(session, targets, plan, writer, progress, accuracy_plans)
    finally:
        if session.lost is None:
            lock.release()
        else:
            lock.abandon()


def fail_every_run(session: DeviceSession, targets: Sequence[BenchTarget], plan: BenchPlan, writer: ResultsWriter,
                   progress: Progress, exc: DeviceError) -> None:
    """An unusable device: each of its runs is recorded as failed with the reason."""
    device = session.device
    session.error = str(exc)
    progress(device.name, f"unusable: {exc.detail}")
    record_failed_runs(writer, device.name, targets, thread_counts(plan, device), plan.xnnpack_modes, str(exc),
                       device_summary(device, None))


def fail_unopened(name: str, error: EdgepruneError, targets: Sequence[BenchTarget], plan: BenchPlan,
                  writer: ResultsWriter, progress: Progress) -> dict[str, Any]:
    """A device that could not even be opened: each of its runs failed with why. Returns its devices entry."""
    progress(name, f"unusable: {error.message}")
    # Its own thread setting is unknown.
    record_failed_runs(writer, name, targets, plan.threads or (None,), plan.xnnpack_modes, str(error), None)
    return {"address": "", "info": None, "error": str(error), "uploaded_bytes": 0, "wall_seconds": 0.0,
            "runner_seconds": 0.0}


def fail_refused(refused: Sequence[RefusedTarget], devices: Sequence[Device], unopened: Sequence[str],
                 plan: BenchPlan, writer: ResultsWriter) -> None:
    """A variant refused before the bench (its file is not inside its export folder) fails on every device, with
    the runs it would have had there."""
    for target in refused:
        for device in devices:
            record_failed_runs(writer, device.name, [target], thread_counts(plan, device), plan.xnnpack_modes,
                               target.reason, device_summary(device, None))
        for name in unopened:
            record_failed_runs(writer, name, [target], plan.threads or (None,), plan.xnnpack_modes, target.reason,
                               None)


def record_failed_runs(writer: ResultsWriter, device: str, targets: Sequence[BenchTarget | RefusedTarget],
                       threads: Sequence[int | None], xnnpack_modes: Sequence[bool], error: str,
                       device_info: dict[str, Any] | None) -> None:
    for target in targets:
        for thread_count in threads:
            for xnnpack in xnnpack_modes:
                writer.add(RunRecord(**target_identity(device, target, thread_count, xnnpack, device_info),
                                     status=STATUS_FAILED, error=error))


def measure_locked(
    session: DeviceSession,
    targets: Sequence[BenchTarget],
    plan: BenchPlan,
    writer: ResultsWriter,
    progress: Progress,
    accuracy_plans: dict[str, ModelAccuracyPlan] | None,
) -> None:
    device = session.device
    remote_models = push_models(session, targets, progress)
    for xnnpack in plan.xnnpack_modes:
        accuracy = accuracy_pass(session, targets, remote_models, plan, xnnpack, accuracy_plans or {}, progress)
        for threads in thread_counts(plan, device):
            measure_interleaved(session, targets, remote_models, plan, threads, xnnpack, accuracy, writer, progress)


def accuracy_pass(
    session: DeviceSession,
    targets: Sequence[BenchTarget],
    remote_models: dict[str, str | DeviceError],
    plan: BenchPlan,
    xnnpack: bool,
    accuracy_plans: dict[str, ModelAccuracyPlan],
    progress: Progress,
) -> dict[str, dict[str, Any] | str]:
    """Its own pass, before timing: the data set runs through every variant once, outputs scored on the host."""
    assert session.runner is not None
    results: dict[str, dict[str, Any] | str] = {}
    for target in targets:
        remote = remote_models[target.label]
        if target.model not in accuracy_plans or isinstance(remote, DeviceError):
            continue
        session.stop_if_cancelled()
        progress(session.device.name, f"accuracy {target.label} (XNNPACK {'on' if xnnpack else 'off'})")
        try:
            results[target.label] = session.attempt(lambda: measure_accuracy(
                session.runner, session.cache, remote, target.sha256, accuracy_plans[target.model],
                threads=thread_counts(plan, session.device)[0], xnnpack=xnnpack, runtime=plan.runtime,
                timeout_s=plan.timeout_s,
            ), progress)
        except DeviceError as exc:
            session.stop_if_cancelled()
            progress(session.device.name, f"{target.label}: accuracy pass failed: {exc.detail}")
            results[target.label] = variant_error(session.device, target, exc)
    return results


def thread_counts(plan: BenchPlan, device: Device) -> tuple[int, ...]:
    return plan.threads or (device.threads or 1,)


def push_models(session: DeviceSession, targets: Sequence[BenchTarget], progress: Progress) -> dict[str, str | DeviceError]:
    remote: dict[str, str | DeviceError] = {}
    for target in targets:
        session.stop_if_cancelled()
        try:
            remote[target.label] = session.attempt(lambda: session.cache.ensure(target.path, sha256=target.sha256),
                                                   progress)
        except DeviceError as exc:
            session.stop_if_cancelled()
            progress(session.device.name, f"{target.label}: upload failed: {exc.detail}")
            remote[target.label] = exc
    return remote


def measure_interleaved(
    session: DeviceSession,
    targets: Sequence[BenchTarget],
    remote_models: dict[str, str | DeviceError],
    plan: BenchPlan,
    threads: int,
    xnnpack: bool,
    accuracy: dict[str, dict[str, Any] | str],
    writer: ResultsWriter,
    progress: Progress,
) -> None:
    """Rounds A B C, A B C, ...: drift on the board (heat, other load) hits every variant alike."""
    assert session.runner is not None
    device = session.device
    settings = plan.round_settings(threads, xnnpack)
    accumulators = {target.label: RoundsAccumulator(plan.rounds) for target in targets}
    for target in targets:
        upload_failure = remote_models[target.label]
        if isinstance(upload_failure, DeviceError):
            accumulators[target.label].error = variant_error(device, target, upload_failure)
    mode = f"{threads} thread{'s' if threads != 1 else ''}, XNNPACK {'on' if xnnpack else 'off'}"

    def keep(target: BenchTarget, unfinished: str | None = None) -> None:
        """The run as measured so far: finished (to the history too), or ``unfinished`` with that state."""
        accumulator = accumulators[target.label]
        identity = run_identity(device, target, threads, xnnpack, session.info)
        record = accumulator.unfinished_record(identity, unfinished) if unfinished else accumulator.to_record(identity)
        attach_accuracy(record, accuracy.get(target.label))
        (writer.checkpoint if unfinished else writer.add)(record)

    try:
        for round_index in range(plan.rounds):
            for target in targets:
                accumulator = accumulators[target.label]
                if accumulator.error is not None:
                    continue
                session.stop_if_cancelled()
                progress(device.name, f"round {round_index + 1}/{plan.rounds} {target.label} ({mode})")
                try:
                    remote = str(remote_models[target.label])
                    accumulator.replies.append(
                        session.attempt(lambda: session.runner.bench(remote, settings), progress))
                except DeviceError as exc:
                    session.stop_if_cancelled()
                    accumulator.error = variant_error(device, target, exc)
                    progress(device.name, f"{target.label}: failed: {exc.detail}")
                    continue
                # Every round on disk at once, a run as soon as its last round is in: a bench killed mid-group
                # keeps what it measured.
                if len(accumulator.replies) < plan.rounds:
                    keep(target, unfinished="not finished when this was written")
                else:
                    keep(target)
    except BenchCancelled:
        for target in targets:
            accumulator = accumulators[target.label]
            if len(accumulator.replies) < plan.rounds and (accumulator.replies or accumulator.error is not None):
                keep(target, unfinished=None if accumulator.error is not None else "interrupted")
        raise
    for target in targets:
        if len(accumulators[target.label].replies) < plan.rounds:  # the others were kept as their last round came
            keep(target)


def variant_error(device: Device, target: BenchTarget, exc: DeviceError) -> str:
    """Name what the user knows (device, variant, local file), not the content hash it has on the board."""
    return f"device '{device.name}', {target.label} ({target.path}): {exc.detail}"


def attach_accuracy(record: RunRecord, accuracy: str | dict[str, Any] | None) -> None:
    if isinstance(accuracy, str):
        record.status = STATUS_FAILED
        record.error = "; ".join(filter(None, [record.error, f"accuracy pass: {accuracy}"]))
    elif accuracy is not None:
        record.accuracy = accuracy


def run_identity(device: Device, target: BenchTarget, threads: int, xnnpack: bool,
                 info: ProbeReply | None) -> dict[str, Any]:
    return target_identity(device.name, target, threads, xnnpack, device_summary(device, info))


def target_identity(device: str, target: BenchTarget | RefusedTarget, threads: int | None, xnnpack: bool,
                    device_info: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "device": device,
        "model": target.model,
        "variant": target.variant,
        "model_sha256": target.sha256,
        "size_bytes": target.size_bytes,
        "threads": threads,
        "xnnpack": xnnpack,
        "device_info": device_info,
        "export_manifest": str(target.manifest.folder / "manifest.json") if target.manifest and target.manifest.folder
        else None,
    }


def device_summary(device: Device, info: ProbeReply | None) -> dict[str, Any]:
    summary: dict[str, Any] = {"address": device.address, **device.facts()}
    if info:
        for key in ("hostname", "arch", "os", "cpu_model", "cpu_cores", "python", "xnnpack_available", "runtime"):
            summary[key] = info.get(key)
    return summary
