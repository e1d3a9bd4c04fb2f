"""Per-layer numerics: where a variant's intermediate tensors part from a reference model's (``compare``), so a
broken variant names the layer that broke it."""
