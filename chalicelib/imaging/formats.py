"""Which formats are read and written, and which output a request gets: plain data, no Pillow."""

from __future__ import annotations

from chalicelib.resize.grammar import OUTPUT_FORMATS, OutputFormat, ResizeSpec

# What we decode.  Everything else Pillow could open (EPS via Ghostscript, PSD,
# ICO, PDF, ...) is refused before decoding: it has no place on a web page and
# widens the attack surface.  MPO is how Pillow names most phone JPEGs.
DEFAULT_OUTPUT = {
    "JPEG": "jpeg",
    "MPO": "jpeg",
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "AVIF": "avif",
    # Browsers can't show these; PNG keeps every pixel and any alpha.
    "BMP": "png",
    "TIFF": "png",
}


# Pillow's JPEG opener itself returns MPO files, so MPO is not asked for by name.
INPUT_FORMATS = tuple(name for name in DEFAULT_OUTPUT if name != "MPO")


GIF = OutputFormat("gif", "GIF", "image/gif", None)  # an output only when the original is a GIF


FORMATS = {**OUTPUT_FORMATS, "gif": GIF}


# Pillow format name → the Content-Type of every format we write.
CONTENT_TYPES = {f.pillow: f.content_type for f in FORMATS.values()}


ANIMATED_OUTPUTS = frozenset({"GIF", "WEBP"})


# A TIFF's pages and an MPO's second picture are not animations: never counted.
ANIMATED_SOURCES = frozenset({"GIF", "WEBP", "PNG", "AVIF"})


ALPHA_OUTPUTS = frozenset({"PNG", "GIF", "WEBP", "AVIF"})


def output_format(source_format: str | None, spec: ResizeSpec) -> OutputFormat:
    """The URL's format, else the original's."""
    return spec.output or own_format(source_format)


def own_format(source_format: str | None) -> OutputFormat:
    """What a size without a format gets from an original of ``source_format``."""
    return FORMATS[DEFAULT_OUTPUT[source_format or ""]]


def is_own_format(source_format: str | None, spec: ResizeSpec) -> bool:
    """``spec`` names the original's own format at its default quality: the short
    spelling (no format) makes the same bytes, and is where they are stored."""
    return spec.output == own_format(source_format) and spec.quality is None
