"""Typed errors: each carries its HTTP status, a stable code and a public message.

The public message is safe to show to anyone; the internal detail (``str(err)``)
goes to the logs only.  Responses are built from these in exactly one place,
:func:`chalicelib.http.error_response`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class ServiceError(Exception):
    """Base class: a request that cannot be served, with the answer to give."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    headers: ClassVar[Mapping[str, str]] = {}

    def __init__(self, public_message: str, internal: str | None = None) -> None:
        super().__init__(internal or public_message)
        self.public_message = public_message


class Misconfigured(ServiceError):
    """The deployment's settings are unusable; the detail is in the log."""

    status = 500
    code = "misconfigured"


class InvalidSize(ServiceError):
    status = 400
    code = "invalid_size"


class NonCanonicalSize(ServiceError):
    status = 400
    code = "non_canonical_size"


class SizeNotAllowed(ServiceError):
    status = 403
    code = "size_not_allowed"


class InvalidKey(ServiceError):
    status = 400
    code = "invalid_key"


class OriginalNotFound(ServiceError):
    status = 404
    code = "original_not_found"


class OriginalChanged(ServiceError):
    """The original was replaced while a variant of it was being made: nothing was stored."""

    status = 409
    code = "original_changed"


class NotYetKnown(ServiceError):
    """No record of that original: never uploaded, or its event not handled yet."""

    status = 404
    code = "not_found"


class OriginalDeleted(ServiceError):
    """The original's record is a tombstone: its delete was handled."""

    status = 410
    code = "original_deleted"


class NotAVariantUrl(ServiceError):
    status = 404
    code = "not_a_variant_url"


class UnsupportedImage(ServiceError):
    status = 415
    code = "unsupported_format"


class InvalidImage(ServiceError):
    status = 422
    code = "invalid_image"


class OriginalUnreadable(ServiceError):
    """The image code failed on this original in a way no typed error names (the log has it)."""

    status = 422
    code = "original_unreadable"


class StorageUnavailable(ServiceError):
    status = 503
    code = "storage_unavailable"
    headers: ClassVar[Mapping[str, str]] = {"Retry-After": "2"}


class VariantOfVariant(ServiceError):
    status = 400
    code = "variant_of_variant"


class SignatureRequired(ServiceError):
    status = 403
    code = "signature_required"


class InvalidSignature(ServiceError):
    status = 403
    code = "invalid_signature"


class SignatureExpired(ServiceError):
    status = 403
    code = "signature_expired"


class VariantBudgetExhausted(ServiceError):
    status = 403
    code = "variant_budget_exhausted"


class VariantTooLarge(ServiceError):
    """The encoded variant is over MAX_VARIANT_BYTES_PER_PIXEL: nothing is stored."""

    status = 422
    code = "variant_too_large"


class OriginalTooManyBytes(ServiceError):
    status = 413
    code = "original_too_many_bytes"


class OriginalTooManyPixels(ServiceError):
    status = 413
    code = "original_too_many_pixels"


class EmptyOriginal(ServiceError):
    status = 422
    code = "empty_original"


class RedirectLoop(ServiceError):
    status = 508
    code = "redirect_loop"


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"
    headers: ClassVar[Mapping[str, str]] = {"WWW-Authenticate": "Bearer"}


class IdentityProviderUnavailable(ServiceError):
    status = 503
    code = "identity_provider_unavailable"


class InvalidUploadRequest(ServiceError):
    status = 400
    code = "invalid_request"


class InvalidFilename(ServiceError):
    status = 400
    code = "invalid_filename"


class UnsupportedContentType(ServiceError):
    status = 415
    code = "unsupported_content_type"


class UploadTooLarge(ServiceError):
    status = 413
    code = "upload_too_large"


class OriginNotAllowed(ServiceError):
    status = 403
    code = "origin_not_allowed"


class OriginalTooComplex(ServiceError):
    """Decoding would cost more work than a request may: too many scans, chunks, blocks or tags."""

    status = 422
    code = "original_too_complex"

    @classmethod
    def over_cap(cls, what: str, count: int, cap: int) -> OriginalTooComplex:
        """Too many ``what`` (``count`` of them, at least) for the cap of ``cap``."""
        return cls(
            f"the original has too many {what} to decode within a request's budget",
            f"{count} {what}, over the cap of {cap}",
        )


class InvalidFocus(ServiceError):
    status = 400
    code = "invalid_focus"


class NotTheOwner(ServiceError):
    status = 403
    code = "not_the_owner"
