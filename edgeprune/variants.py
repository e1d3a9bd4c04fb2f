"""The TFLite variants edgeprune can export, and which of them to build by default: the names export writes,
bench filters by, and gate policies and reports speak of."""

from __future__ import annotations

from dataclasses import dataclass
from .errors import UsageError
from .text import printable

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


@dataclass(frozen=True)
class VariantChoice:
    """A ``--variants`` list: the variants in the canonical order, and the ones named one by one (a demand: export
    fails when one of them is rejected); ``all`` names none of them one by one."""

    specs: tuple[VariantSpec, ...]
    named: frozenset[str]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(spec.name for spec in self.specs)


def choose_variants(text: str) -> VariantChoice:
    """``fp32,int8`` or ``all`` (export's and bench's ``--variants``); a UsageError for an unknown name."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    choices = f"choose from all, {', '.join(VARIANTS)}"
    if not names:
        raise UsageError("empty list of variants", hint=choices)
    unknown = [name for name in names if name not in VARIANTS and name != "all"]
    if unknown:
        raise UsageError(f"unknown variant '{printable(unknown[0], 40)}'", hint=choices)
    if "all" in names:
        return VariantChoice(tuple(VARIANTS.values()), frozenset())
    return VariantChoice(tuple(spec for name, spec in VARIANTS.items() if name in names), frozenset(names))


def parse_variant_list(text: str) -> list[VariantSpec]:
    """``fp32,int8`` or ``all`` -> specs, in the canonical order, fp32 first."""
    return list(choose_variants(text).specs)


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
