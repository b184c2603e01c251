"""The spec lint shared by `tt eval`, the estimate and augmentation (PRODUCT.md §7): the Never/Always
heuristics, the rows they reject, and the coverage table (keyword overlap)."""

from __future__ import annotations

from tt_core.specs.lint import JUDGE_NOTE, broken_constraints, check_constraint, coverage, keywords, lint_spec

OUTPUTS = [(0, "Hello! Thanks for asking."), (3, "Sure, we refund you. Thanks for asking.")]


def test_constraint_findings_name_the_rule_and_the_offending_examples() -> None:
    never = check_constraint(2, "Never mention refund.", OUTPUTS)
    assert never.rule == "never" and not never.passed and never.offending_examples == [3]
    assert never.message == "'Never mention refund.': examples.3.output contains 'refund'"
    always = check_constraint(0, 'Always end with "Thanks for asking."', OUTPUTS)
    assert always.rule == "always" and always.passed and always.offending_examples == []
    start = check_constraint(1, "Always start with hello", OUTPUTS)
    assert start.offending_examples == [3] and "does not start with 'hello'" in start.message
    judged = check_constraint(4, "Be polite", OUTPUTS)
    assert judged.rule == "judge" and judged.passed and judged.message == f"'Be polite': {JUDGE_NOTE}"
    many = check_constraint(0, "Never say x", [(i, "x") for i in range(7)])
    assert many.message.endswith("examples.4.output and 2 more contains 'x'")


def test_broken_constraints_checks_one_output_with_the_heuristics_only() -> None:
    constraints = ["Never mention refunds", "Always include thanks", "Be polite", "Always start with Hi"]
    assert broken_constraints("Hi! Thanks, no REFUNDS here.", constraints) == ["Never mention refunds"]
    assert broken_constraints("Rude, no gratitude.", constraints) == [
        "Always include thanks",
        "Always start with Hi",
    ]
    assert broken_constraints("anything", []) == []


def test_coverage_counts_examples_sharing_a_keyword() -> None:
    assert keywords("Never promise refunds to the customer, never!") == ["promise", "refunds", "customer"]
    examples = [
        ("Can I get a refund?", "Refunds are handled by billing."),
        ("How do I cancel?", "Go to Settings > Billing."),
        ("Where is the invoice page?", "Open the Invoices page."),
    ]
    items = coverage(["Point to the settings page", "Be concise"], ["Never promise refunds"], examples)
    assert [(i.kind, i.index, i.examples) for i in items] == [
        ("guideline", 0, 2),  # "settings" in one, "page" in another
        ("guideline", 1, 0),  # style rules show as gaps: no example mentions them
        ("constraint", 0, 1),  # "refund" meets "refunds" through the light stem
    ]
    assert items[0].keywords == ["point", "settings", "page"]


def test_lint_spec_combines_both_and_skips_blank_constraints() -> None:
    lint = lint_spec(["Be brief"], ["Never say sure", " "], [("q", "Sure thing")])
    assert [c.constraint for c in lint.constraints] == ["Never say sure"]
    assert lint.constraints[0].offending_examples == [0]
    assert [(item.kind, item.index) for item in lint.coverage] == [("guideline", 0), ("constraint", 0)]
