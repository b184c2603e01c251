"""Behaviour specs (PRODUCT.md §6): request bodies, the stored record and the response shapes."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator

from tt_core.models.base_models import CANONICAL_IDS, CATALOGUE, canonical_base_model
from tt_core.models.common import Model, Name, RequestModel, Timestamp, finite_json

Rule = Annotated[str, Field(min_length=1, max_length=1000)]
ExampleText = Annotated[str, Field(min_length=1, max_length=100_000)]
Rules = Annotated[list[Rule], Field(max_length=50)]
Examples = Annotated[list["SpecExample"], Field(min_length=1, max_length=500)]
EvalCases = Annotated[list[dict[str, Any]], Field(max_length=500), AfterValidator(finite_json)]
Description = Annotated[str, Field(max_length=5_000)]
SystemPrompt = Annotated[str, Field(max_length=10_000)]
# What `base_model` accepts (PRODUCT.md §5), listed in the OpenAPI schema; any case is accepted.
BASE_MODEL_NAMES = (
    *CANONICAL_IDS,
    *(model.name for model in CATALOGUE),
    "Qwen/Qwen3.5-2B-Base",
    "Qwen/Qwen3.5-4B-Base",
    "google/gemma-4-E2B",
    "google/gemma-4-E4B",
    "meta-llama/Llama-3.2-3B",
)
BaseModelName = Annotated[
    str,
    Field(
        description="A catalogue id or alias, matched case-insensitively; stored as the canonical id.",
        json_schema_extra={"enum": list(BASE_MODEL_NAMES)},
    ),
]

WRITABLE_FIELDS = (
    "name",
    "description",
    "base_model",
    "system_prompt",
    "guidelines",
    "constraints",
    "examples",
    "eval_cases",
)


def _without_null(schema: dict[str, Any]) -> None:
    """The field's JSON schema without its `null` option: the server refuses null there."""
    options = [option for option in schema.pop("anyOf", []) if option != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options


class SpecExample(Model):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    input: ExampleText
    output: ExampleText


class _SpecFieldRules(RequestModel):
    """Rules shared by create and update: null prose is "", base models are canonicalised."""

    @field_validator("description", "system_prompt", mode="before", check_fields=False)
    @classmethod
    def _null_is_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("base_model", check_fields=False)
    @classmethod
    def _canonical(cls, value: str | None) -> str | None:
        return None if value is None else canonical_base_model(value)


class CreateBehaviorSpecRequest(_SpecFieldRules):
    name: Name
    description: Description = ""
    system_prompt: SystemPrompt = ""
    guidelines: Rules = []
    constraints: Rules = []
    examples: Examples
    base_model: BaseModelName | None = None
    eval_cases: EvalCases = []


class UpdateBehaviorSpecRequest(_SpecFieldRules):
    """A partial update: only the fields present change; arrays are replaced whole."""

    id: str | None = None  # accepted so a client can PUT back what it got; must match the path
    # Absent means unchanged; null is refused (_not_null) except for the prose fields.
    name: Name | None = Field(default=None, json_schema_extra=_without_null)
    description: Description | None = None
    system_prompt: SystemPrompt | None = None
    guidelines: Rules | None = Field(default=None, json_schema_extra=_without_null)
    constraints: Rules | None = Field(default=None, json_schema_extra=_without_null)
    examples: Examples | None = Field(default=None, json_schema_extra=_without_null)
    base_model: BaseModelName | None = Field(default=None, json_schema_extra=_without_null)
    eval_cases: EvalCases | None = Field(default=None, json_schema_extra=_without_null)

    @field_validator(
        "name", "guidelines", "constraints", "examples", "base_model", "eval_cases", mode="before"
    )
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> UpdateBehaviorSpecRequest:
        if not self.changes():
            raise ValueError("must contain at least one field to update")
        return self

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in WRITABLE_FIELDS if name in self.model_fields_set}


class BehaviorSpec(Model):
    """The spec object as the API returns it."""

    id: str
    name: str
    description: str = ""
    system_prompt: str = ""
    guidelines: list[str] = []
    constraints: list[str] = []
    examples: list[SpecExample]
    base_model: str
    eval_cases: list[dict[str, Any]] = []
    created_at: Timestamp
    updated_at: Timestamp


class BehaviorSpecRecord(BehaviorSpec):
    """The stored spec: the object plus its owner and version."""

    account_id: str
    version: int = 1

    def public(self) -> BehaviorSpec:
        return BehaviorSpec.model_validate(self.model_dump(include=set(BehaviorSpec.model_fields)))


class RunSummary(Model):
    """Summary row of a run (PRODUCT.md §9.6), as listed in a spec's `_runs`."""

    id: str
    behavior_spec_id: str
    run_number: int
    status: str
    progress_pct: int
    eval_summary: dict[str, Any] | None = None
    model_id: str | None = None
    started_at: Timestamp
    completed_at: Timestamp | None = None
    spec_name: str = Field(serialization_alias="_spec_name")


class BehaviorSpecListItem(BehaviorSpec):
    example_count: int = Field(serialization_alias="_example_count")
    run_count: int = Field(serialization_alias="_run_count")
    latest_run_status: str | None = Field(serialization_alias="_latest_run_status")
    latest_run_score: float | None = Field(serialization_alias="_latest_run_score")


class BehaviorSpecDetail(BehaviorSpec):
    run_count: int = Field(serialization_alias="_run_count")
    runs: list[RunSummary] = Field(serialization_alias="_runs")
