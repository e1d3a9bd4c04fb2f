"""One device's part of a bench: push once, measure in interleaved rounds, record every outcome.

A failure touches only what it hits: a variant the board cannot load fails that variant, an unreachable
device (or one another bench holds longer than ``--lock-timeout``) fails that device's runs, and every other
measurement is still written. Each round is on disk as soon as it is measured (a run not finished yet is a failed
run that says how many of its rounds it has), so a bench that dies keeps its rounds. A cancelled bench (Ctrl-C)
stops between runner calls and keeps the rounds it measured, marked as interrupted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

from ..accuracy.device_pass import measure_accuracy
from ..accuracy.reference import ModelAccuracyPlan
from ..board.cache import DeviceCache
from ..board.lock import BoardLock
from ..board.provision import RUNTIME_PACKAGES
from ..board.replies import ProbeReply
from ..board.runner import RunnerClient
from ..devices.base import Device
from ..errors import DeviceError
from ..results.accuracy_figures import AccuracyFigures
from ..results.document import STATUS_FAILED, ResultsWriter, RunRecord
from .failed_runs import device_entry, device_summary, record_failed_runs, target_identity
from .loadable import VariantLoads, judge_variants
from .plan import BenchPlan
from .progress import Progress
from .rounds import RoundsAccumulator
from .targets import BenchTarget

T = TypeVar("T")
# Per variant label: the accuracy figures, or why the accuracy pass failed.
AccuracyResults = dict[str, AccuracyFigures | str]


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
        return device_entry(address=self.device.address, facts=self.device.facts(), info=self.info, error=self.error,
                            uploaded_bytes=self.cache.uploaded_bytes, wall_seconds=self.wall_seconds,
                            runner_seconds=self.runner.device_seconds if self.runner else 0.0)

    def __post_init__(self) -> None:
        self.cache = DeviceCache(self.device)

    def open(self, runtime: str) -> ProbeReply:
        """Push the runner and probe the device; a device without a usable runtime is an error here."""
        info = self.describe(runtime)
        if info.get("runtime") is None:
            setup = f"edgeprune devices setup {self.device.name}"
            hint = (f"install it with '{setup} --package {RUNTIME_PACKAGES[runtime]}', or leave --runtime out"
                    if runtime in RUNTIME_PACKAGES else f"run '{setup}' or set its python")
            raise DeviceError(self.device.name, str(info.get("runtime_error")), hint=hint)
        return info

    def describe(self, runtime: str) -> ProbeReply:
        """What the device is and has, even when it has no TFLite runtime yet."""
        self.runner = RunnerClient(self.device, self.cache.ensure_runner())
        self.info = self.runner.probe(runtime=runtime)
        return self.info

    def close(self) -> None:
        """End the runner's servers, if any were started."""
        if self.runner is not None:
            self.runner.close()

    def variant_loads(self, targets: Sequence[BenchTarget], runtime: str) -> VariantLoads:
        """Which ``targets`` the device's runtime can load, asked on the device (after :meth:`describe`)."""
        assert self.runner is not None and self.info is not None, "describe() first"
        if self.info.get("runtime") is None:
            return VariantLoads(unchecked={target.label: "not checked: the device has no working runtime"
                                           for target in targets})
        return judge_variants(self.runner, self.cache, targets, device=self.device.name, probe=self.info,
                              runtime=runtime)

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


@dataclass
class DeviceBench:
    """The bench on one device: claim it, push the models, the accuracy pass, then the timed rounds; every run is
    written through ``writer`` as it is measured or fails."""

    device: Device
    targets: Sequence[BenchTarget]
    plan: BenchPlan
    writer: ResultsWriter
    progress: Progress
    accuracy_plans: dict[str, ModelAccuracyPlan] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)
    session: DeviceSession = field(init=False)

    def __post_init__(self) -> None:
        self.session = DeviceSession(self.device, self.cancel)

    def run(self) -> DeviceSession:
        """Measure everything on the device; its session (summary, error) comes back, also when cancelled."""
        started = time.perf_counter()
        try:
            self._claim_and_measure()
        except BenchCancelled:
            self.session.error = "interrupted before all of its runs were measured"
        finally:
            self.session.wall_seconds = time.perf_counter() - started
        return self.session

    def _say(self, message: str) -> None:
        self.progress(self.device.name, message)

    def _claim_and_measure(self) -> None:
        session, plan = self.session, self.plan
        try:
            # A farm place is waited for like the board lock, so --lock-timeout bounds both.
            self.device.claim(timeout_s=plan.lock_timeout_s, on_wait=self._say)
            self._say(f"connecting to {self.device.address}")
            session.open(plan.runtime)
            assert session.runner is not None
            session.stop_if_cancelled()
            # Everything after the probe needs the board to itself: another bench would skew the timings.
            lock = BoardLock.take(self.device, session.runner.runner_path, timeout_s=plan.lock_timeout_s,
                                  on_wait=self._say)
        except DeviceError as exc:
            session.stop_if_cancelled()
            self._fail_every_run(exc)
            return
        try:
            self._measure_locked()
        finally:
            # The runner ends before the lock goes: the board is ours until our runner has ended.
            if session.lost is None:
                session.runner.close()
                lock.release()
            else:
                session.runner.abandon()
                lock.abandon()

    def _fail_every_run(self, exc: DeviceError) -> None:
        """An unusable device: each of its runs is recorded as failed with the reason."""
        self.session.error = str(exc)
        self._say(f"unusable: {exc.detail}")
        record_failed_runs(self.writer, self.device.name, self.targets, self.plan.thread_counts(self.device),
                           self.plan.xnnpack_modes, str(exc), device_summary(self.device, None))

    def _measure_locked(self) -> None:
        remote_models = self._push_models(self._unloadable_variants())
        for xnnpack in self.plan.xnnpack_modes:
            accuracy = self._accuracy_pass(remote_models, xnnpack)
            for threads in self.plan.thread_counts(self.device):
                self._measure_interleaved(remote_models, threads, xnnpack, accuracy)

    def _unloadable_variants(self) -> dict[str, DeviceError]:
        """The variants whose op versions the board's runtime lacks, each with the ops and the fix; asked once, up
        front. A check that cannot be made is said and skipped: loading then fails those variants on its own."""
        session = self.session
        session.stop_if_cancelled()
        try:
            loads = session.attempt(lambda: session.variant_loads(self.targets, self.plan.runtime), self.progress)
        except DeviceError as exc:
            session.stop_if_cancelled()
            self._say(f"op versions not checked up front: {exc.detail}")
            return {}
        for label, reason in loads.unchecked.items():
            self._say(f"{label}: op versions {reason}")
        for label, reason in loads.unloadable.items():
            self._say(f"{label}: not measured: {reason}")
        return {label: DeviceError(self.device.name, reason) for label, reason in loads.unloadable.items()}

    def _push_models(self, unloadable: dict[str, DeviceError]) -> dict[str, str | DeviceError]:
        session = self.session
        remote: dict[str, str | DeviceError] = dict(unloadable)
        for target in self.targets:
            if target.label in remote:
                continue
            session.stop_if_cancelled()
            try:
                remote[target.label] = session.attempt(
                    lambda: session.cache.ensure(target.path, sha256=target.sha256), self.progress)
            except DeviceError as exc:
                session.stop_if_cancelled()
                self._say(f"{target.label}: upload failed: {exc.detail}")
                remote[target.label] = exc
        return remote

    def _accuracy_pass(self, remote_models: dict[str, str | DeviceError], xnnpack: bool) -> AccuracyResults:
        """Its own pass, before timing: the data set runs through every variant once, outputs scored on the host."""
        session = self.session
        assert session.runner is not None
        runner = session.runner
        results: AccuracyResults = {}
        for target in self.targets:
            remote = remote_models[target.label]
            if target.model not in self.accuracy_plans or isinstance(remote, DeviceError):
                continue
            session.stop_if_cancelled()
            self._say(f"accuracy {target.label} (XNNPACK {'on' if xnnpack else 'off'})")
            try:
                results[target.label] = session.attempt(lambda: measure_accuracy(
                    runner, session.cache, remote, target.sha256, self.accuracy_plans[target.model],
                    threads=self.plan.thread_counts(self.device)[0], xnnpack=xnnpack, runtime=self.plan.runtime,
                    timeout_s=self.plan.timeout_s,
                ), self.progress)
            except DeviceError as exc:
                session.stop_if_cancelled()
                self._say(f"{target.label}: accuracy pass failed: {exc.detail}")
                results[target.label] = self._variant_error(target, exc)
        return results

    def _measure_interleaved(self, remote_models: dict[str, str | DeviceError], threads: int, xnnpack: bool,
                             accuracy: AccuracyResults) -> None:
        """Rounds A B C, A B C, ...: drift on the board (heat, other load) hits every variant alike."""
        session, plan, targets = self.session, self.plan, self.targets
        assert session.runner is not None
        runner = session.runner
        accumulators = {target.label: RoundsAccumulator(plan.rounds) for target in targets}
        for target in targets:
            upload_failure = remote_models[target.label]
            if isinstance(upload_failure, DeviceError):
                accumulators[target.label].error = self._variant_error(target, upload_failure)
        mode = f"{threads} thread{'s' if threads != 1 else ''}, XNNPACK {'on' if xnnpack else 'off'}"

        def keep(target: BenchTarget, unfinished: str | None = None) -> None:
            """The run as measured so far: finished (to the history too), or ``unfinished`` with that state."""
            accumulator = accumulators[target.label]
            identity = target_identity(self.device.name, target, threads, xnnpack,
                                       device_summary(self.device, session.info))
            record = (accumulator.unfinished_record(identity, unfinished) if unfinished
                      else accumulator.to_record(identity))
            attach_accuracy(record, accuracy.get(target.label))
            (self.writer.checkpoint if unfinished else self.writer.add)(record)

        try:
            for round_index in range(plan.rounds):
                settings = plan.round_settings(round_index, threads, xnnpack)
                for target in targets:
                    accumulator = accumulators[target.label]
                    if accumulator.error is not None:
                        continue
                    session.stop_if_cancelled()
                    self._say(f"round {round_index + 1}/{plan.rounds} {target.label} ({mode})")
                    try:
                        remote = str(remote_models[target.label])
                        accumulator.replies.append(
                            session.attempt(lambda: runner.bench(remote, settings), self.progress))
                    except DeviceError as exc:
                        session.stop_if_cancelled()
                        accumulator.error = self._variant_error(target, exc)
                        self._say(f"{target.label}: failed: {exc.detail}")
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

    def _variant_error(self, target: BenchTarget, exc: DeviceError) -> str:
        """Name what the user knows (device, variant, local file), not the content hash it has on the board."""
        return f"device '{self.device.name}', {target.label} ({target.path}): {exc.detail}"


def attach_accuracy(record: RunRecord, accuracy: AccuracyFigures | str | None) -> None:
    if isinstance(accuracy, str):
        record.status = STATUS_FAILED
        record.error = "; ".join(filter(None, [record.error, f"accuracy pass: {accuracy}"]))
    elif accuracy is not None:
        record.accuracy = accuracy
