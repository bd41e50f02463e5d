"""S3 event notifications as tests hand them to the lifecycle: one builder for the shape."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote_plus


def notification(
    name: str, key: str, sequencer: str, bucket: str = "originals", **found: Any
) -> str:
    """The body S3 (and the local s3rver forwarder) sends for one change of ``key``.

    The key is URL-encoded as S3 encodes it; ``found`` adds the object's
    ``eTag`` and ``size`` for a created object.
    """
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": name,
        "eventTime": "2026-12-01T12:00:00.000Z",
        "s3": {
            "bucket": {"name": bucket},
            "object": {"key": quote_plus(key, safe="/"), "sequencer": sequencer, **found},
        },
    }
    return json.dumps({"Records": [record]})


def sqs_event_for(client: Any, key: str, etag: str, size: int) -> Any:
    body = notification(
        "ObjectCreated:Put", key, "0055AED6DCD90281E5", eTag=etag.strip('"'), size=size
    )
    return client.events.generate_sqs_event(message_bodies=[body])
