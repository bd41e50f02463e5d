"""moto's server for the local SQS, DynamoDB and SNS, with DynamoDB's requests one at a time.

moto's DynamoDB is not safe under concurrent requests: a transaction
snapshots whole tables and, when cancelled, restores the snapshot over
whatever another request wrote meanwhile, and its ``ADD`` updates are a
read and a write with nothing between them.  Two events handled at once (the
poller's concurrency) then lose a usage update now and then.  DynamoDB
itself runs transactions serializably; one DynamoDB request at a time gives
the same, while SQS long polls still run side by side.

    python -m scripts.local.moto_server -H 127.0.0.1 -p 4566
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

# DynamoDB's JSON protocol names the operation in this header: DynamoDB_20120810.<Action>.
DYNAMODB_TARGET = "DynamoDB_"


class OneDynamoDBRequestAtATime:
    """WSGI middleware: a lock around every DynamoDB request, nothing around the others."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith(DYNAMODB_TARGET):
            return self._app(environ, start_response)
        with self._lock:
            return list(self._app(environ, start_response))  # the body too, inside the lock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto.server: queue URLs carry it
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        args.host,
        args.port,
        OneDynamoDBRequestAtATime(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
