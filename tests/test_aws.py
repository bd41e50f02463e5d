"""The one translation of AWS failures: expected codes are answers, anything else an outage."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.aws import aws_errors
from chalicelib.errors import StorageUnavailable


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, "GetObject")


def test_a_call_that_succeeds_has_no_outcome() -> None:
    with aws_errors("storage", expect={"NoSuchKey"}) as outcome:
        pass
    assert not outcome


def test_an_expected_code_is_recorded_not_raised() -> None:
    error = client_error("NoSuchKey")
    with aws_errors("storage", expect={"NoSuchKey"}) as outcome:
        raise error
    assert outcome
    assert (outcome.code, outcome.error) == ("NoSuchKey", error)


@pytest.mark.parametrize(
    "error",
    [
        client_error("SlowDown"),
        client_error("NoSuchKey"),
        EndpointConnectionError(endpoint_url="x"),
    ],
)
def test_anything_else_is_unavailable_and_says_what(error: Exception) -> None:
    with pytest.raises(StorageUnavailable) as raised, aws_errors("the events queue"):
        raise error
    assert raised.value.public_message == "the events queue is unavailable, try again"
    assert raised.value.__cause__ is error


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), aws_errors("storage"):
        raise KeyError("not an AWS failure")
