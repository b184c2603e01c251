"""Local checks of a spec file (`tt eval`, and `tt push` before sending; PRODUCT.md §7).

The limits come from tt_core's request model, so the CLI and the API can never disagree on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from tt_core.errors import details_from_errors
from tt_core.language.text import normalise
from tt_core.models.base_models import UnknownBaseModelError, canonical_base_model
from tt_core.models.behavior_specs import WRITABLE_FIELDS, CreateBehaviorSpecRequest
from tt_core.models.spec_lint import CoverageItem
from tt_core.specs.lint import check_constraint, coverage

Severity = Literal["error", "warning"]

# Keys a file may hold besides the writable fields: `id` is written by `tt push`.
KNOWN_KEYS = frozenset({*WRITABLE_FIELDS, "id"})
RUN_KEYS = ("run_id", "behavior_spec_id", "run_number")
MIN_EXAMPLES = 5  # below this, evaluation reuses training examples (PRODUCT.md §9.3)
# Checked field by field, in the order the product lists them; base_model has its own check.
_FIELD_CHECKS = (
    "name",
    "examples",
    "description",
    "system_prompt",
    "guidelines",
    "constraints",
    "eval_cases",
)


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    severity: Severity
    message: str | None = None

    @property
    def failed_error(self) -> bool:
        return not self.passed and self.severity == "error"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "passed": self.passed, "severity": self.severity}
        if self.message is not None:
            out["message"] = self.message
        return out


def lint(data: Any) -> list[Check]:
    """Every check, in order; a non-object or a run payload stops after the first."""
    shape = _shape_check(data)
    if not shape.passed:
        return [shape]
    checks = [shape, *_field_checks(data), _base_model_check(data)]
    examples = _valid_examples(data.get("examples"))
    count = len(data["examples"]) if isinstance(data.get("examples"), list) else 0
    checks += [
        _warn(
            "system_prompt_set",
            isinstance(data.get("system_prompt"), str) and bool(data["system_prompt"].strip()),
            "system_prompt is empty: the model gets no persona or instructions",
        ),
        _warn(
            "has_guidelines",
            isinstance(data.get("guidelines"), list) and len(data["guidelines"]) > 0,
            "no guidelines: add at least one rule the model should follow",
        ),
        _unknown_keys_check(data),
        _warn(
            "example_count",
            count >= MIN_EXAMPLES,
            f"{count} example(s), fewer than {MIN_EXAMPLES}: evaluation reuses the training examples",
        ),
        _duplicates_check(examples),
    ]
    constraints = data.get("constraints")
    if isinstance(constraints, list):
        checks += [
            _constraint_check(index, text, examples)
            for index, text in enumerate(constraints)
            if isinstance(text, str) and text.strip()
        ]
    return checks


def is_valid(checks: list[Check]) -> bool:
    return not any(check.failed_error for check in checks)


def _warn(name: str, passed: bool, message: str) -> Check:
    return Check(name, passed, "warning", None if passed else message)


def _shape_check(data: Any) -> Check:
    name = "json_object"
    if not isinstance(data, dict):
        return Check(name, False, "error", "the file must hold a JSON object (one behaviour spec)")
    if "spec_snapshot" in data or sum(key in data for key in RUN_KEYS) >= 2:
        return Check(
            name,
            False,
            "error",
            "this is a run payload, not a spec: use its .spec_snapshot "
            "(e.g. `jq .spec_snapshot run.json > tunedtensor.json`)",
        )
    return Check(name, True, "error")


def _field_checks(data: dict[str, Any]) -> list[Check]:
    """Validate the writable fields with the API's own model and report per field."""
    subset = {key: data[key] for key in WRITABLE_FIELDS if key in data and key != "base_model"}
    problems: dict[str, list[str]] = {name: [] for name in _FIELD_CHECKS}
    try:
        CreateBehaviorSpecRequest.model_validate(subset)
    except ValidationError as error:
        for detail in details_from_errors(error.errors(include_url=False)):
            field = detail.field.split(".", 1)[0]
            problems.setdefault(field, []).append(f"{detail.field} {detail.message}")
    return [
        Check(name, not messages, "error", "; ".join(messages) if messages else None)
        for name, messages in problems.items()
    ]


def _base_model_check(data: dict[str, Any]) -> Check:
    value = data.get("base_model")
    if value is None:
        return Check("base_model", False, "warning", "not set: the server's default base model applies")
    if not isinstance(value, str):
        return Check("base_model", False, "error", "base_model must be a string")
    try:
        canonical = canonical_base_model(value)
    except UnknownBaseModelError as error:
        return Check("base_model", False, "error", str(error))
    return Check(
        "base_model", True, "error", None if canonical == value else f"'{value}' is sent as '{canonical}'"
    )


def _unknown_keys_check(data: dict[str, Any]) -> Check:
    unknown = [key for key in data if key not in KNOWN_KEYS]
    return _warn("unknown_keys", not unknown, f"ignored by tt push: {', '.join(unknown)}")


def _valid_examples(examples: Any) -> list[tuple[int, str, str]]:
    """(index, input, output) of the well-formed examples; the field check reports the others."""
    if not isinstance(examples, list):
        return []
    return [
        (index, example["input"], example["output"])
        for index, example in enumerate(examples)
        if isinstance(example, dict)
        and isinstance(example.get("input"), str)
        and isinstance(example.get("output"), str)
    ]


def _duplicates_check(examples: list[tuple[int, str, str]]) -> Check:
    first_seen: dict[str, int] = {}
    duplicates = []
    for index, text, _ in examples:
        key = normalise(text)
        if key in first_seen:
            duplicates.append(f"examples.{index}.input repeats examples.{first_seen[key]}.input")
        else:
            first_seen[key] = index
    return _warn("duplicate_inputs", not duplicates, "; ".join(duplicates))


def _constraint_check(index: int, constraint: str, examples: list[tuple[int, str, str]]) -> Check:
    finding = check_constraint(index, constraint, [(i, output) for i, _, output in examples])
    return Check(f"constraints.{index}", finding.passed, "error", finding.message)


def coverage_of(data: Any) -> list[CoverageItem]:
    """How many examples exercise each guideline and constraint (keyword overlap); [] when unreadable."""
    if not isinstance(data, dict):
        return []
    texts = {
        field: [text for text in data.get(field) or [] if isinstance(text, str)]
        if isinstance(data.get(field), list)
        else []
        for field in ("guidelines", "constraints")
    }
    examples = [(text, output) for _, text, output in _valid_examples(data.get("examples"))]
    return coverage(texts["guidelines"], texts["constraints"], examples)
