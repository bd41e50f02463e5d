"""The originals' lifecycle: an S3 event in, variants purged or pre-rendered, a record, a message.

``events`` parses S3 notifications; ``lifecycle`` decides what an event does;
``purge`` deletes stale variants (and their CDN paths); ``metadata`` stores
records and usage in DynamoDB; ``notify`` publishes to SNS.
"""

__all__ = ["events", "lifecycle", "metadata", "notify", "purge"]
