"""The local stack's emulated AWS answers only requests signed with the stack's own credentials.

moto checks no signature: anyone who can reach its loopback port (another local user, any web page the
user opens) could read every object, or move a presigned URL onto another account's key. This WSGI
middleware in front of it verifies AWS Signature Version 4 as AWS does, for both forms: the
`Authorization` header (the stack's own SDK calls) and presigned query strings (upload and download
URLs the API hands out): the signature over method, path, query and the signed headers, the key, the
clock skew and the expiry. A signed payload hash must match the body. Nothing else gets through, and
no response carries CORS headers, so a browser page cannot read an answer either — except the stack's own
dashboard, which uploads datasets through presigned URLs: its origin alone gets CORS answers, and only
for presigned PUT/GET requests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from botocore.utils import normalize_url_path

from tt_local.snapshot import buffered_body

ALGORITHM = "AWS4-HMAC-SHA256"
# AWS refuses a request signed more than 15 minutes before or after its own clock.
MAX_CLOCK_SKEW = timedelta(minutes=15)
MAX_PRESIGNED_EXPIRY_S = 7 * 24 * 3600  # SigV4's own limit
UNSIGNED_PAYLOADS = ("UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str

    @classmethod
    def fresh(cls) -> Credentials:
        """New random credentials: known only to this stack and the processes it starts."""
        return cls("TTLOCAL" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30))


class SignatureRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class _Signed:
    """What the request says about its signature, from the header or the query string."""

    access_key: str
    date: str
    region: str
    service: str
    amz_date: str
    signed_headers: list[str]
    signature: str
    query: list[tuple[str, str]]  # the query as sent, without X-Amz-Signature
    payload_hash: str | None  # None: hash the body
    expires: int | None  # presigned only


def _query_pairs(query: str) -> list[tuple[str, str]]:
    return [(key, value) for key, _, value in (pair.partition("=") for pair in query.split("&") if pair)]


def _scope(credential: str) -> tuple[str, str, str, str]:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise SignatureRefused("AuthorizationQueryParametersError", "The credential scope is malformed.")
    return parts[0], parts[1], parts[2], parts[3]


def _presigned(query: list[tuple[str, str]]) -> _Signed:
    params = {key: unquote(value) for key, value in query}
    if params.get("X-Amz-Algorithm") != ALGORITHM:
        raise SignatureRefused("AuthorizationQueryParametersError", f"X-Amz-Algorithm must be {ALGORITHM}.")
    try:
        expires = int(params["X-Amz-Expires"])
        access_key, date, region, service = _scope(params["X-Amz-Credential"])
        signed = _Signed(
            access_key,
            date,
            region,
            service,
            params["X-Amz-Date"],
            params["X-Amz-SignedHeaders"].split(";"),
            params["X-Amz-Signature"],
            [(key, value) for key, value in query if key != "X-Amz-Signature"],
            "UNSIGNED-PAYLOAD",  # a presigned URL cannot know its payload
            expires,
        )
    except (KeyError, ValueError):
        raise SignatureRefused(
            "AuthorizationQueryParametersError", "The presigned URL lacks a signature parameter."
        ) from None
    if not 1 <= expires <= MAX_PRESIGNED_EXPIRY_S:
        raise SignatureRefused("AuthorizationQueryParametersError", "X-Amz-Expires is out of range.")
    return signed


def _header_signed(authorization: str, headers: Mapping[str, str], query: list[tuple[str, str]]) -> _Signed:
    if not authorization.startswith(ALGORITHM + " "):
        raise SignatureRefused("InvalidSignatureException", f"Only {ALGORITHM} signatures are accepted.")
    fields = {}
    for part in authorization[len(ALGORITHM) + 1 :].split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    try:
        access_key, date, region, service = _scope(fields["Credential"])
        return _Signed(
            access_key,
            date,
            region,
            service,
            headers["x-amz-date"],
            fields["SignedHeaders"].split(";"),
            fields["Signature"],
            query,
            headers.get("x-amz-content-sha256"),
            None,
        )
    except KeyError:
        raise SignatureRefused("IncompleteSignature", "The Authorization header is incomplete.") from None


def _canonical_request(
    method: str, path: str, signed: _Signed, headers: Mapping[str, str], payload_hash: str
) -> str:
    # S3 signs the path as sent; the other services sign it normalised and encoded once more.
    canonical_path = path if signed.service == "s3" else quote(normalize_url_path(path), safe="/~")
    query = "&".join(f"{key}={value}" for key, value in sorted(signed.query))
    lines = []
    for name in signed.signed_headers:
        if name not in headers:
            raise SignatureRefused("SignatureDoesNotMatch", f"The signed header {name!r} is missing.")
        lines.append(f"{name}:{' '.join(headers[name].split())}")
    return "\n".join(
        [
            method,
            canonical_path,
            query,
            "\n".join(lines) + "\n",
            ";".join(signed.signed_headers),
            payload_hash,
        ]
    )


def _signature(secret_key: str, signed: _Signed, canonical_request: str) -> str:
    scope = f"{signed.date}/{signed.region}/{signed.service}/aws4_request"
    string_to_sign = "\n".join(
        [ALGORITHM, signed.amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = f"AWS4{secret_key}".encode()
    for part in (signed.date, signed.region, signed.service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def verify(
    credentials: Credentials,
    method: str,
    raw_uri: str,
    headers: Mapping[str, str],
    body: Callable[[], bytes],
    now: datetime,
) -> None:
    """Raises SignatureRefused unless the request is signed with `credentials`, in time, as sent.

    `headers` has lower-case names; `raw_uri` is the path and query exactly as sent.
    """
    url = urlsplit(raw_uri)
    query = _query_pairs(url.query)
    if any(key == "X-Amz-Signature" for key, _ in query):
        signed = _presigned(query)
    elif "authorization" in headers:
        signed = _header_signed(headers["authorization"], headers, query)
    else:
        raise SignatureRefused("AccessDenied", "Access Denied: the request is not signed.")
    if not hmac.compare_digest(signed.access_key, credentials.access_key):
        raise SignatureRefused("InvalidAccessKeyId", "The access key is not this stack's.")
    try:
        signed_at = datetime.strptime(signed.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise SignatureRefused("AccessDenied", "X-Amz-Date is not a SigV4 timestamp.") from None
    if signed.date != signed.amz_date[:8] or "host" not in signed.signed_headers:
        raise SignatureRefused("SignatureDoesNotMatch", "The credential scope or signed headers are invalid.")
    if signed_at - now > MAX_CLOCK_SKEW:
        raise SignatureRefused("RequestTimeTooSkewed", "The request is signed in the future.")
    if signed.expires is not None:
        if now > signed_at + timedelta(seconds=signed.expires):
            raise SignatureRefused("AccessDenied", "Request has expired.")
    elif now - signed_at > MAX_CLOCK_SKEW:
        raise SignatureRefused("RequestTimeTooSkewed", "The request was signed too long ago.")
    payload_hash = signed.payload_hash
    if payload_hash is None or payload_hash not in UNSIGNED_PAYLOADS:
        actual = hashlib.sha256(body()).hexdigest()
        if payload_hash is not None and not hmac.compare_digest(payload_hash, actual):
            raise SignatureRefused("XAmzContentSHA256Mismatch", "The body does not match its signed hash.")
        payload_hash = actual
    expected = _signature(
        credentials.secret_key, signed, _canonical_request(method, url.path, signed, headers, payload_hash)
    )
    if not hmac.compare_digest(expected, signed.signature):
        raise SignatureRefused(
            "SignatureDoesNotMatch", "The request signature does not match: it was changed or forged."
        )


def _request_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers


def _refusal(
    refused: SignatureRefused, environ: Mapping[str, Any]
) -> tuple[str, list[tuple[str, str]], bytes]:
    if environ.get("HTTP_X_AMZ_TARGET"):  # a JSON protocol service (DynamoDB, Step Functions)
        body = json.dumps({"__type": refused.code, "message": str(refused)}).encode()
        return "403 Forbidden", [("Content-Type", "application/x-amz-json-1.0")], body
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{refused.code}</Code><Message>{refused}</Message></Error>"
    ).encode()
    return "403 Forbidden", [("Content-Type", "application/xml")], body


# What a browser may send with a presigned URL: the headers the API tells it to send (datasets.py).
PRESIGNED_CORS_METHODS = ("PUT", "GET")
PRESIGNED_CORS_HEADERS = ("content-type", "if-none-match", "x-amz-tagging")
PRESIGNED_CORS_MAX_AGE_S = 600


def _is_presigned(raw_uri: str) -> bool:
    return any(key == "X-Amz-Signature" for key, _ in _query_pairs(urlsplit(raw_uri).query))


def _preflight(environ: Mapping[str, Any], origin: str) -> list[tuple[str, str]] | None:
    """The CORS preflight answer for a presigned PUT/GET from `origin`, or None to refuse it as unsigned."""
    method = str(environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD", ""))
    requested = str(environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS", ""))
    names = [name.strip().lower() for name in requested.split(",") if name.strip()]
    if method not in PRESIGNED_CORS_METHODS or any(n not in PRESIGNED_CORS_HEADERS for n in names):
        return None
    return [
        ("Access-Control-Allow-Origin", origin),
        ("Access-Control-Allow-Methods", method),
        *([("Access-Control-Allow-Headers", ", ".join(names))] if names else []),
        ("Access-Control-Max-Age", str(PRESIGNED_CORS_MAX_AGE_S)),
        ("Vary", "Origin"),
        ("Content-Length", "0"),
    ]


class SignedRequestsOnly:
    """WSGI middleware: verifies each request's signature, strips CORS headers from every answer but
    those to presigned requests from `cors_origin()` (the dashboard's origin, once it is known)."""

    def __init__(
        self,
        app: Callable[..., Any],
        credentials: Credentials,
        cors_origin: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._app = app
        self.credentials = credentials
        self._cors_origin = cors_origin

    def _dashboard_origin(self, environ: Mapping[str, Any], raw_uri: str) -> str | None:
        """The request's Origin when it is the dashboard's and the request is presigned."""
        origin = environ.get("HTTP_ORIGIN")
        allowed = self._cors_origin()
        if origin and allowed and origin == allowed and _is_presigned(raw_uri):
            return str(origin)
        return None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        raw_uri = environ.get("REQUEST_URI") or environ.get("RAW_URI") or environ.get("PATH_INFO", "")
        origin = self._dashboard_origin(environ, raw_uri)
        if origin and environ.get("REQUEST_METHOD") == "OPTIONS":
            # A preflight carries no signature: it is answered here and reaches nothing behind.
            headers = _preflight(environ, origin)
            if headers is not None:
                start_response("204 No Content", headers)
                return [b""]
        try:
            verify(
                self.credentials,
                environ.get("REQUEST_METHOD", ""),
                raw_uri,
                _request_headers(environ),
                lambda: buffered_body(environ),
                datetime.now(UTC),
            )
        except SignatureRefused as refused:
            status, headers, body = _refusal(refused, environ)
            start_response(status, [*headers, ("Content-Length", str(len(body)))])
            return [body]

        def without_cors(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            if origin:
                kept += [
                    ("Access-Control-Allow-Origin", origin),
                    ("Access-Control-Expose-Headers", "ETag"),
                    ("Vary", "Origin"),
                ]
            return start_response(status, kept, exc_info)

        result: Iterable[bytes] = self._app(environ, without_cors)
        return result


class _StackSignedBoto3:
    """boto3 as moto's Step Functions interpreter sees it: its calls back into the emulated services
    (Lambda invocations) carry fixed keys ("ak"/"sk"), so they are signed with the stack's instead."""

    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def client(self, *args: Any, **kwargs: Any) -> Any:
        import boto3

        kwargs.update(
            aws_access_key_id=self._credentials.access_key,
            aws_secret_access_key=self._credentials.secret_key,
        )
        return boto3.client(*args, **kwargs)


def sign_state_machine_calls(credentials: Credentials | None) -> None:
    """Makes moto's interpreter sign with `credentials` (None: as moto ships)."""
    import boto3
    from moto.stepfunctions.parser.asl.utils import boto_client

    boto_client.boto3 = boto3 if credentials is None else _StackSignedBoto3(credentials)
