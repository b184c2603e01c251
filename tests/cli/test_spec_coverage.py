"""The spec lint on both sides (PRODUCT.md §7): `tt eval` shows the coverage table offline, and the
estimate returns the same lint from the server, which `tt runs estimate` shows before a run is paid."""

from __future__ import annotations

from typing import Any

import requests

from tests.cli.conftest import Api, write
from tt_core.specs.lint import lint_spec

GUIDELINES = ["Point to the billing page", "Be concise"]
CONSTRAINTS = ["Never mention refunds", "Stay polite"]
EXAMPLES = [
    {"input": "Where is my invoice?", "output": "Open the Billing page."},
    {"input": "Can I get money back?", "output": "Refunds take 5 days."},
]
SPEC: dict[str, Any] = {
    "name": "Coverage Bot",
    "base_model": "tiny-chat",
    "system_prompt": "You answer billing questions.",
    "guidelines": GUIDELINES,
    "constraints": CONSTRAINTS,
    "examples": EXAMPLES,
}


def test_tt_eval_prints_the_coverage_table(run: Any) -> None:
    write("spec.json", SPEC)
    text = run("eval", "-f", "spec.json")
    assert text.code == 1  # "Never mention refunds" fails on examples.1.output
    assert "Coverage (examples sharing a keyword with each guideline and constraint):" in text.out
    assert "guidelines.0   1         Point to the billing page" in text.out
    assert "guidelines.1   0         Be concise" in text.out
    assert "constraints.0  1         Never mention refunds" in text.out
    assert "2 rule(s) are exercised by no example: add examples that show them" in text.out

    as_json = run("eval", "-f", "spec.json", "--json").json
    coverage = {(item["kind"], item["index"]): item["examples"] for item in as_json["coverage"]}
    assert coverage == {("guideline", 0): 1, ("guideline", 1): 0, ("constraint", 0): 1, ("constraint", 1): 0}
    assert as_json["checks"][-2]["name"] == "constraints.0" and not as_json["checks"][-2]["passed"]

    write("broken.json", "[1, 2]")
    assert run("eval", "-f", "broken.json", "--json").json["coverage"] == []


def test_the_estimate_returns_the_same_lint_and_tt_shows_the_gaps(run: Any, authed: Api) -> None:
    # `tt push` would refuse the broken constraint: the API takes the spec as it is.
    created = requests.post(
        f"{authed.base_url}/api/v1/behavior-specs",
        json=SPEC,
        headers={"Authorization": f"Bearer {authed.key}"},
        timeout=30,
    )
    spec_id = created.json()["data"]["id"]
    estimate = run("--json", "runs", "estimate", spec_id).json["data"]
    examples = [(e["input"], e["output"]) for e in EXAMPLES]
    expected = lint_spec(GUIDELINES, CONSTRAINTS, examples).model_dump(mode="json")
    assert estimate["spec_lint"] == expected
    assert estimate["spec_lint"]["constraints"][0]["offending_examples"] == [1]

    text = run("runs", "estimate", spec_id)
    assert text.code == 0
    assert "✗ constraints.0: 'Never mention refunds': examples.1.output contains 'refunds'" in text.out
    assert "! guidelines.1: no example exercises 'Be concise'" in text.out
    assert "! constraints.1: no example exercises 'Stay polite'" in text.out
