"""Did XNNPACK's sparse inference apply on a device? Decided from evidence, never assumed.

Evidence: the export's eligibility verdict (graph shape, zeros, data type), the device's architecture and
runtime, and the measured speed-up of ``fp32-sparse`` over its dense twin ``fp32`` with a confidence interval.
"""

from __future__ import annotations

from typing import Any

from ..variants import REFERENCE_VARIANT
from ..results.document import ResultsDocument, RunRecord
from .stats import speedup as measured_speedup

DENSE, SPARSE = REFERENCE_VARIANT, "fp32-sparse"
# Below this lower confidence bound a "speed-up" is within what dense/sparse layout noise can explain.
ENGAGED_SPEEDUP = 1.15
X86_ARCHES = {"x86_64", "amd64", "i686", "i386"}
ARM32_ARCHES = {"armv6l", "armv7l", "armhf", "arm"}


def sparse_verdicts(document: ResultsDocument, eligibility: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """One verdict per device x model x threads that has both twins; ``eligibility`` maps model -> the
    export's ``xnnpack_sparse`` verdict (None when the model came without a manifest)."""
    verdicts = []
    for dense in document.runs:
        if dense.variant != DENSE or not dense.ok or not dense.xnnpack:
            continue
        sparse = document.find(dense.device, dense.model, SPARSE, dense.threads, True)
        if sparse is None or not sparse.ok:
            continue
        verdicts.append(verdict(dense, sparse, eligibility.get(dense.model)))
    return verdicts


def verdict(dense: RunRecord, sparse: RunRecord, eligibility: dict[str, Any] | None) -> dict[str, Any]:
    speedup = measured_speedup(dense.samples_ms or [], sparse.samples_ms or [])
    info = dense.device_info or {}
    arch = str(info.get("arch") or "unknown")
    engaged = speedup.low > ENGAGED_SPEEDUP
    reasons = [f"measured: {SPARSE} runs {speedup} times as fast as {DENSE} (median ratio, 95% CI)"]
    if eligibility is None:
        reasons.append("no export manifest: the graph's eligibility is unknown")
    elif not eligibility.get("eligible"):
        blocking = "; ".join(reason.removeprefix("blocks: ").rstrip(".") for reason in eligibility.get("reasons") or []
                             if reason.startswith("blocks: ")) or "see edgeprune inspect"
        reasons.append(f"the graph is not eligible for sparse inference: {blocking}")
    if arch in X86_ARCHES:
        reasons.append("x86 CPU: XNNPACK never takes the sparse path where AVX exists (dense is expected to be "
                       "faster), so on x86 pruning buys size, not speed")
    elif arch in ARM32_ARCHES:
        reasons.append("32-bit ARM: LiteRT's 32-bit ARM builds have no XNNPACK, so no sparse path")
    elif not (sparse.xnnpack_delegate or {}).get("delegate_created"):
        reasons.append("the XNNPACK delegate was not created on this device, so no sparse path")
    applied = engaged and arch not in X86_ARCHES | ARM32_ARCHES and bool(eligibility and eligibility.get("eligible"))
    if applied:
        reasons.append("sparse inference applied: an eligible graph on ARM with XNNPACK, measurably faster")
    elif arch not in X86_ARCHES | ARM32_ARCHES and eligibility and eligibility.get("eligible") and not engaged:
        reasons.append("eligible on this CPU but not measurably faster: XNNPACK probably kept the dense path "
                       "(each 1x1 convolution needs more than 2/3 zeros)")
    return {
        "device": dense.device,
        "model": dense.model,
        "threads": dense.threads,
        "arch": arch,
        "eligible": None if eligibility is None else bool(eligibility.get("eligible")),
        "speedup": speedup.to_json(),
        "applied": applied,
        "reasons": reasons,
    }

