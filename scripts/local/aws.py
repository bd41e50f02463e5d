"""The local AWS services of the event pipeline: SQS, DynamoDB and SNS in moto's server.

In production the originals bucket's S3 event notifications go to an SQS queue
(with a dead-letter queue), Lambda's SQS event source mapping invokes the app
with batches, and the app writes metadata to DynamoDB and publishes to SNS.
:func:`create_event_resources` makes the same queues, table and topic in a
running moto server; :func:`app_aws_env` is what the app processes need to
reach them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3

from chalicelib.config import EVENTS_QUEUE_NAME
from chalicelib.originals.metadata import TABLE_SCHEMA

REGION = "us-east-1"
# moto accepts any credentials; s3rver accepts these, and the app uses one set for both.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER"}

EVENTS_QUEUE = EVENTS_QUEUE_NAME
EVENTS_DLQ = f"{EVENTS_QUEUE_NAME}-dlq"
NOTIFY_TOPIC = "image-events"
NOTIFICATIONS_QUEUE = "image-notifications"
DEFAULT_METADATA_TABLE = "image-metadata"


@dataclass(frozen=True)
class EventResources:
    """What :func:`create_event_resources` made, as the app and the tests address it."""

    endpoint_url: str
    queue_url: str
    queue_arn: str
    dlq_url: str
    table_name: str
    topic_arn: str
    notifications_queue_url: str


def aws_client(service: str, endpoint_url: str, config: Any = None) -> Any:
    """A client of a local server (moto, s3rver) with the credentials both accept."""
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=config,
    )


def queue_arn(sqs: Any, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def create_events_queue(
    sqs: Any, *, visibility_timeout: int, max_receive_count: int
) -> tuple[str, str]:
    """The events queue and its dead-letter queue; returns (queue URL, DLQ URL)."""
    dlq_url = sqs.create_queue(QueueName=EVENTS_DLQ)["QueueUrl"]
    redrive = {"deadLetterTargetArn": queue_arn(sqs, dlq_url), "maxReceiveCount": max_receive_count}
    queue_url = sqs.create_queue(
        QueueName=EVENTS_QUEUE,
        Attributes={
            "VisibilityTimeout": str(visibility_timeout),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return queue_url, dlq_url


def create_notify_topic(sns: Any, sqs: Any) -> tuple[str, str]:
    """The topic the app publishes to, and a queue subscribed to it so tests can read it.

    RawMessageDelivery stays off: each message is SNS's JSON envelope, whose
    ``Message`` is what was published (and ``Subject``, ``TopicArn`` come along).
    """
    topic_arn = sns.create_topic(Name=NOTIFY_TOPIC)["TopicArn"]
    notifications_url = sqs.create_queue(QueueName=NOTIFICATIONS_QUEUE)["QueueUrl"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(sqs, notifications_url))
    return topic_arn, notifications_url


def create_event_resources(
    endpoint_url: str,
    *,
    visibility_timeout: int,
    table_name: str = DEFAULT_METADATA_TABLE,
    max_receive_count: int = 3,
) -> EventResources:
    sqs = aws_client("sqs", endpoint_url)
    queue_url, dlq_url = create_events_queue(
        sqs, visibility_timeout=visibility_timeout, max_receive_count=max_receive_count
    )
    aws_client("dynamodb", endpoint_url).create_table(TableName=table_name, **TABLE_SCHEMA)
    topic_arn, notifications_url = create_notify_topic(aws_client("sns", endpoint_url), sqs)
    return EventResources(
        endpoint_url=endpoint_url,
        queue_url=queue_url,
        queue_arn=queue_arn(sqs, queue_url),
        dlq_url=dlq_url,
        table_name=table_name,
        topic_arn=topic_arn,
        notifications_queue_url=notifications_url,
    )


def app_aws_env(resources: EventResources) -> dict[str, str]:
    """The app's environment for the local services.

    botocore (>= 1.31) reads ``AWS_ENDPOINT_URL_<SERVICE>`` itself, so the app
    creates its clients exactly as on Lambda; S3 keeps its own S3_ENDPOINT_URL.
    """
    endpoint = resources.endpoint_url
    return {
        **FAKE_CREDENTIALS,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL_SQS": endpoint,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "AWS_ENDPOINT_URL_SNS": endpoint,
        "METADATA_TABLE": resources.table_name,
        "NOTIFY_TOPIC_ARN": resources.topic_arn,
        # The handler sends its own delayed rechecks to the queue it reads.
        "EVENTS_QUEUE_URL": resources.queue_url,
    }
