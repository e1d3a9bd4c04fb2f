"""A run's on-device accuracy figures, kept as this object until the results are written."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class AccuracyFigures:
    """The variant's outputs on the ``--data`` set: against its labels (``top1``) and against the reference model's
    outputs (agreement, errors, SNR). A figure that does not apply (no labels, one output value) is None."""

    n: int | None = None
    finite: bool | None = None
    top1: float | None = None
    top1_agreement: float | None = None
    max_abs_error: float | None = None
    mean_abs_error: float | None = None
    snr_db: float | None = None
    reference: str | None = None  # the model whose outputs are the reference; None when there is none
    data: str | None = None  # the data set

    def to_json(self) -> dict[str, Any]:
        # A count or finiteness never taken is left out (the schema has no null for them); figures may be null.
        return {key: value for key, value in asdict(self).items() if value is not None or key not in ("n", "finite")}

    @classmethod
    def from_json(cls, figures: dict[str, Any]) -> "AccuracyFigures":
        """From a results document (checked against its schema already); keys of a later version are left out."""
        return cls(**{f.name: figures[f.name] for f in fields(cls) if f.name in figures})
