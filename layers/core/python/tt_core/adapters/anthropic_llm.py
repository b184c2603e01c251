"""The LanguageModel port on Claude: the Anthropic API (key from Secrets Manager or the environment)
or Amazon Bedrock through the anthropic SDK's Bedrock client (IAM-authorised).

Every answer is a forced tool call: the tool's input schema is the answer's JSON schema, which the
API, its older version and Bedrock all support. Tests replace the HTTP transport (httpx2), nothing else.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tt_core.ports import LanguageModel, LanguageModelError
from tt_core.settings import Settings

if TYPE_CHECKING:
    import anthropic

CLAUDE, BEDROCK = "claude", "bedrock"
# Current Claude models; the settings (augmentation_model, judge_model) override them per deployment.
DEFAULT_MODELS = {CLAUDE: "claude-sonnet-4-6", BEDROCK: "global.anthropic.claude-sonnet-4-6"}
# The SDK retries 408/409/429/5xx (529 overloaded included) and connection errors this many times,
# honouring retry-after; llm_calls.TASK_ATTEMPTS multiplies it (3 × 3 = 9 requests per call, ≤ 10).
SDK_MAX_RETRIES = 2
REQUEST_TIMEOUT_SECONDS = 120.0
# The SDK's default API version refuses `temperature`; the previous version still takes it, so the
# judge's temperature-0 requests are pinned to it (and Bedrock's to its own version of the body).
PINNED_API_VERSION = "2023-06-01"
PINNED_BEDROCK_VERSION = "bedrock-2023-05-31"
# Powertools caches the secret this long: a rotated key is picked up within 5 minutes.
SECRET_MAX_AGE_SECONDS = 300
_RETRYABLE_STATUSES = frozenset({408, 409, 429})

logger = logging.getLogger(__name__)


def _status_error(status: int) -> LanguageModelError:
    retryable = status in _RETRYABLE_STATUSES or status >= 500
    return LanguageModelError(f"the language model answered HTTP {status}", retryable=retryable)


def _json_object(text: str) -> dict[str, Any]:
    """A text answer's JSON object (some proxies and models answer in text despite the tool)."""
    from tt_core.evaluation.scoring import first_json_value, parse_json

    ok, value = parse_json(text)
    if not ok:
        value = first_json_value(text, ("{",))
    if not isinstance(value, dict):
        raise LanguageModelError("the answer held no JSON object")
    return value


class ClaudeLanguageModel:
    """One Claude client (built lazily, rebuilt when its API key changes) behind the port."""

    def __init__(
        self, provider: str, client_for_key: Callable[[str | None], Any], key: Callable[[], str | None]
    ):
        self.provider = provider
        self._client_for_key = client_for_key
        self._key = key
        self._client: Any = None
        self._client_key: str | None = None
        self._lock = threading.Lock()
        self._pin_refused = False  # the pinned request was refused once: send unpinned ones from now on

    def _current_client(self) -> anthropic.Anthropic | anthropic.AnthropicBedrock:
        key = self._key()
        with self._lock:
            if self._client is None or key != self._client_key:
                self._client, self._client_key = self._client_for_key(key), key
            client: anthropic.Anthropic | anthropic.AnthropicBedrock = self._client
            return client

    def _pinned(self) -> dict[str, Any]:
        if self.provider == BEDROCK:
            return {"extra_body": {"anthropic_version": PINNED_BEDROCK_VERSION, "temperature": 0}}
        return {"extra_headers": {"anthropic-version": PINNED_API_VERSION}, "extra_body": {"temperature": 0}}

    def _create(self, request: dict[str, Any], deterministic: bool) -> Any:
        import anthropic

        client = self._current_client()
        if deterministic and not self._pin_refused:
            try:
                return client.messages.create(**request, **self._pinned())
            except anthropic.BadRequestError as error:
                # A model or an API version that no longer takes `temperature`: the answer matters
                # more than the sampling setting, so ask again unpinned (and from now on).
                logger.warning("temperature-0 request refused (%s); sending without it", error.status_code)
                self._pin_refused = True
        return client.messages.create(**request)

    def answer(
        self,
        *,
        model: str,
        system: str,
        prompt: str,
        tool_name: str,
        schema: dict[str, Any],
        max_tokens: int,
        deterministic: bool = False,
    ) -> dict[str, Any]:
        import anthropic

        request = {
            "model": model,
            "max_tokens": max_tokens,
            "system": system,
            "messages": [{"role": "user", "content": prompt}],
            "tools": [
                {
                    "name": tool_name,
                    "description": schema.get("description") or f"Submit the {tool_name}.",
                    "input_schema": schema,
                }
            ],
            "tool_choice": {"type": "tool", "name": tool_name},
        }
        try:
            message = self._create(request, deterministic)
        except anthropic.APIStatusError as error:
            raise _status_error(error.status_code) from error
        except anthropic.APIConnectionError as error:
            raise LanguageModelError("the language model could not be reached") from error
        except anthropic.AnthropicError as error:
            raise LanguageModelError("the language model call failed", retryable=False) from error
        if message.stop_reason == "refusal":
            raise LanguageModelError("the language model declined to answer")
        if message.stop_reason == "max_tokens":
            raise LanguageModelError("the answer was cut at max_tokens")
        for block in message.content:
            if block.type == "tool_use" and block.name == tool_name:
                if not isinstance(block.input, dict):
                    raise LanguageModelError("the tool input was not a JSON object")
                return dict(block.input)
        text = "".join(block.text for block in message.content if block.type == "text")
        return _json_object(text)


def _http_client(transport: Any) -> Any:
    if transport is None:
        return None
    import httpx2

    return httpx2.Client(transport=transport)


def secret_api_key(secret: str) -> str:
    """The key stored in Secrets Manager (read through Powertools, cached): a plain string, or a JSON
    object holding it as `ANTHROPIC_API_KEY` or `api_key`."""
    from aws_lambda_powertools.utilities import parameters

    try:
        value = str(parameters.get_secret(secret, max_age=SECRET_MAX_AGE_SECONDS))
    except parameters.exceptions.GetParameterError as error:
        raise LanguageModelError("the API key secret could not be read", retryable=False) from error
    try:
        document = json.loads(value)
    except ValueError:
        return value.strip()
    if isinstance(document, dict):
        for name in ("ANTHROPIC_API_KEY", "api_key"):
            if isinstance(document.get(name), str):
                return str(document[name]).strip()
    raise LanguageModelError("the API key secret holds no key", retryable=False)


def language_model_for(settings: Settings, *, transport: Any = None) -> LanguageModel | None:
    """The provider the settings configure (§9.4 order: Anthropic key, then Bedrock), else None."""
    provider = settings.llm_provider
    if provider == CLAUDE:
        secret, env_key = settings.anthropic_api_key_secret, settings.anthropic_api_key

        def key() -> str | None:
            if secret:
                return secret_api_key(secret)
            return env_key.get_secret_value() if env_key else None

        def anthropic_client(api_key: str | None) -> Any:
            import anthropic

            return anthropic.Anthropic(
                api_key=api_key,
                max_retries=SDK_MAX_RETRIES,
                timeout=REQUEST_TIMEOUT_SECONDS,
                http_client=_http_client(transport),
            )

        return ClaudeLanguageModel(CLAUDE, anthropic_client, key)
    if provider == BEDROCK:

        def bedrock_client(_: str | None) -> Any:
            import anthropic

            # Region and credentials come from the function's environment (its execution role).
            return anthropic.AnthropicBedrock(
                max_retries=SDK_MAX_RETRIES,
                timeout=REQUEST_TIMEOUT_SECONDS,
                http_client=_http_client(transport),
            )

        return ClaudeLanguageModel(BEDROCK, bedrock_client, lambda: None)
    return None


def model_ids(settings: Settings) -> tuple[str, str]:
    """(augmentation model, judge model) for the configured provider: the settings, else the defaults."""
    default = DEFAULT_MODELS.get(settings.llm_provider or CLAUDE, DEFAULT_MODELS[CLAUDE])
    return settings.augmentation_model or default, settings.judge_model or default
