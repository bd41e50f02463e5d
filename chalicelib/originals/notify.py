"""Notifications: one SNS message per processed original, for whoever subscribes."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.aws import aws_errors


class Notifier:
    """Publishes one message per processed original to an SNS topic."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def publish(self, message: dict[str, Any]) -> None:
        with aws_errors("the notification topic"):
            self._client.publish(
                TopicArn=self._topic_arn,
                Message=json.dumps(message),
                MessageAttributes={
                    "state": {"DataType": "String", "StringValue": message["state"]}
                },
            )
