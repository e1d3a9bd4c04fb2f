"""Which layers tfmot prunes, and why each other layer with weights stays dense."""

from __future__ import annotations

from typing import Any

from .. import tfenv
from ..errors import UsageError
from .settings import PruneSettings


def dense_reasons(model: Any, settings: PruneSettings) -> dict[str, str | None]:
    """Every layer that holds weights, by name: None for a layer to prune, else why it is left dense."""
    xnnpack_policy = checked_xnnpack_policy(model) if settings.policy == "xnnpack" else None
    registry = _prune_registry()
    reasons: dict[str, str | None] = {}
    for layer in model.layers:
        if not layer.weights:
            continue
        if settings.skips(layer.name):
            reasons[layer.name] = f"matches --skip-layers '{settings.skip_layers}'"
        elif not (registry.supports(layer) or hasattr(layer, "get_prunable_weights")):
            reasons[layer.name] = f"tfmot cannot prune {type(layer).__name__} layers"
        elif xnnpack_policy is not None and not xnnpack_policy.allow_pruning(layer):
            reasons[layer.name] = "XNNPACK's sparse path runs only 1x1 convolutions sparse"
        else:
            reasons[layer.name] = m_by_n_obstacle(layer, settings.m_by_n) if settings.m_by_n else None
    return reasons


def m_by_n_obstacle(layer: Any, m_by_n: tuple[int, int]) -> str | None:
    """tfmot groups M:N along the kernel's input-channel axis (the last one of TFLite's layout): it takes 2-D and
    4-D kernels, and a group must not straddle two output channels."""
    kernel = getattr(layer, "kernel", None)
    if kernel is None or len(kernel.shape) not in (2, 4):
        return f"--m-by-n applies to Dense and Conv2D kernels, not {type(layer).__name__}"
    channels = int(kernel.shape[-2])
    if channels % m_by_n[1]:
        return f"{channels} input channels do not split into groups of {m_by_n[1]}"
    return None


def checked_xnnpack_policy(model: Any) -> Any:
    """tfmot's ``PruneForLatencyOnXNNPack``, after it has checked the whole model; its refusal names only a layer
    class, so the layer it stopped at is named here."""
    policy_class = tfenv.tfmot().sparsity.keras.PruneForLatencyOnXNNPack

    class NamingPolicy(policy_class):
        def _check_layer_support(self, layer: Any) -> bool:
            supported = super()._check_layer_support(layer)
            if not supported:
                self.refused.append(layer)
            return supported

    policy = NamingPolicy()
    policy.refused = []
    try:
        policy.ensure_model_supports_pruning(model)
    except ValueError as exc:
        if policy.refused:
            layer = policy.refused[-1]
            raise UsageError(f"--policy xnnpack: layer '{layer.name}' ({type(layer).__name__}) lies between the "
                             "sparse subgraph's stem and its global average pooling, and XNNPACK's sparse path "
                             "cannot run it", hint="change that layer, or prune without --policy") from None
        raise UsageError(f"--policy xnnpack: {str(exc).strip().rstrip('.')}",
                         hint="XNNPACK's sparse path needs a ZeroPadding2D(1) + 3x3 stride-2 valid Conv2D stem on 3 "
                              "channels and a GlobalAveragePooling2D end; prune without --policy") \
            from None
    return policy


def prunable_weights(layer: Any) -> list[Any]:
    """The variables tfmot would mask in ``layer`` (a Dense or Conv kernel; none of a DepthwiseConv2D)."""
    registry = _prune_registry()
    if hasattr(layer, "get_prunable_weights"):
        return list(layer.get_prunable_weights())
    return list(registry.make_prunable(layer).get_prunable_weights()) if registry.supports(layer) else []


def _prune_registry() -> Any:
    tfenv.tfmot()
    # tfmot exports no public name for the registry its wrapper consults; prune_low_magnitude uses this one.
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    return PruneRegistry
