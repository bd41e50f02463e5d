"""What an original is: size as displayed, format, frames, when and with what it was taken.

Pure, like the pipeline: bytes in, a frozen value out.  It reads headers and EXIF
only (no pixel is decoded), after the same container walk and pixel check a
render runs first, so a hostile original is refused here as it would be there.
GPS is read only when asked for: a photo's position is personal data, and the
metadata store keeps it only with ``KEEP_GPS_METADATA``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from PIL import Image

from chalicelib.imaging import containers, exif
from chalicelib.imaging.decoding import frame_count, opened
from chalicelib.imaging.limits import ImagingLimits
from chalicelib.imaging.memory import check_pixels

_EXIF_DATE = "%Y:%m:%d %H:%M:%S"
MAX_TEXT_CHARS = 64  # camera names are short; a longer EXIF string is noise or an attack


@dataclass(frozen=True)
class Gps:
    latitude: float
    longitude: float


@dataclass(frozen=True)
class ImageFacts:
    """An original as a viewer shows it: upright width and height (EXIF orientation applied)."""

    format: str  # Pillow's name: JPEG, PNG, GIF, WEBP, AVIF, BMP, TIFF (MPO reads as JPEG)
    width: int
    height: int
    frames: int = 1
    taken_at: str | None = None  # ISO 8601, as the camera wrote it (no time zone)
    camera_make: str | None = None
    camera_model: str | None = None
    gps: Gps | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for JSON and the metadata store; absent facts left out."""
        return {name: value for name, value in asdict(self).items() if value is not None}


def describe(original: bytes, limits: ImagingLimits, *, with_gps: bool = False) -> ImageFacts:
    """The facts of ``original``; raises the typed errors a render would (415, 413, 422).

    Only the EXIF tags the record needs are read, each to a bounded count (exif.py).
    """
    structure = containers.walk(original, limits.max_frames)
    with opened(original) as image:
        check_pixels(image.size, limits)
        tags = exif.read(image, original, structure, gps=with_gps)
        width, height = image.size
        if tags.orientation in exif.SWAPPING:
            width, height = height, width
        return ImageFacts(
            format="JPEG" if image.format == "MPO" else str(image.format),
            width=width,
            height=height,
            frames=_frames(image, structure),
            taken_at=_taken_at(tags),
            camera_make=_text(tags.make),
            camera_model=_text(tags.model),
            gps=_gps(tags.gps) if tags.gps else None,
        )


def _frames(image: Image.Image, structure: containers.Structure) -> int:
    """Frames as counted by the walk (never by seeking through them); TIFF pages count once."""
    if image.format in ("TIFF", "MPO", "JPEG"):
        return 1
    if structure.frames is not None:
        return structure.frames
    return frame_count(image)


def _taken_at(tags: exif.Tags) -> str | None:
    for raw in (tags.date_time_original, tags.date_time):
        text = _text(raw)
        if text is None:
            continue
        try:
            return datetime.strptime(text, _EXIF_DATE).isoformat()
        except ValueError:
            continue  # "0000:00:00 00:00:00" and other placeholders
    return None


def _text(raw: bytes | None) -> str | None:
    """A printable EXIF string, stripped of padding; None for anything else."""
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace").strip("\x00 ").strip()
    if not text or len(text) > MAX_TEXT_CHARS or not text.isprintable():
        return None
    return text


def _gps(gps: tuple[bytes, tuple[float, ...], bytes, tuple[float, ...]]) -> Gps | None:
    north, latitude_parts, east, longitude_parts = gps
    latitude = _degrees(latitude_parts, north)
    longitude = _degrees(longitude_parts, east)
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    return Gps(round(latitude, 6), round(longitude, 6))


def _degrees(parts: tuple[float, ...], reference: bytes) -> float:
    degrees, minutes, seconds = parts
    value = degrees + minutes / 60 + seconds / 3600
    return -value if reference.strip(b"\x00 ").upper() in (b"S", b"W") else value
