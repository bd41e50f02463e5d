"""The Chalice app's code, by role: ``resize/`` (a URL to a stored variant), ``imaging/``
(bytes to bytes; the only Pillow), ``originals/`` (an S3 event to a record), and at the top
``config``, ``errors``, ``http`` (errors to responses), ``aws`` (AWS failures to errors),
``storage`` (S3 objects), ``uploads`` (presigned forms) and ``wiring`` (the lazy getters)."""

__all__ = ["aws", "config", "errors", "http", "storage", "uploads", "wiring"]
