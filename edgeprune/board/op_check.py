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
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection

from ..model.op_codes import OpVersion, one_op_model
from .cache import DeviceCache
from .runner import RunnerClient

OPS_TIMEOUT_S = 300.0  # a slow board builds one interpreter per op version


@dataclass(frozen=True)
class OpSupport:
    """What one runtime on one board resolves, of the op versions it was asked about."""

    runtime: str  # "tflite_runtime 2.14.0"
    runtime_name: str
    missing: dict[OpVersion, str] = field(default_factory=dict)  # op version -> the runtime's own words

    def missing_in(self, ops: Collection[OpVersion]) -> list[OpVersion]:
        return sorted(op for op in ops if op in self.missing)

    def fix(self, device: str, loadable: Collection[str]) -> str:
        """What to do about a variant it cannot load: a newer runtime on the board, or a variant it loads."""
        if self.runtime_name == "ai_edge_litert":
            newer = "upgrade ai-edge-litert on the board (pip install -U ai-edge-litert in its venv)"
        else:
            newer = f"install ai-edge-litert on the board (edgeprune devices setup {device})"
        others = f", or ship a variant it loads ({', '.join(loadable)})" if loadable else ""
        return newer + others


def ask_runtime(runner: RunnerClient, cache: DeviceCache, ops: Collection[OpVersion], *,
                runtime: str = "auto") -> OpSupport | None:
    """The runtime's answer for ``ops``; None when there is nothing to ask."""
    asked = sorted(set(ops))
    if not asked:
        return None
    bundle = {"ops": [{"op": op.name, "version": op.version,
                       "model": base64.b64encode(one_op_model(op)).decode("ascii")} for op in asked]}
    with tempfile.TemporaryDirectory(prefix="edgeprune-ops-") as scratch:
        local = Path(scratch) / "ops.json"
        local.write_text(json.dumps(bundle, sort_keys=True))
        remote = cache.ensure(local)
    reply = runner.ops(remote, [(op.name, op.version) for op in asked], runtime=runtime, timeout_s=OPS_TIMEOUT_S)
    name, version = reply["runtime"]["name"], reply["runtime"]["version"]
    missing = {op: answer["error"] or "" for op, answer in zip(asked, reply["ops"]) if not answer["loads"]}
    return OpSupport(f"{name} {version}", name, missing)
