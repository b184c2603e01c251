"""Model rules that need no HTTP: catalogue aliases, timestamps, keys, the update subset."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tt_core.models.api_keys import generate_api_key, hash_api_key, key_from_authorization
from tt_core.models.base_models import CANONICAL_IDS, UnknownBaseModelError, canonical_base_model
from tt_core.models.behavior_specs import UpdateBehaviorSpecRequest
from tt_core.models.common import format_timestamp, normalize_id, parse_timestamp


@pytest.mark.parametrize("model_id", CANONICAL_IDS)
def test_every_canonical_id_and_its_short_name_resolve(model_id: str) -> None:
    assert canonical_base_model(model_id.upper()) == model_id
    assert canonical_base_model(model_id.split("/")[1].lower()) == model_id


def test_unknown_base_models_list_the_catalogue() -> None:
    with pytest.raises(UnknownBaseModelError, match="tunedtensor/tiny-chat"):
        canonical_base_model("mistralai/Mistral-7B")


def test_timestamps_have_milliseconds_and_z() -> None:
    moment = datetime(2026, 3, 6, 8, 27, 33, 492123, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-03-06T08:27:33.492Z"
    assert parse_timestamp("2026-03-06T08:27:33.492Z") == moment.replace(microsecond=492000)


def test_generated_keys_are_51_characters_and_hashed() -> None:
    key = generate_api_key()
    assert len(key) == 51 and key.startswith("tt_") and key[3:].isalnum()
    assert key_from_authorization(f"Bearer {key}") == key
    assert hash_api_key(key) != key and len(hash_api_key(key)) == 64
    assert generate_api_key() != key


def test_ids_are_normalised_or_refused() -> None:
    assert normalize_id("CAFD8799-9180-482E-B0B2-C46D08E4B045") == "cafd8799-9180-482e-b0b2-c46d08e4b045"
    assert normalize_id("cafd8799-...") is None


def test_update_changes_only_the_fields_sent() -> None:
    request = UpdateBehaviorSpecRequest.model_validate({"description": None, "guidelines": ["g"]})
    assert request.changes() == {"description": "", "guidelines": ["g"]}
