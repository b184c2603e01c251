"""Signed GET URLs of stored objects (model downloads) over S3."""

from __future__ import annotations

from datetime import timedelta
from typing import Any


class S3DownloadSigner:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def presign_get(self, key: str, expires: timedelta, filename: str) -> str:
        url: str = self._client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                # Browsers save it under its product name, not the key's last segment.
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=int(expires.total_seconds()),
        )
        return url
