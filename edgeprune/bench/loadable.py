"""Which variants a device's runtime can load, judged before any is pushed or measured: each variant's op versions
(read from its flatbuffer) against what the runtime resolves (asked on the device, ``board.op_check``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..board.cache import DeviceCache
from ..board.op_check import ask_runtime, load_fix
from ..board.runner import RunnerClient
from ..errors import ModelLoadError
from ..model.op_codes import OpVersion, read_op_versions
from .targets import BenchTarget


@dataclass(frozen=True)
class VariantLoads:
    """Per target label: why the runtime cannot load it (``unloadable``), or why that could not be told
    (``unchecked``); a label in neither loads."""

    unloadable: dict[str, str] = field(default_factory=dict)
    unchecked: dict[str, str] = field(default_factory=dict)

    def rows(self, targets: Sequence[BenchTarget]) -> list[dict[str, Any]]:
        """Per variant: ``loads`` (true, false, or null when not known) and the reason."""
        rows = []
        for target in targets:
            reason = self.unloadable.get(target.label) or self.unchecked.get(target.label)
            loads = None if target.label in self.unchecked else target.label not in self.unloadable
            rows.append({"model": target.model, "variant": target.variant, "path": str(target.path),
                         "loads": loads, "reason": reason})
        return rows


def judge_variants(runner: RunnerClient, cache: DeviceCache, targets: Sequence[BenchTarget], *, device: str,
                   probe: Mapping[str, Any], runtime: str) -> VariantLoads:
    """Ask the device's runtime about every op version the targets use, and judge each target by the answer."""
    ops: dict[str, tuple[OpVersion, ...]] = {}
    unchecked: dict[str, str] = {}
    for target in targets:
        try:
            ops[target.label] = read_op_versions(target.path)
        except ModelLoadError as exc:
            unchecked[target.label] = f"not checked: {exc.message}"
    support = ask_runtime(runner, cache, {op for found in ops.values() for op in found}, runtime=runtime)
    if support is None:
        return VariantLoads(unchecked=unchecked)
    for label, found in ops.items():
        odd = [f"{op}: {support.unexplained[op]}" for op in found if op in support.unexplained]
        if odd:
            unchecked[label] = f"not checked: {support.runtime} refused the op check itself ({odd[0]})"
    missing = {label: support.missing_in(found) for label, found in ops.items() if label not in unchecked}
    unloadable = {}
    for target in targets:
        if not missing.get(target.label):
            continue
        loadable = [other.variant for other in targets
                    if other.model == target.model and other.label in missing and not missing[other.label]]
        fix = load_fix(support, device, arch=probe.get("arch"), forced=runtime != "auto",
                       installed=probe.get("runtimes_installed") or (), loadable=loadable)
        unloadable[target.label] = (f"{support.runtime} cannot load {target.variant}: it has no "
                                    f"{', '.join(map(str, missing[target.label]))}; {fix}")
    return VariantLoads(unloadable, unchecked)
