"""HEIC/HEIF originals: pillow-heif's Pillow opener, registered the first time a walk finds HEIF.

Importing pillow-heif loads libheif, libde265 and x265 (about 0.4 s on a busy
core here; docs/decisions.md): a JPEG miss or a refused request never pays it.
libheif applies ``irot``/``imir`` (and crops to ``clap``) as it decodes and
pillow-heif resets the EXIF orientation it hands Pillow to 1, so the pipeline's
EXIF step is a no-op for HEIF and a picture is turned exactly once.  10-bit
pictures come out 8-bit; embedded thumbnails, depth and other auxiliary
images are never read (alpha is part of the image and stays).
"""

from __future__ import annotations

import threading

FORMAT = "HEIF"  # the name pillow-heif's opener gives Pillow

_lock = threading.Lock()
_registered = False


def register_opener() -> None:
    """Register pillow-heif's opener with Pillow, once per process."""
    global _registered
    with _lock:
        if _registered:
            return
        import pillow_heif

        pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
        _registered = True


def registered() -> bool:
    """Whether this process has loaded pillow-heif (for tests and benchmarks)."""
    return _registered
