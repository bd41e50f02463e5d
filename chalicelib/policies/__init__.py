"""Per-prefix policies: a watermark, allowed sizes and formats, signing (docs/watermarks.md).

``document`` parses the policy document purely into frozen rules (errors name
the field's path); ``store`` reads the active document and watermark images
from the originals bucket with caches, and activates an uploaded document.
"""

__all__ = ["document", "store"]
