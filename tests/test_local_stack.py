"""The local tooling itself: s3rver and chalice local as launched by scripts/."""

from __future__ import annotations

import shutil
import subprocess
import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.e2e


def first_read(stack: Any, key: str, put_done: threading.Event) -> dict[str, Any] | None:
    """HEAD ``key`` until it exists; None if the PUT finished without it ever appearing."""
    client = stack.s3_client()
    while True:
        try:
            return client.head_object(Bucket=stack.bucket, Key=key)
        except ClientError:
            if put_done.is_set():
                return None


def test_a_new_object_never_shows_without_its_content_type(local_stack: Any) -> None:
    # Before the launcher wrote metadata ahead of the data file, about one read
    # in five racing a key's first PUT answered binary/octet-stream.
    client = local_stack.s3_client()
    seen: list[str | None] = []
    for attempt in range(60):
        key = f"race/{attempt}.jpg"
        put_done = threading.Event()
        reader = threading.Thread(
            target=lambda k=key, done=put_done: seen.append(
                (first_read(local_stack, k, done) or {}).get("ContentType", "not seen")
            )
        )
        reader.start()
        client.put_object(
            Bucket=local_stack.bucket, Key=key, Body=b"\xff" * 20_000, ContentType="image/jpeg"
        )
        put_done.set()
        reader.join()
    assert len(seen) == 60
    assert set(seen) - {"not seen"} == {"image/jpeg"}


def listen_backlog(port: int) -> int:
    """The accept-queue limit of the socket listening on ``port`` (``ss``'s Send-Q)."""
    ss = shutil.which("ss")
    if ss is None:
        pytest.skip("needs ss (iproute2) to read a listening socket's backlog")
    lines = subprocess.run(
        [ss, "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    backlogs = {int(line.split()[2]) for line in lines if line.strip()}
    assert len(backlogs) == 1, lines
    return backlogs.pop()


def test_chalice_local_accepts_a_deep_queue_of_connections(local_stack: Any) -> None:
    # chalice local's own backlog of 5 overflowed under `make load`
    # (see scripts/local/chalice_local.py).
    assert listen_backlog(local_stack.api_port) >= 128


@pytest.mark.parametrize(
    ("ephemeral", "expected"),
    [
        ("20000\t60999\n", range(10000, 20000)),  # below the range
        ("1024 50000\n", range(50001, 65536)),  # above it, the larger side
        ("1024 65535\n", range(1024, 65536)),  # no side left: the kernel's pick
    ],
)
def test_free_ports_are_outside_the_kernels_ephemeral_range(
    ephemeral: str, expected: range, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # CI once failed 21 tests because an outgoing connection took the port handed to
    # chalice before chalice bound it: the kernel picks those from this range.
    from scripts.local import stack

    range_file = tmp_path / "ip_local_port_range"
    range_file.write_text(ephemeral)
    monkeypatch.setattr(stack, "EPHEMERAL_PORTS_FILE", range_file)
    ports = [stack.free_port() for _ in range(50)]
    assert all(port in expected for port in ports)
    assert len(set(ports)) == len(ports)


def test_a_port_something_listens_on_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from scripts.local import stack

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        monkeypatch.setattr(stack, "listening_ports", lambda: range(taken, taken + 1))
        with pytest.raises(RuntimeError, match="no free port"):
            stack.free_port()


@pytest.fixture
def moto_server() -> Any:
    """scripts/local/moto_server.py on a free port, as the local stack starts it."""
    import sys
    import time

    import requests

    from scripts.local.stack import free_port
    from tests.support import ROOT

    port = free_port()
    command = [
        sys.executable,
        "-m",
        "scripts.local.moto_server",
        "-H",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    process = subprocess.Popen(command, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_concurrent_metadata_transactions_lose_no_usage(moto_server: str) -> None:
    # moto's transactions restore a whole-table snapshot when cancelled, erasing
    # what another request wrote meanwhile; the launcher runs DynamoDB's requests
    # one at a time, as DynamoDB's serializable transactions would.
    import boto3

    from chalicelib.originals.metadata import TABLE_SCHEMA

    client = boto3.client(
        "dynamodb",
        endpoint_url=moto_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_table(TableName="t", **TABLE_SCHEMA)
    usage = {"pk": {"S": "usage#u"}, "sk": {"S": "usage"}}

    def add_one(thread: int, number: int) -> None:
        item = {"pk": {"S": f"original#{thread}/{number}"}, "sk": {"S": "meta"}}
        add = {
            "Update": {
                "TableName": "t",
                "Key": usage,
                "UpdateExpression": "ADD originals :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }
        cancelled = {
            "Put": {"TableName": "t", "Item": item, "ConditionExpression": "size(pk) < :n"}
        }
        cancelled["Put"]["ExpressionAttributeValues"] = {":n": {"N": "0"}}
        client.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": item}}, add])
        with pytest.raises(ClientError):  # a lost race: condition failed, rolled back
            client.transact_write_items(TransactItems=[cancelled, add])

    per_thread = 40
    threads = [
        threading.Thread(target=lambda t=t: [add_one(t, n) for n in range(per_thread)])
        for t in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = client.get_item(TableName="t", Key=usage, ConsistentRead=True)["Item"]
    assert int(stored["originals"]["N"]) == 4 * per_thread
