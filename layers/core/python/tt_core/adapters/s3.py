"""ObjectStore, UploadSigner and DownloadSigner (signed GETs of model downloads) over S3."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from tt_core.schema import PENDING_UPLOAD_TAG


class S3ObjectStore:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def put_bytes(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self._client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType=content_type)

    def get_bytes(self, key: str) -> bytes:
        response = self._client.get_object(Bucket=self._bucket, Key=key)
        data: bytes = response["Body"].read()
        return data

    def size(self, key: str) -> int | None:
        try:
            return int(self._client.head_object(Bucket=self._bucket, Key=key)["ContentLength"])
        except self._client.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def iter_chunks(self, key: str, chunk_bytes: int) -> Iterator[bytes]:
        """The object's bytes as a stream: never the whole body in memory."""
        body = self._client.get_object(Bucket=self._bucket, Key=key)["Body"]
        try:
            yield from body.iter_chunks(chunk_bytes)
        finally:
            body.close()

    def clear_tags(self, key: str) -> None:
        self._client.delete_object_tagging(Bucket=self._bucket, Key=key)

    def delete(self, key: str) -> None:
        self._client.delete_object(Bucket=self._bucket, Key=key)

    def list_keys(self, prefix: str) -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=self._bucket, Prefix=prefix)
        return sorted(entry["Key"] for page in pages for entry in page.get("Contents", []))

    def copy(self, source_key: str, target_key: str) -> None:
        self._client.copy_object(
            Bucket=self._bucket, Key=target_key, CopySource={"Bucket": self._bucket, "Key": source_key}
        )


class S3UploadSigner:
    """Presigned PUTs (SigV4) that may create the object once: a second PUT to the URL is refused."""

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket
        self._tagging = "=".join(PENDING_UPLOAD_TAG)

    def presign_put(self, key: str, content_type: str, expires: timedelta) -> tuple[str, dict[str, str]]:
        url = self._client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self._bucket,
                "Key": key,
                "ContentType": content_type,
                "IfNoneMatch": "*",
                "Tagging": self._tagging,
            },
            ExpiresIn=int(expires.total_seconds()),
        )
        # The headers are signed: S3 refuses the PUT without them. If-None-Match makes the upload
        # write-once, so a dataset's bytes cannot change after validation; the tag marks it pending.
        return url, {"Content-Type": content_type, "If-None-Match": "*", "x-amz-tagging": self._tagging}


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
