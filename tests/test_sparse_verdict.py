"""The rules behind each sparse variant's verdict (pure logic; the measured ones are in test_emulated_board.py)."""

from __future__ import annotations

import pytest

from edgeprune.bench.sparse_verdict import DENSE_TWIN, DeviceCpu, sparse_verdicts
from edgeprune.results.document import ResultsDocument, RunRecord

A72 = {"arch": "aarch64", "cpu_part": "0xd08", "cpu_features": ["fp", "asimd", "evtstrm", "crc32", "cpuid"]}
A76 = {"arch": "aarch64", "cpu_part": "0xd0b", "cpu_features": ["fp", "asimd", "crc32"]}
X86_AVX = {"arch": "x86_64", "cpu_part": None, "cpu_features": ["sse4_2", "avx", "avx2"]}
X86_SSE = {"arch": "x86_64", "cpu_part": None, "cpu_features": ["sse2", "sse4_2"]}
ARMV7 = {"arch": "armv7l", "cpu_part": "0xd08", "cpu_features": ["neon", "vfpv4"]}
ELIGIBLE = {"eligible": True, "reasons": []}
NOT_ELIGIBLE = {"eligible": False, "reasons": ["blocks: the stem pads asymmetrically (Keras SAME at stride 2)."]}


LITERT = {"name": "ai_edge_litert", "version": "2.3.0"}
TFLITE_RUNTIME = {"name": "tflite_runtime", "version": "2.14.0"}


def run(variant: str, milliseconds: float, *, delegate: bool = True, error: str | None = None,
        runtime: dict | None = None) -> RunRecord:
    samples = [milliseconds * (1 + 0.01 * (index % 5)) for index in range(30)]
    return RunRecord(device="board", model="m", variant=variant, model_sha256=None, size_bytes=1, threads=1,
                     xnnpack=True, status="failed" if error else "ok", error=error, runtime=runtime or LITERT,
                     samples_ms=None if error else samples, device_info={"arch": "ignored-when-probed"},
                     xnnpack_delegate=None if error else {"requested": True, "delegate_created": delegate,
                                                          "log_warnings": []})


def judged(probe: dict, runs: list[RunRecord], eligibility: dict | None = ELIGIBLE) -> dict[str, dict]:
    document = ResultsDocument.new({})
    document.runs = runs
    document.devices = {"board": {"info": probe}}
    return {verdict["variant"]: verdict for verdict in sparse_verdicts(document, {"m": eligibility})}


def test_every_sparse_variant_is_timed_against_its_dense_twin():
    assert DENSE_TWIN == {"fp32-sparse": "fp32", "fp16-sparse": "fp16", "int8-dynamic-sparse": "int8-dynamic",
                          "int8-sparse": "int8"}
    verdicts = judged(A72, [run("fp32", 10), run("fp32-sparse", 5), run("fp16", 10), run("fp16-sparse", 5),
                            run("int8", 4), run("int8-sparse", 4)])
    assert {name: verdict["dense_variant"] for name, verdict in verdicts.items()} == {
        "fp32-sparse": "fp32", "fp16-sparse": "fp16", "int8-sparse": "int8"}
    assert verdicts["fp16-sparse"]["speedup"]["ratio"] == pytest.approx(2.0, rel=0.05)
    assert verdicts["int8-sparse"]["speedup"]["ratio"] == pytest.approx(1.0, rel=0.05)


def test_fp32_and_fp16_sparse_apply_on_aarch64_when_measurably_faster():
    verdicts = judged(A72, [run("fp32", 10), run("fp32-sparse", 5), run("fp16", 10), run("fp16-sparse", 5)])
    assert verdicts["fp32-sparse"]["applied"] and verdicts["fp16-sparse"]["applied"]
    assert verdicts["fp16-sparse"]["arch"] == "aarch64"
    assert any("widens them to fp32" in reason and "lacks fp16 arithmetic" in reason
               for reason in verdicts["fp16-sparse"]["reasons"])


@pytest.mark.parametrize("probe", [A76, {**A72, "cpu_features": A72["cpu_features"] + ["fphp", "asimdhp"]}])
def test_fp16_arithmetic_is_read_from_the_core_or_both_hwcaps(probe):
    assert DeviceCpu.of(probe, None).fp16_arithmetic() is True
    assert DeviceCpu.of({**A72, "cpu_features": ["fphp"]}, None).fp16_arithmetic() is False
    unknown = DeviceCpu.of({"arch": "aarch64"}, None)
    assert unknown.fp16_arithmetic() is None


def test_int8_sparse_never_applies_even_when_it_measures_faster():
    verdict = judged(A72, [run("int8", 8), run("int8-sparse", 4)])["int8-sparse"]
    assert verdict["applied"] is False
    assert any(reason.startswith("int8: XNNPACK's sparse path takes only fp32 and fp16") for reason in verdict["reasons"])
    assert "not applied although int8-sparse measured faster than int8" in verdict["reasons"][-1]


def test_an_equal_int8_sparse_buys_size_not_speed():
    verdict = judged(A72, [run("int8", 4), run("int8-sparse", 4)])["int8-sparse"]
    assert verdict["reasons"][-1] == "not applied: int8-sparse runs int8's dense kernels and buys a smaller file, not speed"


@pytest.mark.parametrize("probe, expected", [
    (X86_AVX, "x86 CPU with AVX: XNNPACK turns its sparse path off"),
    ({**X86_AVX, "cpu_features": []}, "x86 CPU with AVX (assumed: the device listed no CPU flags)"),
])
def test_x86_with_avx_never_applies_whatever_the_timing(probe, expected):
    verdict = judged(probe, [run("fp32", 10), run("fp32-sparse", 5)])["fp32-sparse"]
    assert verdict["applied"] is False and any(reason.startswith(expected) for reason in verdict["reasons"])


def test_x86_without_avx_may_take_the_sse_sparse_path():
    assert judged(X86_SSE, [run("fp32", 10), run("fp32-sparse", 5)])["fp32-sparse"]["applied"] is True


def test_32_bit_arm_without_the_delegate_names_the_wheels():
    verdict = judged(ARMV7, [run("fp32", 10, delegate=False), run("fp32-sparse", 5, delegate=False)])["fp32-sparse"]
    assert verdict["applied"] is False
    assert any(reason.startswith("32-bit ARM: LiteRT's 32-bit ARM wheels are built without XNNPACK")
               for reason in verdict["reasons"])


def test_aarch64_without_the_delegate_says_so():
    verdict = judged(A72, [run("fp32", 10, delegate=False), run("fp32-sparse", 5, delegate=False)])["fp32-sparse"]
    assert verdict["applied"] is False
    assert "the XNNPACK delegate was not created on this device, so no sparse path" in verdict["reasons"]


def test_an_ineligible_graph_or_an_unknown_one_is_not_applied():
    runs = [run("fp32", 10), run("fp32-sparse", 5)]
    refused = judged(A72, runs, NOT_ELIGIBLE)["fp32-sparse"]
    assert refused["applied"] is False and refused["eligible"] is False
    assert "the graph is not eligible for sparse inference: the stem pads asymmetrically (Keras SAME at stride 2)" \
        in refused["reasons"]
    unknown = judged(A72, runs, None)["fp32-sparse"]
    assert unknown["applied"] is False and unknown["eligible"] is None


def test_eligible_but_not_faster_says_the_dense_path_was_kept():
    verdict = judged(A72, [run("fp32", 10), run("fp32-sparse", 10)])["fp32-sparse"]
    assert verdict["applied"] is False and "probably kept the dense path" in verdict["reasons"][-1]


def test_a_failed_sparse_variant_gets_a_verdict_with_its_error_and_no_speedup():
    verdicts = judged(A72, [run("int8", 4), run("int8-sparse", 4, error="failed to prepare FULLY_CONNECTED"),
                            run("fp32", 4), run("fp32-sparse", 4, error="killed")])
    assert verdicts["int8-sparse"]["speedup"] is None and verdicts["int8-sparse"]["applied"] is False
    assert verdicts["int8-sparse"]["reasons"][0] == \
        "measured: int8-sparse failed on this device (failed to prepare FULLY_CONNECTED)"
    # Not blamed on the device: the dense twin's delegate was created.
    assert verdicts["fp32-sparse"]["reasons"] == ["measured: fp32-sparse failed on this device (killed)",
                                                  "not known: the sparse variant has no measurement to judge by"]


def test_no_verdict_without_a_dense_twin_that_ran():
    assert judged(A72, [run("fp32-sparse", 5), run("fp16", 10, error="boom"), run("fp16-sparse", 5)]) == {}


def test_tflite_runtime_2_14_takes_the_sparse_path_only_with_fp16_arithmetic():
    """Its XNNPACK (April 2023) gates the sparse rewrite on fp16 arithmetic: measured 0.95x on the emulated A72,
    where ai-edge-litert ran the same file 3.2x faster."""
    runs = [run("fp32", 10, runtime=TFLITE_RUNTIME), run("fp32-sparse", 10, runtime=TFLITE_RUNTIME)]
    a72 = judged(A72, runs)["fp32-sparse"]
    assert a72["applied"] is False
    assert any(reason.startswith("tflite_runtime 2.14.0: its XNNPACK (April 2023) takes the sparse path only on CPUs "
                                 "with ARMv8.2 fp16 arithmetic") and "this CPU lacks it" in reason
               and "install it on the board" in reason for reason in a72["reasons"])
    a76 = judged(A76, [run("fp32", 10, runtime=TFLITE_RUNTIME), run("fp32-sparse", 5, runtime=TFLITE_RUNTIME)])
    assert a76["fp32-sparse"]["applied"] is True
    litert = judged(A72, [run("fp32", 10), run("fp32-sparse", 5)])["fp32-sparse"]
    assert litert["applied"] is True and not any("April 2023" in reason for reason in litert["reasons"])
    # Off aarch64 the CPU's own rule says it, and int8 is refused for its data type: no advice to switch runtimes.
    on_x86 = judged(X86_AVX, runs)["fp32-sparse"]
    int8 = judged(A72, [run("int8", 4, runtime=TFLITE_RUNTIME), run("int8-sparse", 4, runtime=TFLITE_RUNTIME)])
    for verdict in (on_x86, int8["int8-sparse"]):
        assert verdict["applied"] is False and not any("April 2023" in reason for reason in verdict["reasons"])
