"""The one translation of AWS client failures into the service's typed errors.

Every call to S3, DynamoDB, SQS, SNS or CloudFront runs inside
:func:`aws_errors`: a failure becomes :class:`StorageUnavailable` (503, the
caller may retry), except the error codes the caller expects as an answer
(S3's ``NoSuchKey``, a lost conditional write), which it reads from the
outcome instead.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import StorageUnavailable


@dataclass
class Outcome:
    """An expected error code the service answered with (falsy when the call succeeded)."""

    code: str | None = None
    error: ClientError | None = None

    def __bool__(self) -> bool:
        return self.code is not None


@contextmanager
def aws_errors(what: str, expect: Collection[str] = ()) -> Iterator[Outcome]:
    """Run AWS calls; an ``expect``-ed code is recorded in the outcome, any other failure
    raises StorageUnavailable saying ``what`` is unavailable."""
    outcome = Outcome()
    try:
        yield outcome
    except ClientError as err:
        code = error_code(err)
        if code not in expect:
            raise StorageUnavailable(f"{what} is unavailable, try again", repr(err)) from err
        outcome.code, outcome.error = code, err
    except BotoCoreError as err:
        raise StorageUnavailable(f"{what} is unavailable, try again", repr(err)) from err


def error_code(err: ClientError) -> str:
    """The service's error code (``NoSuchKey``, ``SlowDown``, ...): told apart by it, never by
    text."""
    return str(err.response.get("Error", {}).get("Code", ""))
