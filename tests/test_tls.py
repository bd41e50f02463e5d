"""The S3 clients' TLS: the CA bundle is parsed once, and certificates are still verified."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import SSLError
from botocore.httpsession import get_cert_path

from chalicelib import lean_s3, wiring
from chalicelib.config import Settings
from chalicelib.lean_s3 import LeanS3Client
from chalicelib.wiring import load_certificates_once


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command line."""
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    files = ["-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            *subject,
            *files,
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class NotFound(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one connection per request: every request connects anew

    def do_HEAD(self) -> None:
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 answering every HEAD 404, and the CA that signed it."""
    cert, key = self_signed(tmp_path, "server")
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_port}", cert
    finally:
        server.shutdown()
        server.server_close()


def client_for(url: str, bundle: Path) -> object:
    return boto3.client(
        "s3",
        endpoint_url=url,
        verify=str(bundle),
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )


def count_bundle_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    loads: list[str] = []
    original = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(str(args or kwargs))
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    return loads


def head_three_times(client: object) -> None:
    for _ in range(3):
        with pytest.raises(client.exceptions.ClientError):  # type: ignore[attr-defined]
            client.head_object(Bucket="images", Key="a.jpg")  # type: ignore[attr-defined]


def test_the_bundle_is_loaded_once_for_three_connections(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca = https_server
    loads = count_bundle_loads(monkeypatch)
    client = client_for(url, ca)
    assert load_certificates_once(client)
    head_three_times(client)  # verified against the preloaded CA: a 404, not an SSL error
    assert len(loads) == 1


def test_without_it_every_connection_loads_the_bundle(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca = https_server
    loads = count_bundle_loads(monkeypatch)
    head_three_times(client_for(url, ca))
    assert len(loads) == 3


def test_a_certificate_outside_the_bundle_is_still_refused(
    https_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, _ = https_server
    other_ca, _ = self_signed(tmp_path, "other")
    client = client_for(url, other_ca)
    assert load_certificates_once(client)
    with pytest.raises(SSLError):
        client.head_object(Bucket="images", Key="a.jpg")  # type: ignore[attr-defined]


def test_a_client_that_does_not_verify_is_left_alone() -> None:
    client = boto3.client(
        "s3",
        verify=False,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    assert not load_certificates_once(client)


def test_a_plain_http_endpoint_loads_no_bundle() -> None:
    client = boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    assert not load_certificates_once(client)


def lean_client_for(
    url: str, boto: object | None = None, ssl_context: ssl.SSLContext | None = None
) -> LeanS3Client:
    settings = Settings(bucket="images", public_url="https://img.example.com", s3_endpoint_url=url)
    # The wrapped client: its bundle unused, unless its context is handed over.
    boto = boto or client_for(url, Path(get_cert_path(True)))
    return LeanS3Client(
        boto, Credentials("x", "x"), replace(settings, s3_max_attempts=1), ssl_context=ssl_context
    )


def test_the_lean_client_loads_its_bundle_once_and_verifies_with_it(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca = https_server
    loads = count_bundle_loads(monkeypatch)
    monkeypatch.setattr(lean_s3, "get_cert_path", lambda _verify: str(ca))
    head_three_times(lean_client_for(url))  # three connections (HTTP/1.0), each verified: 404s
    assert len(loads) == 1
    assert str(ca) in loads[0]


def test_the_lean_client_refuses_a_certificate_outside_botocores_bundle(
    https_server: tuple[str, Path],
) -> None:
    url, _ = https_server
    with pytest.raises(SSLError):
        lean_client_for(url).head_object(Bucket="images", Key="a.jpg")


def test_the_lean_client_verifies_with_the_wrapped_clients_loaded_context(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given the boto3 client's context (wiring does), the bundle is parsed once for both."""
    url, ca = https_server
    loads = count_bundle_loads(monkeypatch)
    boto = client_for(url, ca)
    head_three_times(lean_client_for(url, boto, load_certificates_once(boto)))
    head_three_times(boto)
    assert len(loads) == 1


def test_wiring_hands_the_lean_client_the_boto3_clients_context(
    app_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("S3_ENDPOINT_URL", "https://127.0.0.1:9")  # nothing is sent
    wiring.reset()
    try:
        tls = wiring._s3_client_and_tls()[1]
        lean = wiring.get_miss_client()
        assert isinstance(tls, ssl.SSLContext)
        assert lean._http.connection_pool_kw["ssl_context"] is tls
    finally:
        wiring.reset()
