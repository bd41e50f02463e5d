"""LeanS3Client against boto3's client: the same answers, requests, errors and retries."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from chalicelib import wiring
from chalicelib.config import Settings
from chalicelib.errors import OriginalTooManyBytes
from chalicelib.lean_s3 import LeanS3Client
from chalicelib.storage import ImageStore
from tests.support import BUCKET, PUBLIC_URL

CREDENTIALS = Credentials("testing", "testing")
KEYS = ["plain.jpg", "a b/c d.jpg", "x+y.jpg", "100%.jpg", "naïve/öl.jpg", "~tilde/a~b.jpg"]
OBJECT_FIELDS = ("ContentLength", "ETag", "LastModified", "Metadata", "ContentType")
LISTED_FIELDS = ("Key", "LastModified", "ETag", "Size")


def boto3_client(endpoint_url: str, credentials: Credentials = CREDENTIALS) -> Any:
    """boto3's S3 client as wiring.py configures it for a local S3 (path style)."""
    session = wiring.get_session()
    config = wiring._client_config(s3={"addressing_style": "path"})
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        config=config,
    )


def lean_client(
    endpoint_url: str,
    sleeps: list[float] | None = None,
    credentials: Credentials = CREDENTIALS,
    **env: Any,
) -> LeanS3Client:
    """A LeanS3Client at ``endpoint_url``; its backoff's jitter is 0.5 and its sleeps recorded."""
    settings = Settings(bucket=BUCKET, public_url=PUBLIC_URL, s3_endpoint_url=endpoint_url)
    return LeanS3Client(
        boto3_client(endpoint_url, credentials),
        credentials,
        dataclasses.replace(settings, **env),
        jitter=lambda: 0.5,
        sleep=(sleeps if sleeps is not None else []).append,
    )


@pytest.fixture
def app_settings(app_env: dict[str, str]) -> Iterator[None]:
    wiring.reset()
    yield
    wiring.reset()


@pytest.fixture
def bucket(moto_url: str, app_settings: None) -> str:
    name = f"lean-{uuid.uuid4().hex[:12]}"
    boto3_client(moto_url).create_bucket(Bucket=name)
    return name


@pytest.fixture
def both(moto_url: str, bucket: str) -> tuple[Any, LeanS3Client]:
    return boto3_client(moto_url), lean_client(moto_url)


def picked(answer: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: answer[name] for name in fields if name in answer}


def caught(call: Callable[..., Any], **params: Any) -> ClientError:
    with pytest.raises(ClientError) as raised:
        call(**params)
    return raised.value


@pytest.mark.parametrize("key", KEYS)
def test_head_get_and_list_answer_as_boto3_does(
    both: tuple[Any, LeanS3Client], bucket: str, key: str
) -> None:
    assert_answers_match(*both, bucket, key)


@pytest.mark.e2e
def test_answers_from_s3rver_are_boto3s(tmp_path: Path, app_settings: None) -> None:
    """The local stack's S3 (s3rver with its fixes) answers the lean client as it does boto3."""
    from scripts.local.aws import FAKE_CREDENTIALS
    from scripts.local.stack import LocalStack, free_port

    stack = LocalStack(tmp_path, s3_port=free_port(), api_port=free_port())
    try:
        stack.start_aws()  # s3rver sends its object events there
        stack.start_s3()
        s3rver = Credentials(*FAKE_CREDENTIALS.values())
        boto, lean = (
            boto3_client(stack.s3_url, s3rver),
            lean_client(stack.s3_url, credentials=s3rver),
        )
        boto.create_bucket(Bucket=BUCKET)
        for key in KEYS:
            assert_answers_match(boto, lean, BUCKET, key)
        for call, code in (("head_object", "404"), ("get_object", "NoSuchKey")):
            ours = caught(getattr(lean, call), Bucket=BUCKET, Key="no such.jpg")
            theirs = caught(getattr(boto, call), Bucket=BUCKET, Key="no such.jpg")
            assert_same_error(ours, theirs, code)
    finally:
        stack.stop()


def assert_answers_match(boto: Any, lean: LeanS3Client, bucket: str, key: str) -> None:
    """HEAD, GET and LIST of one stored object: the lean client's answers are boto3's."""
    boto.put_object(
        Bucket=bucket,
        Key=key,
        Body=b"0123456789",
        ContentType="image/jpeg",
        Metadata={"Etag": '"abc"', "Focus": "0.25,0.75"},
    )
    theirs, ours = (client.head_object(Bucket=bucket, Key=key) for client in (boto, lean))
    assert picked(ours, OBJECT_FIELDS) == picked(theirs, OBJECT_FIELDS)
    assert set(picked(ours, OBJECT_FIELDS)) == set(OBJECT_FIELDS)
    assert ours["Metadata"] == {"etag": '"abc"', "focus": "0.25,0.75"}
    assert ours["LastModified"].utcoffset() is not None
    theirs, ours = (client.get_object(Bucket=bucket, Key=key) for client in (boto, lean))
    assert picked(ours, OBJECT_FIELDS) == picked(theirs, OBJECT_FIELDS)
    assert ours["Body"].read() == theirs["Body"].read() == b"0123456789"
    prefix = key[:3]
    theirs, ours = (client.list_objects_v2(Bucket=bucket, Prefix=prefix) for client in (boto, lean))
    ours_listed = [picked(item, LISTED_FIELDS) for item in ours["Contents"]]
    assert ours_listed == [picked(item, LISTED_FIELDS) for item in theirs["Contents"]]
    assert key in [item["Key"] for item in ours["Contents"]]
    assert (ours["KeyCount"], ours["IsTruncated"]) == (theirs["KeyCount"], theirs["IsTruncated"])


def test_a_listing_pages_as_boto3s_does(both: tuple[Any, LeanS3Client], bucket: str) -> None:
    boto, lean = both
    for key in KEYS:
        boto.put_object(Bucket=bucket, Key=f"p/{key}", Body=b"x")
    assert "Contents" not in lean.list_objects_v2(Bucket=bucket, Prefix="nothing/")
    pages: list[list[dict[str, Any]]] = [[], []]
    for index, client in enumerate((boto, lean)):
        token: dict[str, str] = {}
        while True:
            page = client.list_objects_v2(Bucket=bucket, Prefix="p/", MaxKeys=4, **token)
            pages[index].append({**page, "Contents": len(page["Contents"])})
            if not page["IsTruncated"]:
                break
            token = {"ContinuationToken": page["NextContinuationToken"]}
    fields = ("Contents", "IsTruncated", "KeyCount", "NextContinuationToken")
    assert [picked(page, fields) for page in pages[1]] == [
        picked(page, fields) for page in pages[0]
    ]
    assert len(pages[1]) == 2


def test_a_put_is_what_boto3_reads_back(both: tuple[Any, LeanS3Client], bucket: str) -> None:
    boto, lean = both
    key = "100x/a b+c%~ü.jpg"
    written = lean.put_object(
        Bucket=bucket,
        Key=key,
        Body=b"variant",
        ContentType="image/webp",
        CacheControl="public, max-age=60",
        IfNoneMatch="*",
        WebsiteRedirectLocation="/200x/a.jpg",
        Metadata={"Source-ETag": '"e1"'},
    )
    head = boto.head_object(Bucket=bucket, Key=key)
    assert written["ETag"] == head["ETag"] == f'"{hashlib.md5(b"variant").hexdigest()}"'
    assert head["ContentType"] == "image/webp"
    assert head["CacheControl"] == "public, max-age=60"
    assert head["WebsiteRedirectLocation"] == "/200x/a.jpg"
    assert head["Metadata"] == {"source-etag": '"e1"'}
    assert boto.get_object(Bucket=bucket, Key=key)["Body"].read() == b"variant"
    # moto honours If-None-Match: * as S3 does: a 412 with the same error as boto3's.
    again = {"Body": b"other", "ContentType": "image/webp", "CacheControl": "no-cache"}
    ours = caught(lean.put_object, Bucket=bucket, Key=key, IfNoneMatch="*", **again)
    theirs = caught(boto.put_object, Bucket=bucket, Key=key, IfNoneMatch="*", **again)
    assert_same_error(ours, theirs, "PreconditionFailed")
    assert (
        ImageStore(lean, bucket).put_new(
            key, b"x", content_type="image/webp", cache_control="no-cache"
        )
        is False
    )


def assert_same_error(ours: ClientError, theirs: ClientError, code: str) -> None:
    assert ours.operation_name == theirs.operation_name
    assert ours.response["Error"] == theirs.response["Error"]
    assert ours.response["Error"]["Code"] == code
    status = ours.response["ResponseMetadata"]["HTTPStatusCode"]
    assert status == theirs.response["ResponseMetadata"]["HTTPStatusCode"]
    assert str(ours) == str(theirs)


def test_missing_objects_and_buckets_are_boto3s_errors(
    both: tuple[Any, LeanS3Client], bucket: str
) -> None:
    boto, lean = both
    for call, code in (("head_object", "404"), ("get_object", "NoSuchKey")):
        ours = caught(getattr(lean, call), Bucket=bucket, Key="no such.jpg")
        theirs = caught(getattr(boto, call), Bucket=bucket, Key="no such.jpg")
        assert_same_error(ours, theirs, code)
    ours = caught(lean.list_objects_v2, Bucket="no-such-bucket", Prefix="a/")
    theirs = caught(boto.list_objects_v2, Bucket="no-such-bucket", Prefix="a/")
    assert_same_error(ours, theirs, "NoSuchBucket")
    assert ImageStore(lean, bucket).head("no such.jpg") is None


def test_other_calls_are_the_boto3_clients(both: tuple[Any, LeanS3Client], bucket: str) -> None:
    boto, lean = both
    lean.put_object(Bucket=bucket, Key="a.jpg", Body=b"x", ContentType="a/b", CacheControl="c")
    lean.delete_object(Bucket=bucket, Key="a.jpg")
    assert "Contents" not in boto.list_objects_v2(Bucket=bucket, Prefix="")
    assert lean.meta.endpoint_url == boto.meta.endpoint_url
    assert lean.meta.region_name == "us-east-1"


class Recorder(ThreadingHTTPServer):
    """Records each request (method, target, headers, body) and answers from ``answers``."""

    def __init__(self, answers: Callable[[str, str], tuple[int, dict[str, str], bytes]]) -> None:
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.answers = answers
        super().__init__(("127.0.0.1", 0), _Recording)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *_: object) -> None:
        self.shutdown()
        self.server_close()


class _Recording(BaseHTTPRequestHandler):
    server: Recorder
    protocol_version = "HTTP/1.1"

    def answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path, dict(self.headers.items()), body))
        status, headers, payload = self.server.answers(self.command, self.path)
        self.send_response(status)
        for name, value in {"Content-Length": str(len(payload)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_HEAD = do_GET = do_PUT = answer

    def log_message(self, *_: object) -> None:
        pass


EMPTY_LISTING = (
    b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
    b"<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>"
)
OBJECT_HEADERS = {
    "ETag": '"e"',
    "Last-Modified": "Wed, 02 Dec 2026 05:08:18 GMT",
    "x-amz-meta-Focus": "0.5,0.5",  # S3 sends names lowercased; ImageStore wants them so
}


def a_stored_object(method: str, target: str) -> tuple[int, dict[str, str], bytes]:
    """Every request's answer: a listing for a LIST, else one small object."""
    if "list-type=2" in target:
        return 200, {"Content-Type": "application/xml"}, EMPTY_LISTING
    return 200, OBJECT_HEADERS, b"" if method == "PUT" else b"ab"


CALLS: list[tuple[str, dict[str, Any]]] = [
    ("head_object", {"Key": "a b/+%~ü.jpg"}),
    ("get_object", {"Key": "a b/+%~ü.jpg"}),
    (
        "put_object",
        {
            "Key": "100x/a b.jpg",
            "Body": b"bytes",
            "ContentType": "image/jpeg",
            "CacheControl": "public, max-age=60",
            "IfNoneMatch": "*",
            "WebsiteRedirectLocation": "/200x/a.jpg",
            "Metadata": {"source-etag": '"e"'},
        },
    ),
    ("list_objects_v2", {"Prefix": "_variants/5/a b+~ü/", "MaxKeys": 202}),
    ("list_objects_v2", {"Prefix": "p/", "ContinuationToken": "1/2+3=="}),
]


def signed_names(headers: dict[str, str]) -> str:
    return headers["Authorization"].split("SignedHeaders=")[1].split(",")[0]


@pytest.mark.parametrize(("call", "params"), CALLS, ids=[call for call, _ in CALLS])
def test_requests_on_the_wire_are_boto3s_and_their_signatures_verify(
    app_settings: None, call: str, params: dict[str, Any]
) -> None:
    with Recorder(a_stored_object) as server:
        for client in (boto3_client(server.url), lean_client(server.url)):
            answer = getattr(client, call)(Bucket=BUCKET, **params)
            if "Body" in answer:
                answer["Body"].read()
        (theirs, ours) = server.seen
    if "Metadata" in answer:
        assert answer["Metadata"] == {"focus": "0.5,0.5"}
    assert ours[0] == theirs[0]
    # boto3 asks for url-encoded keys in a LIST (and decodes them); the lean client does not.
    assert ours[1] == theirs[1].replace("&encoding-type=url", "")
    assert signed_names(ours[2]) == signed_names(theirs[2])
    assert ours[3] == theirs[3]
    assert signature(server.url, *ours) == ours[2]["Authorization"].split("Signature=")[1]


def signature(endpoint: str, method: str, target: str, headers: dict[str, str], body: bytes) -> str:
    """The request's SigV4 signature recomputed by botocore from what the server received."""
    names = signed_names(headers).split(";")
    received = {name: value for name, value in headers.items() if name.lower() in names}
    request = AWSRequest(method, endpoint + target, received, body)
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = S3SigV4Auth(CREDENTIALS, "s3", "us-east-1")
    return signer.signature(
        signer.string_to_sign(request, signer.canonical_request(request)), request
    )


def test_throttling_is_retried_after_botocores_backoff(app_settings: None) -> None:
    throttled = 0

    def slow_down_once(method: str, target: str) -> tuple[int, dict[str, str], bytes]:
        nonlocal throttled
        if throttled:
            return a_stored_object(method, target)
        throttled += 1
        return 503, {}, b"<Error><Code>SlowDown</Code><Message>Reduce</Message></Error>"

    sleeps: list[float] = []
    with Recorder(slow_down_once) as server:
        answer = lean_client(server.url, sleeps).get_object(Bucket=BUCKET, Key="a.jpg")
        assert answer["Body"].read() == b"ab"
        assert len(server.seen) == 2
    assert sleeps == [0.5 * 1]  # jitter × throttling's base of 1 s × 2**0


@pytest.mark.parametrize(
    ("answer", "code", "sleeps"),
    [
        ((503, b"<Error><Code>SlowDown</Code><Message>m</Message></Error>"), "SlowDown", [0.5, 1]),
        ((500, b""), "500", [0.025, 0.05]),  # not throttling: a base of 50 ms
    ],
)
def test_failures_are_tried_s3_max_attempts_times(
    app_settings: None, answer: tuple[int, bytes], code: str, sleeps: list[float]
) -> None:
    slept: list[float] = []
    with Recorder(lambda *_: (answer[0], {}, answer[1])) as server:
        lean = lean_client(server.url, slept, s3_max_attempts=3)
        error = caught(lean.get_object, Bucket=BUCKET, Key="a.jpg")
        assert len(server.seen) == 3
    assert error.response["Error"]["Code"] == code
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == answer[0]
    assert error.operation_name == "GetObject"
    assert slept == sleeps


def test_a_client_error_is_not_retried(app_settings: None) -> None:
    with Recorder(lambda *_: (403, {}, b"<Error><Code>AccessDenied</Code></Error>")) as server:
        error = caught(lean_client(server.url).get_object, Bucket=BUCKET, Key="a")
        assert len(server.seen) == 1
    assert error.response["Error"]["Code"] == "AccessDenied"


def test_a_refused_connection_is_botocores_error_after_every_attempt(app_settings: None) -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    slept: list[float] = []
    lean = lean_client(f"http://127.0.0.1:{port}", slept, s3_max_attempts=2)
    with pytest.raises(EndpointConnectionError) as raised:
        lean.head_object(Bucket=BUCKET, Key="a.jpg")
    assert isinstance(raised.value, BotoCoreError)
    assert slept == [0.025]


class Endless:
    """Answers a GET with a huge Content-Length and sends body until the client goes away."""

    SIZE = 1 << 30

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sent = 0
        self.dropped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        connection, _ = self.sock.accept()
        with connection:
            connection.recv(65536)
            head = f'HTTP/1.1 200 OK\r\nContent-Length: {self.SIZE}\r\nETag: "e"\r\n\r\n'
            connection.sendall(head.encode())
            chunk = b"\0" * 65536
            try:
                while self.sent < self.SIZE:
                    self.sent += connection.send(chunk)
            except OSError:
                self.dropped.set()


def test_an_oversized_original_is_refused_unread_and_its_connection_dropped(
    app_settings: None,
) -> None:
    server = Endless()
    lean = lean_client(f"http://127.0.0.1:{server.sock.getsockname()[1]}")
    with pytest.raises(OriginalTooManyBytes, match=f"{Endless.SIZE} bytes"):
        ImageStore(lean, BUCKET).get_original("big.jpg", max_bytes=1000)
    assert server.dropped.wait(10)
    assert server.sent < Endless.SIZE // 16  # only what the sockets' buffers took
    server.sock.close()


def test_the_resize_services_stores_use_the_lean_client_unless_tracing(
    app_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = wiring.get_service()
    for store in (service._store, service._originals):
        assert isinstance(store._client.head_object.__self__, LeanS3Client)
    assert not isinstance(wiring.get_uploads()._client.head_object.__self__, LeanS3Client)
    boto = boto3.client("s3", region_name="us-east-1")
    monkeypatch.setenv("TRACE_AWS_CALLS", "true")
    monkeypatch.setattr(wiring, "get_s3_client", wiring._built_once(lambda: boto))
    wiring.reset()
    service = wiring.get_service()
    assert service._store._client.head_object.__self__ is boto


class Unsent(Exception):
    """A request stopped before botocore sent it."""


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
@pytest.mark.parametrize("bucket", ["images", "my.images", "Images_2"])
def test_urls_on_aws_are_botocores(app_settings: None, region: str, bucket: str) -> None:
    """Virtual-hosted on AWS, path style for a dotted or non-DNS name: botocore's choice."""
    boto = wiring.get_session().client("s3", region_name=region, config=wiring._client_config())
    sent: list[str] = []

    def record(request: AWSRequest, **_: Any) -> None:
        sent.append(request.url)
        raise Unsent  # no network: stopped here

    boto.meta.events.register("before-send.s3.HeadObject", record)
    settings = Settings(bucket=BUCKET, public_url=PUBLIC_URL)
    lean = LeanS3Client(boto, CREDENTIALS, settings)
    for key in KEYS:
        with pytest.raises(Unsent):
            boto.head_object(Bucket=bucket, Key=key)
        assert lean.url(bucket, key) == sent.pop()
    assert lean.url(bucket, query={"list-type": "2"}).startswith("https://")


def test_moto_checking_signatures_accepts_the_lean_clients(moto_url: str, bucket: str) -> None:
    """moto verifies SigV4 (and IAM) once enable_iam_authentication is on: a key of its own."""
    from moto.core import enable_iam_authentication

    iam = wiring.get_session().client("iam", endpoint_url=moto_url, region_name="us-east-1")
    user = f"lean-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    allow = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(allow))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    with enable_iam_authentication():
        for secret, works in ((key["SecretAccessKey"], True), ("wrong" * 8, False)):
            lean = lean_client(moto_url, credentials=Credentials(key["AccessKeyId"], secret))
            put = {"Body": b"v", "ContentType": "image/jpeg", "CacheControl": "no-cache"}
            calls: list[tuple[Callable[..., Any], dict[str, Any]]] = [
                (lean.put_object, {"Key": "a b+~ü.jpg", "Metadata": {"m": "1"}, **put}),
                (lean.head_object, {"Key": "a b+~ü.jpg"}),
                (lean.get_object, {"Key": "a b+~ü.jpg"}),
                (lean.list_objects_v2, {"Prefix": "a b+~", "MaxKeys": 5}),
            ]
            for call, params in calls:
                if works:
                    call(Bucket=bucket, **params)
                else:
                    error = caught(call, Bucket=bucket, **params)
                    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
