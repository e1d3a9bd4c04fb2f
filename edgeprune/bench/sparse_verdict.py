"""Did XNNPACK's sparse inference apply to each sparse variant on a device? Decided from evidence, never assumed.

Evidence: the export's eligibility verdict (graph shape and zeros), what the probe read from the device
(architecture, CPU part and feature flags), the runtime that measured the runs, the rules read in XNNPACK's and LiteRT's source
(``docs/xnnpack-sparse.md``, whose sections the reasons cite), and the measured speed-up of each sparse variant
over its dense twin (``fp16-sparse`` against ``fp16``, ``int8-sparse`` against ``int8``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..results.document import ResultsDocument, RunRecord
from ..variants import DYNAMIC_RANGE_INT8, FLOAT16, FLOAT32, VARIANTS
from .stats import RatioEstimate
from .stats import speedup as measured_speedup

# Below this lower confidence bound a "speed-up" is within what dense/sparse layout noise can explain.
ENGAGED_SPEEDUP = 1.15
X86_ARCHES = {"x86_64", "amd64", "i686", "i386"}
ARM32_ARCHES = {"armv6l", "armv7l", "armv8l", "armhf", "arm"}
ARM64_ARCHES = {"aarch64", "arm64"}
# cpuinfo (XNNPACK's CPU detection) grants fp16 arithmetic to these Arm cores by part number even when the kernel
# does not list the hwcaps (src/arm/linux/aarch64-isa.c): A55, A65, A75, A76, N1, A77, A76AE, V1, N2, V2.
FP16_ARITHMETIC_PARTS = {"0xd05", "0xd06", "0xd0a", "0xd0b", "0xd0c", "0xd0d", "0xd0e", "0xd40", "0xd49", "0xd4f"}
FP16_ARITHMETIC_HWCAPS = {"fphp", "asimdhp"}
# A sparse variant and the dense variant it is timed against: same quantization, no sparse encoding.
DENSE_TWIN = {spec.name: next(dense.name for dense in VARIANTS.values()
                              if dense.quantization == spec.quantization and not dense.sparse)
              for spec in VARIANTS.values() if spec.sparse}
DOC = "docs/xnnpack-sparse.md"
# tflite-runtime 2.14.0 (its last release) bundles XNNPACK b9d4073a (April 2023), whose sparse rewrite runs only on
# CPUs with ARMv8.2 fp16 arithmetic, for fp32 graphs too: a regression XNNPACK fixed in 41e87ce3 (§8).
FP16_GATED_SPARSE_RUNTIMES = {("tflite_runtime", "2.14.")}


@dataclass(frozen=True)
class DeviceCpu:
    """What the probe read about a device's CPU; features are empty when the device did not list them."""
    arch: str
    part: str | None
    features: frozenset[str]

    @classmethod
    def of(cls, probe: Mapping[str, Any] | None, run_info: Mapping[str, Any] | None) -> "DeviceCpu":
        probe, run_info = probe or {}, run_info or {}
        return cls(arch=str(probe.get("arch") or run_info.get("arch") or "unknown"), part=probe.get("cpu_part"),
                   features=frozenset(probe.get("cpu_features") or ()))

    def fp16_arithmetic(self) -> bool | None:
        """None when the device told neither its CPU part nor its feature flags."""
        if self.part is None and not self.features:
            return None
        return self.part in FP16_ARITHMETIC_PARTS or FP16_ARITHMETIC_HWCAPS <= self.features

    def sparse_blocker(self, delegate_created: bool) -> str | None:
        """Why XNNPACK cannot take its sparse path on this CPU at all, or None when it can."""
        if self.arch in X86_ARCHES and ("avx" in self.features or not self.features):
            return (f"x86 CPU with AVX{'' if self.features else ' (assumed: the device listed no CPU flags)'}: "
                    f"XNNPACK turns its sparse path off where AVX exists, dense is expected to be faster "
                    f"({DOC} §5), so on x86 pruning buys size, not speed")
        if delegate_created:
            return None
        if self.arch in ARM32_ARCHES:
            return f"32-bit ARM: LiteRT's 32-bit ARM wheels are built without XNNPACK, so no sparse path ({DOC} §5)"
        return "the XNNPACK delegate was not created on this device, so no sparse path"

    def runtime_blocker(self, runtime: Mapping[str, Any] | None) -> str | None:
        """Why the runtime's own XNNPACK skips the sparse path on this aarch64 CPU, or None when it does not (off
        aarch64 the CPU's own blocker says it for every runtime)."""
        name, version = (runtime or {}).get("name"), str((runtime or {}).get("version") or "")
        if not any(name == gated and version.startswith(prefix) for gated, prefix in FP16_GATED_SPARSE_RUNTIMES):
            return None
        if self.arch not in ARM64_ARCHES or self.fp16_arithmetic():
            return None
        cpu = "this CPU lacks" if self.fp16_arithmetic() is False else "this CPU is not known to have"
        return (f"{name} {version}: its XNNPACK (April 2023) takes the sparse path only on CPUs with ARMv8.2 fp16 "
                f"arithmetic, for fp32 too, and {cpu} it; ai-edge-litert's XNNPACK has the fix, so install it on "
                f"the board for sparse inference ({DOC} §8)")


def sparse_verdicts(document: ResultsDocument, eligibility: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """One verdict per device x model x threads x sparse variant whose dense twin ran with XNNPACK;
    ``eligibility`` maps model -> the export's ``xnnpack_sparse`` verdict (None without a manifest)."""
    verdicts = []
    device_order = {name: index for index, name in enumerate(document.settings.get("devices", []))}
    for sparse in sorted(document.runs, key=lambda run: device_order.get(run.device, len(device_order))):
        dense_name = DENSE_TWIN.get(sparse.variant)
        if dense_name is None or not sparse.xnnpack:
            continue
        dense = document.find(sparse.device, sparse.model, dense_name, sparse.threads, True)
        if dense is None or not dense.ok:
            continue
        probe = (document.devices.get(sparse.device) or {}).get("info")
        verdicts.append(verdict(dense, sparse, eligibility.get(sparse.model), DeviceCpu.of(probe, dense.device_info)))
    return verdicts


def verdict(dense: RunRecord, sparse: RunRecord, eligibility: dict[str, Any] | None,
            cpu: DeviceCpu) -> dict[str, Any]:
    quantization = VARIANTS[sparse.variant].quantization
    speedup = measured_speedup(dense.samples_ms or [], sparse.samples_ms or []) if sparse.ok else None
    engaged = speedup is not None and speedup.low > ENGAGED_SPEEDUP
    eligible = None if eligibility is None else bool(eligibility.get("eligible"))
    # The dense twin ran: its delegate evidence is the device's (a failed sparse run may have none).
    delegate_created = bool((dense.xnnpack_delegate or {}).get("delegate_created"))
    runtime = sparse.runtime or dense.runtime
    blockers = [blocker for blocker in (graph_blocker(eligibility, quantization), cpu.sparse_blocker(delegate_created),
                                        data_type_blocker(quantization)) if blocker]
    if quantization in (FLOAT32, FLOAT16) and (gate := cpu.runtime_blocker(runtime)):
        blockers.append(gate)  # int8 is refused for its data type whatever the runtime: one reason is enough
    reasons = [measured(dense, sparse, speedup)] + blockers
    if quantization == FLOAT16 and cpu.arch in ARM64_ARCHES:
        reasons.append(fp16_note(cpu))
    applied = engaged and not blockers and eligible is True
    reasons.append(conclusion(sparse.variant, dense.variant, speedup, engaged, applied, blockers))
    return {
        "device": dense.device,
        "model": dense.model,
        "variant": sparse.variant,
        "dense_variant": dense.variant,
        "threads": dense.threads,
        "arch": cpu.arch,
        "eligible": eligible,
        "speedup": speedup.to_json() if speedup else None,
        "applied": applied,
        "reasons": reasons,
    }


def measured(dense: RunRecord, sparse: RunRecord, speedup: RatioEstimate | None) -> str:
    if speedup is None:
        return f"measured: {sparse.variant} failed on this device ({sparse.error or 'no error recorded'})"
    return f"measured: {sparse.variant} runs {speedup} times as fast as {dense.variant} (median ratio, 95% CI)"


def graph_blocker(eligibility: dict[str, Any] | None, quantization: str) -> str | None:
    if eligibility is None:
        return "no export manifest: the graph's eligibility is unknown"
    if eligibility.get("eligible") or quantization not in (FLOAT32, FLOAT16):
        return None  # a quantized graph is refused for its data type whatever its shape: one reason is enough
    blocking = "; ".join(reason.removeprefix("blocks: ").rstrip(".") for reason in eligibility.get("reasons") or []
                         if reason.startswith("blocks: ")) or "see edgeprune inspect"
    return f"the graph is not eligible for sparse inference: {blocking}"


def data_type_blocker(quantization: str) -> str | None:
    if quantization == DYNAMIC_RANGE_INT8:
        return (f"dynamic-range int8: the weights stay int8 and activations are quantized on the fly, and XNNPACK's "
                f"sparse path takes only fp32 and fp16 values ({DOC} §3)")
    if quantization not in (FLOAT32, FLOAT16):
        return (f"int8: XNNPACK's sparse path takes only fp32 and fp16 values and has no integer sparse kernel; the "
                f"sparse weights are densified when the model loads, so the dense int8 kernels run ({DOC} §3, §4, §6)")
    return None


def fp16_note(cpu: DeviceCpu) -> str:
    arithmetic = cpu.fp16_arithmetic()
    has = ("whether this CPU has fp16 arithmetic is not known" if arithmetic is None
           else f"this CPU {'has' if arithmetic else 'lacks'} fp16 arithmetic")
    return (f"fp16 weights: XNNPACK widens them to fp32 when it creates the operator and runs the fp32 sparse kernel, "
            f"so expect about fp32-sparse's speed-up; {has}, which matters only when fp16 compute is forced "
            f"({DOC} §2, §4)")


def conclusion(variant: str, dense: str, speedup: RatioEstimate | None, engaged: bool, applied: bool,
               blockers: list[str]) -> str:
    if speedup is None:
        return "not known: the sparse variant has no measurement to judge by"
    if applied:
        return "sparse inference applied: an eligible graph, a CPU and data type XNNPACK's sparse path takes, " \
               "measurably faster"
    if blockers and engaged:
        return (f"not applied although {variant} measured faster than {dense}: XNNPACK has no sparse path here, so "
                f"the gap comes from elsewhere (noise on a busy device, a different kernel); measure again")
    if blockers:
        return f"not applied: {variant} runs {dense}'s dense kernels and buys a smaller file, not speed"
    return ("eligible on this CPU but not measurably faster: XNNPACK probably kept the dense path (every 1x1 "
            "convolution and fully connected layer of the cluster together need more than 2/3 zeros)")
