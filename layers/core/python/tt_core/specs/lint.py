"""Spec lint shared by client and server (PRODUCT.md §7): constraint heuristics and a coverage table.

`tt eval` shows both, the run estimate returns both, and augmentation drops generated rows that
break a constraint the heuristics can check: one implementation, so they never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tt_core.models.spec_lint import ConstraintFinding, CoverageItem, CoverageKind, SpecLint

JUDGE_NOTE = "checked by the LLM judge during evaluation"
MAX_LISTED = 5  # offending examples named per constraint; the rest are counted

_NEVER = re.compile(
    r"^\s*never\s+(share|mention|include|reveal|use|say|output|return|give|provide|show|disclose|expose)"
    r"\s+(?P<x>.+?)\s*$",
    re.IGNORECASE | re.DOTALL,
)
_ALWAYS = re.compile(
    r"^\s*always\s+(?P<verb>start\s+with|end\s+with|respond\s+in|reply\s+in|include|use|contain)"
    r"\s+(?P<x>.+?)\s*$",
    re.IGNORECASE | re.DOTALL,
)
_QUOTES = {'"': '"', "'": "'", "`": "`", "“": "”", "‘": "’"}
_WORD = re.compile(r"\w+")
# Words that say how, not what: they would make every example "exercise" every rule.
_STOPWORDS_TEXT = """a about above after again all also always an and any are as at be been before
    being below both
    but by can could did do does doing don down during each either else ever every few for from further
    had has have having he her here hers him his how i if in into is it its just keep let may me might
    more most must my never no nor not now of off on once only or other our ours out over own please
    same she should so some such than that the their theirs them then there these they this those
    through to too under until up use using very was we were what when where which while who whom why
    will with within without would you your yours"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_SUFFIXES = ("ing", "ed", "es", "s")
MIN_KEYWORD_LENGTH = 3


def _subject(text: str) -> str:
    """The rest of the sentence: without a final `.` and without one pair of surrounding quotes."""
    text = text.strip().removesuffix(".").strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text


def _rule(constraint: str) -> tuple[str, str, str] | None:
    """(rule, verb, subject) when a heuristic applies: `never`, or `always` with its verb."""
    never, always = _NEVER.match(constraint), _ALWAYS.match(constraint)
    match = never or always
    subject = _subject(match.group("x")) if match else ""
    if not match or not subject:
        return None
    if never:
        return "never", "", subject
    assert always is not None
    return "always", " ".join(always.group("verb").lower().split()), subject


def _breaks(rule: str, verb: str, needle: str, output: str) -> bool:
    text = output.casefold()
    if rule == "never":
        return needle in text
    if verb == "start with":
        return not text.strip().startswith(needle)
    if verb == "end with":
        return not text.strip().endswith(needle)
    return needle not in text


def _verdict(rule: str, verb: str) -> str:
    if rule == "never":
        return "contains"
    return {"start with": "does not start with", "end with": "does not end with"}.get(
        verb, "does not contain"
    )


def check_constraint(index: int, constraint: str, outputs: Sequence[tuple[int, str]]) -> ConstraintFinding:
    """One constraint against example outputs, given as (example index, output)."""
    parsed = _rule(constraint)
    if parsed is None:
        return ConstraintFinding(
            index=index,
            constraint=constraint,
            rule="judge",
            passed=True,
            offending_examples=[],
            message=f"'{constraint}': {JUDGE_NOTE}",
        )
    rule, verb, subject = parsed
    needle = subject.casefold()
    offenders = [i for i, output in outputs if _breaks(rule, verb, needle, output)]
    if offenders:
        where = ", ".join(f"examples.{i}.output" for i in offenders[:MAX_LISTED])
        if len(offenders) > MAX_LISTED:
            where += f" and {len(offenders) - MAX_LISTED} more"
        message = f"'{constraint}': {where} {_verdict(rule, verb)} '{subject}'"
    else:
        message = f"'{constraint}': every example output complies"
    return ConstraintFinding(
        index=index,
        constraint=constraint,
        rule="never" if rule == "never" else "always",
        passed=not offenders,
        offending_examples=offenders,
        message=message,
    )


def broken_constraints(output: str, constraints: Sequence[str]) -> list[str]:
    """The constraints a heuristic can check that `output` breaks (the others pass here)."""
    broken = []
    for constraint in constraints:
        parsed = _rule(constraint)
        if parsed is not None and _breaks(parsed[0], parsed[1], parsed[2].casefold(), output):
            broken.append(constraint)
    return broken


def _stem(word: str) -> str:
    """A light stem so that "refund", "refunds" and "refunded" meet; no dictionary needed."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_KEYWORD_LENGTH:
            return word[: -len(suffix)]
    return word


def keywords(text: str) -> list[str]:
    """The content words of a guideline or constraint, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.casefold()):
        if len(word) >= MIN_KEYWORD_LENGTH and word not in _STOPWORDS and not word.isdigit():
            seen.setdefault(word, None)
    return list(seen)


def _stems(text: str) -> set[str]:
    return {_stem(word) for word in _WORD.findall(text.casefold())}


def coverage(
    guidelines: Sequence[str], constraints: Sequence[str], examples: Sequence[tuple[str, str]]
) -> list[CoverageItem]:
    """For each guideline and constraint: how many examples share at least one of its keywords."""
    example_stems = [_stems(f"{text}\n{output}") for text, output in examples]
    items = []
    groups: tuple[tuple[CoverageKind, Sequence[str]], ...] = (
        ("guideline", guidelines),
        ("constraint", constraints),
    )
    for kind, texts in groups:
        for index, text in enumerate(texts):
            if not text.strip():
                continue  # nothing to exercise; `tt eval` reports blank rules with the field checks
            words = keywords(text)
            stems = {_stem(word) for word in words}
            count = sum(1 for found in example_stems if stems & found)
            items.append(CoverageItem(kind=kind, index=index, text=text, keywords=words, examples=count))
    return items


def lint_spec(
    guidelines: Sequence[str], constraints: Sequence[str], examples: Sequence[tuple[str, str]]
) -> SpecLint:
    """The server's lint of a spec (or a dataset's rows): every constraint and the coverage table."""
    outputs = list(enumerate(output for _, output in examples))
    return SpecLint(
        constraints=[
            check_constraint(index, text, outputs) for index, text in enumerate(constraints) if text.strip()
        ],
        coverage=coverage(guidelines, constraints, examples),
    )
