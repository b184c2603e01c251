"""The spec prompt (PRODUCT.md §15.3): one composition shared by training, evaluation and serving."""

from __future__ import annotations

from collections.abc import Sequence


def _section(title: str, items: Sequence[str]) -> str:
    lines = [f"- {item.strip()}" for item in items if item.strip()]
    return "\n".join([f"{title}:", *lines]) if lines else ""


def compose_system_prompt(system_prompt: str, guidelines: Sequence[str], constraints: Sequence[str]) -> str:
    """The prompt, guidelines and constraints separated by blank lines; empty parts are left out."""
    parts = [system_prompt.strip(), _section("Guidelines", guidelines), _section("Constraints", constraints)]
    return "\n\n".join(part for part in parts if part)


def chat_messages(system: str, user: str, assistant: str | None = None) -> list[dict[str, str]]:
    """A chat in the trainer's message format; no system message when `system` is empty."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    if assistant is not None:
        messages.append({"role": "assistant", "content": assistant})
    return messages
