"""Which op versions a board's runtime resolves, asked before anything is measured.

A converter writes op versions as new as itself (TF 2.21 writes FULLY_CONNECTED v12 for dynamic-range int8); a
board with an older runtime (tflite-runtime 2.14 stops at v10) refuses the whole model. The host reads each
variant's op-code table, sends one tiny model per distinct (op, version) in one bundle, and the runner says which
its runtime loads (``edgeprune_runner.py ops``). Knowing it up front, a bench names the op and the fix instead of
a load error, and measures the other variants.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection

from ..model.op_codes import OpVersion, one_op_model
from .cache import DeviceCache
from .replies import MAX_OPS_ASKED
from .runner import RunnerClient

OPS_TIMEOUT_S = 300.0  # a slow board builds one interpreter per op version
# What a runtime says when its op resolver lacks a builtin or a version of it (InterpreterBuilder); any other
# refusal of a one-op model says nothing about the op.
UNRESOLVED = re.compile(r"Didn't find op for builtin opcode|builtin_code out of range")
# Runtimes that ship no wheel for these architectures: no point in suggesting them there.
LITERT_ARCHES = frozenset({"x86_64", "aarch64", "arm64"})


@dataclass(frozen=True)
class OpSupport:
    """What one runtime on one board resolves, of the op versions it was asked about."""

    runtime: str  # "tflite_runtime 2.14.0"
    runtime_name: str
    missing: frozenset[OpVersion] = frozenset()
    # Op versions the runtime refused for another reason than a missing op: its words. Nothing is judged by them.
    unexplained: dict[OpVersion, str] = field(default_factory=dict)

    def missing_in(self, ops: Collection[OpVersion]) -> list[OpVersion]:
        return sorted(op for op in ops if op in self.missing)


def ask_runtime(runner: RunnerClient, cache: DeviceCache, ops: Collection[OpVersion], *,
                runtime: str = "auto") -> OpSupport | None:
    """The runtime's answer for ``ops``; None when there is nothing to ask."""
    asked = sorted(set(ops))
    if not asked:
        return None
    name = version = ""
    missing: set[OpVersion] = set()
    unexplained: dict[OpVersion, str] = {}
    for start in range(0, len(asked), MAX_OPS_ASKED):
        chunk = asked[start:start + MAX_OPS_ASKED]
        reply = runner.ops(upload_bundle(cache, chunk), [(op.name, op.version) for op in chunk], runtime=runtime,
                           timeout_s=OPS_TIMEOUT_S)
        name, version = reply["runtime"]["name"], reply["runtime"]["version"]
        for op, answer in zip(chunk, reply["ops"]):
            if answer["loads"]:
                continue
            if UNRESOLVED.search(answer["error"] or ""):
                missing.add(op)
            else:
                unexplained[op] = answer["error"] or "no reason given"
    return OpSupport(f"{name} {version}", name, frozenset(missing), unexplained)


def upload_bundle(cache: DeviceCache, ops: list[OpVersion]) -> str:
    """The bundle of one-op models for ``ops``, on the device (content-addressed: sent once per set)."""
    bundle = {"ops": [{"op": op.name, "version": op.version,
                       "model": base64.b64encode(one_op_model(op)).decode("ascii")} for op in ops]}
    with tempfile.TemporaryDirectory(prefix="edgeprune-ops-") as scratch:
        local = Path(scratch) / "ops.json"
        local.write_text(json.dumps(bundle, sort_keys=True))
        return cache.ensure(local)


def load_fix(support: OpSupport, device: str, *, arch: str | None, forced: bool, installed: Collection[str],
             loadable: Collection[str]) -> str:
    """What to do about a variant the runtime cannot load: the runtime that loads it, or a variant it loads."""
    if forced and "ai_edge_litert" in installed and support.runtime_name != "ai_edge_litert":
        newer = "leave --runtime out: ai-edge-litert is installed there"
    elif support.runtime_name == "ai_edge_litert":
        newer = "upgrade ai-edge-litert on the board (pip install -U ai-edge-litert in its venv)"
    elif arch in LITERT_ARCHES:
        newer = f"install ai-edge-litert on the board (edgeprune devices setup {device})"
    else:
        newer = "export with a converter as old as the board's runtime"
    others = f", or ship a variant it loads ({', '.join(loadable)})" if loadable else ""
    return newer + others
