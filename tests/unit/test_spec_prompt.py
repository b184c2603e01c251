"""The spec prompt composer (PRODUCT.md §15.3) and chat messages."""

from __future__ import annotations

import pytest

from tt_core.specs.prompt import chat_messages, compose_system_prompt


@pytest.mark.parametrize(
    ("system_prompt", "guidelines", "constraints", "expected"),
    [
        (
            "  You answer tersely.\n",
            [" Be kind ", "Cite sources"],
            ["No emojis  "],
            "You answer tersely.\n\nGuidelines:\n- Be kind\n- Cite sources\n\nConstraints:\n- No emojis",
        ),
        ("You answer tersely.", [], [], "You answer tersely."),
        ("", ["Be kind"], [], "Guidelines:\n- Be kind"),
        ("", [], ["No emojis"], "Constraints:\n- No emojis"),
        ("   ", ["Be kind"], ["No emojis"], "Guidelines:\n- Be kind\n\nConstraints:\n- No emojis"),
        ("Prompt", [], ["No emojis"], "Prompt\n\nConstraints:\n- No emojis"),
        ("Prompt", ["  ", "Be kind"], ["\t"], "Prompt\n\nGuidelines:\n- Be kind"),
        ("", [], [], ""),
        (" \n ", ["  "], [""], ""),
    ],
)
def test_compose_system_prompt(
    system_prompt: str, guidelines: list[str], constraints: list[str], expected: str
) -> None:
    assert compose_system_prompt(system_prompt, guidelines, constraints) == expected


def test_compose_keeps_inner_line_breaks_of_the_prompt() -> None:
    assert compose_system_prompt("\nLine one\n\nLine two\n", ("a",), ()) == (
        "Line one\n\nLine two\n\nGuidelines:\n- a"
    )


def test_chat_messages_with_system_and_answer() -> None:
    assert chat_messages("sys", "question", "answer") == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "question"},
        {"role": "assistant", "content": "answer"},
    ]


def test_chat_messages_without_system_or_answer() -> None:
    assert chat_messages("", "question") == [{"role": "user", "content": "question"}]


def test_chat_messages_keeps_an_empty_answer() -> None:
    assert chat_messages("", "q", "") == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": ""},
    ]
