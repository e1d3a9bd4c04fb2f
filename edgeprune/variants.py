"""The TFLite variants edgeprune can export, and which of them to build by default: the names export writes,
bench filters by, and gate policies and reports speak of."""

from __future__ import annotations

from dataclasses import dataclass
from .errors import UsageError

FLOAT32 = "float32"
FLOAT16 = "float16"
DYNAMIC_RANGE_INT8 = "dynamic-int8"
FULL_INT8 = "int8"


@dataclass(frozen=True)
class VariantSpec:
    name: str
    quantization: str
    sparse: bool

    @property
    def needs_calibration(self) -> bool:
        return self.quantization == FULL_INT8


VARIANTS: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in (
        VariantSpec("fp32", FLOAT32, sparse=False),
        VariantSpec("fp32-sparse", FLOAT32, sparse=True),
        VariantSpec("fp16", FLOAT16, sparse=False),
        VariantSpec("fp16-sparse", FLOAT16, sparse=True),
        VariantSpec("int8-dynamic", DYNAMIC_RANGE_INT8, sparse=False),
        VariantSpec("int8-dynamic-sparse", DYNAMIC_RANGE_INT8, sparse=True),
        VariantSpec("int8", FULL_INT8, sparse=False),
        VariantSpec("int8-sparse", FULL_INT8, sparse=True),
    )
}
REFERENCE_VARIANT = "fp32"


def parse_variant_list(text: str) -> list[VariantSpec]:
    """``fp32,int8`` or ``all`` -> specs, in the canonical order, fp32 first."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError("--variants is empty", hint=f"choose from all, {', '.join(VARIANTS)}")
    if "all" in names:
        return list(VARIANTS.values())
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise UsageError(
            f"--variants: unknown variant '{unknown[0]}'", hint=f"choose from all, {', '.join(VARIANTS)}"
        )
    return [spec for name, spec in VARIANTS.items() if name in names]


# Built when named (or with 'all'), never by default: the TF 2.21 converter writes this combination, and XNNPACK
# fails to prepare it on every model tried (../shared/REFERENCE.md, both shipped samples). Dynamic-range int8 never
# takes XNNPACK's sparse path, so the variant could only ever be smaller, not faster.
NOT_BY_DEFAULT = frozenset({"int8-dynamic-sparse"})


def default_variants(*, has_sparsity: bool, has_calibration: bool) -> list[VariantSpec]:
    """Every variant that can work: sparse ones only for a pruned model, full int8 only with real data, none of the
    combinations known to fail."""
    return [
        spec
        for spec in VARIANTS.values()
        if (has_sparsity or not spec.sparse) and (has_calibration or not spec.needs_calibration)
        and spec.name not in NOT_BY_DEFAULT
    ]
