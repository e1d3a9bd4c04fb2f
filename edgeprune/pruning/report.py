"""What pruning did, layer by layer, and what it cost: typed until it is printed or written as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .settings import PruneSettings


@dataclass(frozen=True)
class LayerPruning:
    name: str
    kind: str  # the Keras layer class
    target_sparsity: float | None  # None: left dense, ``reason`` says why
    prunable_weights: int  # the weights tfmot prunes (its kernel); 0 for a layer it cannot prune
    achieved_sparsity: float  # zeros among those weights, after stripping
    params_wrapped: int  # with tfmot's masks, thresholds and step counter: what the training graph holds
    params_stripped: int
    reason: str | None = None

    @property
    def pruned(self) -> bool:
        return self.target_sparsity is not None


@dataclass(frozen=True)
class Score:
    """A model on the validation data: top-1 (a share, 0..1) for classifiers, and the training loss."""
    top1: float | None
    loss: float | None


@dataclass
class PruneReport:
    model: str
    model_sha256: str
    settings: PruneSettings
    validation: str  # where the scores come from
    loss: str  # the training loss used, and where it came from
    before: Score
    after: Score
    layers: list[LayerPruning] = field(default_factory=list)
    output: str | None = None
    train_seconds: float = 0.0

    @property
    def pruned_layers(self) -> list[LayerPruning]:
        return [layer for layer in self.layers if layer.pruned]

    @property
    def achieved_sparsity(self) -> float:
        """Zeros over all pruned kernels together (0.0 when nothing was pruned)."""
        pruned = self.pruned_layers
        weights = sum(layer.prunable_weights for layer in pruned)
        zeros = sum(layer.achieved_sparsity * layer.prunable_weights for layer in pruned)
        return zeros / weights if weights else 0.0

    @property
    def top1_drop(self) -> float | None:
        """Points of top-1 lost (negative: gained)."""
        if self.before.top1 is None or self.after.top1 is None:
            return None
        return (self.before.top1 - self.after.top1) * 100

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "model_sha256": self.model_sha256, "output": self.output,
            "settings": self.settings.to_json(), "validation": self.validation, "loss": self.loss,
            "before": asdict(self.before), "after": asdict(self.after), "top1_drop": self.top1_drop,
            "achieved_sparsity": self.achieved_sparsity, "train_seconds": self.train_seconds,
            "layers": [asdict(layer) for layer in self.layers],
        }
