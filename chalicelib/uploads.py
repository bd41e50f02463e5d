"""Direct uploads: who may upload, where the file goes, and a presigned POST straight to S3.

The bytes never pass through the function: it answers with a form (URL and
fields) that S3 accepts for one fixed key, one declared image type, 1 byte
to ``MAX_SOURCE_BYTES``, for ``UPLOAD_EXPIRY_SECONDS``.  Every field of the
form is pinned by a condition of the signed policy (boto3 adds conditions
only for the bucket, the key and its own signature fields).
"""

from __future__ import annotations

import hmac
import json
import secrets
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib import identity
from chalicelib.config import Settings
from chalicelib.errors import (
    InvalidFilename,
    InvalidKey,
    InvalidUploadRequest,
    NotTheOwner,
    OriginalNotFound,
    Unauthorized,
    UnsupportedContentType,
    UploadTooLarge,
)
from chalicelib.focus import FOCUS_METADATA, FocalPoint, parse_focus
from chalicelib.resize.grammar import check_key, variant_url_template

# Exactly the types the resizer decodes.  No SVG: it is script, and an SVG
# original would be a stored-XSS vector wherever it is ever served.
UPLOAD_CONTENT_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/avif",
        "image/heic",
        "image/heif",
        "image/bmp",
        "image/tiff",
    }
)
MAX_FILENAME_BYTES = 255
# Unicode control (Cc), format (Cf: bidi overrides, zero-width, BOM), line and paragraph
# separators (Zl, Zp): invisible in a name, or able to make it display as another.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})
MAX_PAGE = 100
MAX_CURSOR_CHARS = 4096
# The uploader's id goes into keys and metadata: Cognito's `sub` is a UUID.
_UPLOADER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
MAX_UPLOADER_CHARS = 128
# The original's S3 metadata naming who uploaded it (the form pins it).
UPLOADER_METADATA = "uploader"
LOCAL_UPLOADER = "local"
ANONYMOUS_UPLOADER = "anonymous"


@dataclass(frozen=True)
class UploadRequest:
    """What a client asks to upload: a file name, its image type, optionally its size and
    focal point.

    ``replace``: the key of one of the caller's originals, whose bytes the
    upload replaces (the file name is then that key's last segment).
    """

    filename: str
    content_type: str
    size: int | None = None
    focus: FocalPoint | None = None
    replace: str | None = None


def json_object(body: bytes | None, shape: str) -> dict[str, Any]:
    """A request's JSON object body, or InvalidUploadRequest naming the ``shape`` expected."""
    try:
        document = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError) as err:
        raise InvalidUploadRequest("the body must be JSON", repr(err)) from err
    if not isinstance(document, dict):
        raise InvalidUploadRequest(f"the body must be a JSON object: {shape}")
    return document


def parse_upload_request(body: bytes | None) -> UploadRequest:
    """The JSON body ``{"filename", "content_type"[, "size"][, "focus"][, "replace"]}``, or
    InvalidUploadRequest (InvalidFocus for a focal point that isn't ``"x,y"``)."""
    document = json_object(body, '{"filename", "content_type"}')
    filename, content_type, size, replace = (
        document.get(name) for name in ("filename", "content_type", "size", "replace")
    )
    if replace is not None:
        if not isinstance(replace, str) or not replace:
            raise InvalidUploadRequest('"replace", when given, is the key of one of your uploads')
        filename = replace.rsplit("/", 1)[-1] if filename is None else filename
    if not isinstance(filename, str) or not isinstance(content_type, str):
        raise InvalidUploadRequest('"filename" and "content_type" are required strings')
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise InvalidUploadRequest('"size", when given, is the file\'s size in bytes')
    focus = parse_focus(document["focus"]) if document.get("focus") is not None else None
    # One spelling per name: "é" typed or pasted (NFD from macOS) is stored as one character.
    return UploadRequest(
        unicodedata.normalize("NFC", filename), content_type.strip().lower(), size, focus, replace
    )


def parse_focus_request(body: bytes | None) -> FocalPoint | None:
    """``PUT /meta/<key>/focus``'s body: ``{"focus": "x,y"}``, or ``{"focus": null}`` to clear."""
    document = json_object(body, '{"focus": "x,y"} or {"focus": null}')
    if "focus" not in document:
        raise InvalidUploadRequest('the body must be {"focus": "x,y"} or {"focus": null}')
    return None if document["focus"] is None else parse_focus(document["focus"])


DEFAULT_PAGE = 20


def parse_list_request(query: Mapping[str, str]) -> tuple[int, str | None]:
    """``GET /uploads``'s ``limit`` (1–100, default 20) and ``cursor``."""
    raw = query.get("limit", str(DEFAULT_PAGE))
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidUploadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}")
    cursor = query.get("cursor") or None
    if cursor is not None and len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidUploadRequest("the cursor is not one this API gave out")
    return int(raw), cursor


def check_filename(filename: str) -> None:
    """A plain file name in NFC: no folders, no invisible characters, at most 255 bytes."""
    if not filename.strip() or filename in (".", ".."):
        raise InvalidFilename("the file name is empty")
    if len(filename.encode()) > MAX_FILENAME_BYTES:
        raise InvalidFilename(f"the file name is longer than {MAX_FILENAME_BYTES} bytes")
    for char in filename:
        if unicodedata.category(char) in INVISIBLE_CATEGORIES:
            raise InvalidFilename(
                f"the file name contains U+{ord(char):04X} ({unicodedata.name(char, 'unnamed')}): "
                "control, format and line or paragraph separator characters are refused, "
                "since they change how a name displays (U+202E shows photo<U+202E>gpj.exe "
                "as photoexe.jpg)"
            )
    if "/" in filename or "\\" in filename:
        raise InvalidFilename("the file name must not contain / or \\")


def uploader_id(
    settings: Settings, claims: Mapping[str, Any] | None, authorization: str | None
) -> str:
    """Who is uploading: a user pool's ``sub``, the local token's user, or anonymous if allowed."""
    if claims and isinstance(claims.get("sub"), str):
        subject = claims["sub"]
        if is_uploader_id(subject):
            return subject
        raise Unauthorized("the token's subject can't name an upload folder")
    scheme, _, token = (authorization or "").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else None
    if (
        settings.upload_token
        and bearer
        and hmac.compare_digest(bearer.encode(), settings.upload_token.encode())
    ):
        return LOCAL_UPLOADER
    if bearer and settings.oidc_issuer and settings.oidc_client_id:
        subject = identity.verifier(settings.oidc_issuer, settings.oidc_client_id).subject(bearer)
        if is_uploader_id(subject):
            return subject
        raise Unauthorized("the token's subject can't name an upload folder")
    if settings.upload_token and authorization is not None:
        raise Unauthorized("the upload token is not valid")
    if settings.allow_anonymous_uploads:
        return ANONYMOUS_UPLOADER
    raise Unauthorized("uploading needs an Authorization: Bearer <token> header")


def is_uploader_id(text: str) -> bool:
    """Whether ``text`` can name an upload folder and an object's uploader metadata."""
    return bool(text) and len(text) <= MAX_UPLOADER_CHARS and set(text) <= _UPLOADER_CHARS


def upload_key(prefix: str, uploader: str, upload_id: str, filename: str) -> str:
    """Where an upload is stored: ``<prefix>/<uploader>/<random id>/<file name>``."""
    return f"{prefix}/{uploader}/{upload_id}/{filename}"


def owner_of(prefix: str, key: str, metadata: Mapping[str, str]) -> str | None:
    """Who stored an original: the upload form's pinned metadata, else the upload key's folder."""
    named = metadata.get(UPLOADER_METADATA)
    if named:
        return named if is_uploader_id(named) else None
    return uploader_folder(prefix, key)


def owns(prefix: str, uploader: str, key: str, recorded_uploader: str | None) -> bool:
    """Whether ``uploader`` may delete or replace ``key``: in their own folder, and theirs on
    record."""
    return uploader_folder(prefix, key) == uploader and recorded_uploader == uploader


def uploader_folder(prefix: str, key: str) -> str | None:
    """The uploader an upload key names (see upload_key); None for any other key."""
    first, _, rest = key.partition("/")
    folder = rest.partition("/")[0] if first == prefix else ""
    return folder if is_uploader_id(folder) else None


class UploadService:
    """Chooses the key and signs the form for one upload to the originals bucket."""

    def __init__(
        self,
        settings: Settings,
        client: Any,
        new_id: Callable[[], str] = lambda: secrets.token_hex(12),
    ) -> None:
        self._settings = settings
        self._client = client
        self._new_id = new_id

    def create(self, uploader: str, request: UploadRequest) -> dict[str, Any]:
        """The key, the form to POST the file with, and the variant URL template.

        With ``request.replace`` the form is pinned to that existing key: the
        caller has already checked it is the uploader's own (see
        :func:`owns`); the old bytes stay until S3 has the new ones.
        """
        self.check(request)
        if request.replace is not None:
            return self._form(uploader, request.replace, request)
        key = upload_key(self._settings.upload_prefix, uploader, self._new_id(), request.filename)
        try:
            check_key(key)
        except InvalidKey as err:
            raise InvalidFilename(err.public_message) from err
        return self._form(uploader, key, request)

    def delete(self, key: str) -> None:
        """Delete one original; the events pipeline purges its variants and records it."""
        from chalicelib.aws import aws_errors  # botocore: only once there is S3 work

        with aws_errors("the originals bucket"):
            self._client.delete_object(Bucket=self._settings.originals, Key=key)

    def _form(self, uploader: str, key: str, request: UploadRequest) -> dict[str, Any]:
        max_bytes = self._settings.max_source_bytes
        fields = {
            "Content-Type": request.content_type,
            "success_action_status": "201",
            f"x-amz-meta-{UPLOADER_METADATA}": uploader,
        }
        if request.focus is not None:
            fields[f"x-amz-meta-{FOCUS_METADATA}"] = request.focus.text
        form = self._client.generate_presigned_post(
            Bucket=self._settings.originals,
            Key=key,
            Fields=fields,
            Conditions=[
                *({name: value} for name, value in fields.items()),
                ["content-length-range", 1, max_bytes],
            ],
            ExpiresIn=self._settings.upload_expiry_seconds,
        )
        return {
            "key": key,
            "upload": {"url": form["url"], "fields": form["fields"]},
            "variant_url": variant_url_template(self._settings.public_url, key),
            "max_bytes": max_bytes,
            "expires_in": self._settings.upload_expiry_seconds,
        }

    def set_focus(self, uploader: str, key: str, focus: FocalPoint | None) -> dict[str, Any]:
        """Give the caller's own original ``key`` a new focal point (None: none).

        The original is copied onto itself with the metadata replaced: its
        bytes and ETag stay, and its ObjectCreated:Copy event purges exactly
        the ``-cover-focus`` variants made with another focal point
        (docs/uploads.md#focal-points).
        """
        from chalicelib.storage import ImageStore  # botocore: only once there is S3 work

        originals = ImageStore(self._client, self._settings.originals)
        info = originals.head(key)
        if info is None:
            raise OriginalNotFound(f"there is no original {key!r}")
        if owner_of(self._settings.upload_prefix, key, info.metadata) != uploader:
            raise NotTheOwner("only the original's uploader may change its focal point")
        metadata = {name: value for name, value in info.metadata.items() if name != FOCUS_METADATA}
        if focus is not None:
            metadata[FOCUS_METADATA] = focus.text
        originals.replace_metadata(key, info, metadata)
        return {"key": key, "focus": focus.text if focus is not None else None}

    def check(self, request: UploadRequest) -> None:
        """Refuse what S3 would refuse later, and what must never be stored."""
        if request.content_type not in UPLOAD_CONTENT_TYPES:
            allowed = ", ".join(sorted(UPLOAD_CONTENT_TYPES))
            raise UnsupportedContentType(f"content_type must be one of {allowed}")
        if request.size is not None and request.size > self._settings.max_source_bytes:
            raise UploadTooLarge(
                f"the file is {request.size} bytes, over the limit of "
                f"{self._settings.max_source_bytes}"
            )
        check_filename(request.filename)
