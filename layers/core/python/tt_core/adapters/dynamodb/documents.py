"""JSON documents stored inline (gzip) in an item or, when too large for one, in the object store."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping
from typing import Any

from tt_core.ports import ObjectStore

# An item may hold at most 400 KB; larger documents go to the object store and the item points at them.
INLINE_DOCUMENT_LIMIT = 300_000


class DocumentPacker:
    """Stores a JSON document inline (gzip) or, when too large for an item, in the object store."""

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects

    def pack(self, document: Any, object_key: str) -> dict[str, Any]:
        data = gzip.compress(json.dumps(document, ensure_ascii=False).encode(), compresslevel=6)
        if len(data) <= INLINE_DOCUMENT_LIMIT:
            return {"doc": data}
        self._objects.put_bytes(object_key, data, "application/gzip")
        return {"doc_key": object_key}

    def unpack(self, item: Mapping[str, Any]) -> Any:
        data = item["doc"] if "doc" in item else self._objects.get_bytes(item["doc_key"])
        return json.loads(gzip.decompress(data))

    def discard(self, item: Mapping[str, Any] | None) -> None:
        if item and "doc_key" in item:
            self._objects.delete(item["doc_key"])
