"""Where Pillow reads an original's bytes; the one place its failures become typed 4xx.

Pillow reports bad data with whatever its parser hit: ``OSError``,
``SyntaxError``, ``ValueError`` and ``EOFError`` by design, and ``IndexError``,
``struct.error``, ``KeyError``, ``TypeError``, ``ZeroDivisionError`` or
``RuntimeError`` (libavif) when a length or an offset lies.  The mutation sweep
(scripts/bench/mutations.py, run by ``make test`` and ``make bench``) finds
them.  Such types would also be how a bug of ours shows, so the mapping is not
wrapped around the pipeline: only the calls that hand the original's bytes to
Pillow (open, seek and frame counts, decode) run inside ``decoding()``.
Everything else, resampling, colour, encoding, fails loudly as a 500.

``MemoryError`` is left alone: the memory model admits only renders within the
budget, so running out means the model is wrong or the host is overloaded,
which a retry or an alert should see, not the uploader.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO

from PIL import Image, UnidentifiedImageError

from chalicelib.errors import InvalidImage, OriginalTooManyPixels, UnsupportedImage
from chalicelib.imaging.formats import INPUT_FORMATS

# What Pillow's readers raise on corrupt or truncated bytes (see the module docstring).
DECODER_FAILURES: tuple[type[Exception], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    struct.error,
    zlib.error,
    ZeroDivisionError,
    OverflowError,
    RuntimeError,
)


@contextmanager
def decoding() -> Iterator[None]:
    """Run Pillow's reading of an original; its failures raised as typed service errors."""
    try:
        yield
    except Image.DecompressionBombError as err:  # Pillow's own, far higher limit
        raise OriginalTooManyPixels("the original has too many pixels", str(err)) from err
    except UnidentifiedImageError as err:
        raise UnsupportedImage(
            "the original is not a JPEG, PNG, GIF, WebP, AVIF, BMP or TIFF image", str(err)
        ) from err
    except DECODER_FAILURES as err:
        raise InvalidImage("the original image is corrupt or truncated", repr(err)) from err


@contextmanager
def opened(original: bytes) -> Iterator[Image.Image]:
    """The original opened for reading (only the formats we decode).

    Only the opening is inside ``decoding()``: what the caller does with the
    image fails as itself.
    """
    with decoding():
        image = Image.open(BytesIO(original), formats=INPUT_FORMATS)
    with image:
        yield image


def loaded(image: Image.Image) -> Image.Image:
    """``image`` with its pixels decoded."""
    with decoding():
        image.load()
    return image


def frame_count(image: Image.Image) -> int:
    """Pillow's own count (AVIF reads it from its sample table; GIF and PNG seek for it)."""
    with decoding():
        return int(getattr(image, "n_frames", 1))


def decoded_frames(image: Image.Image) -> Iterator[Image.Image]:
    """Every frame in turn, decoded; each is composited onto the ones before it."""
    index = 0
    while True:
        with decoding():
            try:
                image.seek(index)
            except EOFError:
                return  # no more frames: where Pillow's ImageSequence stops too
            image.load()
        yield image
        index += 1
