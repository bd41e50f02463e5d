"""Seeded mutation and truncation sweeps: every decoder failure must be a typed 4xx.

One small original of every input format (``seeds()``, built here in code,
with the metadata a camera or an editor writes: EXIF with an orientation and a
GPS block, ICC, XMP, text), cut at evenly spaced points and mutated a few bytes
at a time by a seeded generator (bit flips, boundary values over 1, 2 and 4
bytes, deleted, repeated and inserted spans).  Each case goes through
``inspect``, ``render``, ``describe`` and ``check_watermark`` in-process; ``sweep`` counts the
outcomes and keeps the first few escapes (any exception that is not a
``ServiceError``, or a ``ServiceError`` that is not a 4xx).

``make test`` runs a small sweep (tests/test_decoding.py), ``make bench`` a
larger one (scripts/bench/bombs.py).  The same seed makes the same mutations
(an AVIF encoder may vary its output by a few bytes between builds, and so
the cases made from it).
"""

from __future__ import annotations

import random
import struct
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BytesIO

from PIL import Image, ImageCms, ImageDraw

from chalicelib import imaging
from chalicelib.errors import ServiceError
from chalicelib.imaging import ImagingLimits, describe, inspect, render
from chalicelib.resize.grammar import parse_size
from scripts.bench import bomb_files

# Tight limits: a mutated header that claims a large picture is refused at once
# rather than decoded for a second, so a sweep stays fast.  The caps are the
# same code whatever their value.
SWEEP_LIMITS = ImagingLimits(max_source_pixels=1_000_000, max_render_bytes=64 * 2**20)
SPECS = (parse_size("40x", 4096), parse_size("30x30-cover-q50.webp", 4096))

ORIENTATION, MAKE, MODEL, EXIF_IFD, GPS_IFD = 0x0112, 0x010F, 0x0110, 0x8769, 0x8825
DATE_TIME_ORIGINAL = 0x9003
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    b'syntax-ns#"><rdf:Description xmlns:tiff="http://ns.adobe.com/tiff/1.0/" '
    b'tiff:Orientation="6"/></rdf:RDF></x:xmpmeta>'
)


def _picture(size: tuple[int, int] = (40, 30), mode: str = "RGB") -> Image.Image:
    image = Image.new("RGB", size, (200, 30, 30))
    draw = ImageDraw.Draw(image)
    draw.rectangle((size[0] // 2, 0, size[0], size[1] // 2), fill=(30, 200, 30))
    draw.ellipse((4, size[1] // 2, size[0] // 2, size[1] - 1), fill=(30, 30, 200))
    return image.convert(mode)


def _exif(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "Camera Maker"
    exif[MODEL] = "Model 1"
    exif.get_ifd(EXIF_IFD)[DATE_TIME_ORIGINAL] = "2024:05:06 07:08:09"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (52.0, 31.0, 0.0), 3: "E", 4: (13.0, 24.0, 0.0)})
    return exif


def _srgb() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _frames(count: int, size: tuple[int, int] = (32, 24)) -> list[Image.Image]:
    return [_picture(size).rotate(90 * i) for i in range(count)]


def seeds() -> dict[str, bytes]:
    """One small original per input format (two for JPEG, PNG and WebP), a few KB each."""
    picture = _picture()
    frames = _frames(3)
    exif = _exif().tobytes()
    return {
        "jpeg": _encoded(picture, "JPEG", exif=exif, icc_profile=_srgb(), xmp=XMP, comment=b"hi"),
        "jpeg-progressive": _encoded(picture, "JPEG", progressive=True, exif=_exif(3).tobytes()),
        "png": _encoded(
            picture.convert("RGBA"), "PNG", exif=exif, icc_profile=_srgb(), pnginfo=_png_text()
        ),
        # EXIF after the pixels: Pillow decodes them all to reach it.
        "png-exif-after": bomb_files.png(
            (40, 30), colour_type=2, after_idat=bomb_files.png_chunk(b"eXIf", exif[6:])
        ),
        "gif-animated": _encoded(
            frames[0].convert("P"),
            "GIF",
            save_all=True,
            append_images=[f.convert("P") for f in frames[1:]],
            duration=[50, 60, 70],
            loop=0,
            disposal=2,
            comment=b"a comment",
        ),
        "webp": _encoded(picture, "WEBP", quality=60, exif=exif, icc_profile=_srgb(), xmp=XMP),
        "webp-animated": _encoded(
            frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50, lossless=True
        ),
        "avif": _encoded(picture, "AVIF", quality=40, exif=exif),
        "bmp": _encoded(picture, "BMP"),
        "tiff": _encoded(picture, "TIFF", exif=_exif(8), compression="tiff_lzw"),
    }


def _png_text() -> object:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "plain text")
    info.add_text("Software", "compressed text", zip=True)
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    return info


# --- mutations ----------------------------------------------------------------------------

_BOUNDARY_BYTES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
_BOUNDARY_WORDS = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF)
_BOUNDARY_LONGS = (0, 1, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def truncations(original: bytes, count: int) -> Iterator[bytes]:
    """``original`` cut at ``count`` evenly spaced points (the empty file excluded)."""
    step = max(1, len(original) // count)
    for length in range(1, len(original), step):
        yield original[:length]


def mutants(original: bytes, count: int, seed: int) -> Iterator[bytes]:
    """``count`` copies of ``original``, each with one to four seeded mutations.

    Half of the mutations hit the first 256 bytes, where the headers are.
    """
    rng = random.Random(seed)
    for _ in range(count):
        data = bytearray(original)
        for _ in range(rng.randint(1, 4)):
            _mutate(data, rng)
        yield bytes(data)


def _mutate(data: bytearray, rng: random.Random) -> None:
    if not data:
        return
    end = min(len(data), 256) if rng.random() < 0.5 else len(data)
    at = rng.randrange(end)
    kind = rng.randrange(7)
    if kind == 0:
        data[at] ^= 1 << rng.randrange(8)
    elif kind == 1:
        data[at] = rng.choice(_BOUNDARY_BYTES)
    elif kind == 2:
        data[at : at + 2] = struct.pack(rng.choice("<>") + "H", rng.choice(_BOUNDARY_WORDS))
    elif kind == 3:
        data[at : at + 4] = struct.pack(rng.choice("<>") + "I", rng.choice(_BOUNDARY_LONGS))
    elif kind == 4:
        del data[at : at + rng.randint(1, 32)]
    elif kind == 5:
        span = bytes(data[at : at + rng.randint(1, 64)])
        data[at:at] = span * rng.randint(1, 8)
    else:
        data[at:at] = rng.randbytes(rng.randint(1, 16))


# --- the sweep ----------------------------------------------------------------------------


@dataclass
class Escape:
    """A case that ended in anything but a result or a 4xx."""

    seed: str
    kind: str  # "cut" or "mutant"
    index: int
    call: str
    outcome: str
    data: bytes = field(repr=False)


@dataclass
class Report:
    cases: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    escapes: list[Escape] = field(default_factory=list)
    escape_kinds: Counter[str] = field(default_factory=Counter)
    worst_seconds: float = 0.0
    worst_case: str = ""


CALLS: dict[str, Callable[[bytes], object]] = {
    "inspect": lambda data: [inspect(data, spec, SWEEP_LIMITS) for spec in SPECS],
    "render": lambda data: [render(data, spec, SWEEP_LIMITS) for spec in SPECS],
    "describe": lambda data: describe(data, SWEEP_LIMITS, with_gps=True),
}
# The file as a watermark, where the code swept has them (bombs.py --before REV may not).
_check_watermark = getattr(imaging, "check_watermark", None)
if _check_watermark is not None:
    CALLS["check_watermark"] = lambda data: _check_watermark(data, SWEEP_LIMITS)


def outcome_of(call: Callable[[bytes], object], data: bytes) -> tuple[str, bool]:
    """What one call answered, and whether that is an escape (not a result, not a 4xx)."""
    try:
        call(data)
    except ServiceError as err:
        return f"{err.status} {err.code}", not 400 <= err.status < 500
    except Exception as err:  # what the service would answer 500 to
        return f"escape {type(err).__module__}.{type(err).__name__}", True
    return "ok", False


def cases(per_seed: int, seed: int) -> Iterator[tuple[str, str, int, bytes]]:
    """(seed name, kind, index, bytes): ``per_seed`` cuts and ``per_seed`` mutants of each."""
    for number, (name, original) in enumerate(seeds().items()):
        for index, data in enumerate(truncations(original, per_seed)):
            yield name, "cut", index, data
        for index, data in enumerate(mutants(original, per_seed, seed * 1000 + number)):
            yield name, "mutant", index, data


def sweep(per_seed: int, seed: int = 17, keep: int = 20) -> Report:
    """Run every case through every call; keep the first ``keep`` escapes."""
    report = Report()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow warns about much of what a mutant holds
        for name, kind, index, data in cases(per_seed, seed):
            report.cases += 1
            for call_name, call in CALLS.items():
                start = time.perf_counter()
                outcome, escaped = outcome_of(call, data)
                seconds = time.perf_counter() - start
                if seconds > report.worst_seconds:
                    report.worst_seconds, report.worst_case = seconds, f"{name} {kind} {index}"
                report.outcomes[outcome] += 1
                if escaped:
                    report.escape_kinds[outcome] += 1
                    if len(report.escapes) < keep:
                        report.escapes.append(Escape(name, kind, index, call_name, outcome, data))
    return report
