"""Which variants a device's runtime can load, judged before any is pushed or measured: each variant's op versions
(read from its flatbuffer) against what the runtime resolves (asked on the device, ``board.op_check``)."""

from __future__ import annotations

from typing import Sequence

from ..board.cache import DeviceCache
from ..board.op_check import ask_runtime
from ..board.runner import RunnerClient
from ..errors import ModelLoadError
from ..model.op_codes import OpVersion, read_op_versions
from .targets import BenchTarget


def unloadable_variants(runner: RunnerClient, cache: DeviceCache, targets: Sequence[BenchTarget], *, device: str,
                        runtime: str) -> dict[str, str]:
    """Per label of a variant the runtime cannot load: the op versions it lacks and what to do."""
    ops: dict[str, tuple[OpVersion, ...]] = {}
    for target in targets:
        try:
            ops[target.label] = read_op_versions(target.path)
        except ModelLoadError:
            continue  # loading it on the device says what is wrong with it
    support = ask_runtime(runner, cache, {op for found in ops.values() for op in found}, runtime=runtime)
    if support is None:
        return {}
    missing = {label: support.missing_in(found) for label, found in ops.items()}
    reasons = {}
    for target in targets:
        if not missing.get(target.label):
            continue
        loadable = [other.variant for other in targets
                    if other.model == target.model and other.label in missing and not missing[other.label]]
        reasons[target.label] = (f"{support.runtime} cannot load {target.variant}: it has no "
                                 f"{', '.join(map(str, missing[target.label]))} (written by a newer converter); "
                                 f"{support.fix(device, loadable)}")
    return reasons
