"""One variant's rounds on one device, merged into one run record."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from ..board.replies import BenchReply
from ..results.document import STATUS_FAILED, STATUS_OK, RunRecord
from ..results.latency import Latency

NS_PER_MS = 1e6


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
            latency_ms=Latency.from_values(samples_ms),
            samples_ms=[round(value, 6) for value in samples_ms],
            init_ms=statistics.median(reply["init_ns"] for reply in self.replies) / NS_PER_MS,
            first_invoke_ms=statistics.median(reply["first_invoke_ns"] for reply in self.replies) / NS_PER_MS,
            peak_rss_mb=max(rss) if rss else None,
            xnnpack_delegate=first["xnnpack"],
            board_state={"before": first["state_before"], "after": last["state_after"]},
            rounds={"done": len(self.replies), "planned": self.planned},
        )
