"""The spec lint shown by `tt eval` and returned with a run estimate (PRODUCT.md §7)."""

from __future__ import annotations

from typing import Literal

from tt_core.models.common import Model

ConstraintRule = Literal["never", "always", "judge"]
CoverageKind = Literal["guideline", "constraint"]


class ConstraintFinding(Model):
    """One constraint checked against the example outputs by the Never/Always heuristics."""

    index: int
    constraint: str
    rule: ConstraintRule  # `judge`: no heuristic applies, the LLM judge checks it during evaluation
    passed: bool
    offending_examples: list[int]  # indexes of the examples whose output breaks it, in order
    message: str


class CoverageItem(Model):
    """How many examples exercise one guideline or constraint, by keyword overlap."""

    kind: CoverageKind
    index: int
    text: str
    keywords: list[str]
    examples: int


class SpecLint(Model):
    constraints: list[ConstraintFinding]
    coverage: list[CoverageItem]
