"""Which formats are read and written, and which output a request gets: plain data, no Pillow."""

from __future__ import annotations

from chalicelib.errors import NonCanonicalSize
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
    # Browsers don't show HEIC: a phone photo becomes a JPEG (pillow-heif's format name).
    "HEIF": "jpeg",
    # Browsers can't show these; PNG keeps every pixel and any alpha.
    "BMP": "png",
    "TIFF": "png",
}


# Pillow's JPEG opener itself returns MPO files, so MPO is not asked for by name; HEIF's
# opener exists only once chalicelib.imaging.heif has registered it, for a HEIF file.
INPUT_FORMATS = tuple(name for name in DEFAULT_OUTPUT if name not in ("MPO", "HEIF"))


GIF = OutputFormat("gif", "GIF", "image/gif", None)  # an output only when the original is a GIF


FORMATS = {**OUTPUT_FORMATS, "gif": GIF}


# Pillow format name → the Content-Type of every format we write.
CONTENT_TYPES = {f.pillow: f.content_type for f in FORMATS.values()}


ANIMATED_OUTPUTS = frozenset({"GIF", "WEBP"})


# A TIFF's pages and an MPO's second picture are not animations: never counted.
ANIMATED_SOURCES = frozenset({"GIF", "WEBP", "PNG", "AVIF"})


ALPHA_OUTPUTS = frozenset({"PNG", "GIF", "WEBP", "AVIF"})


def output_format(source_format: str | None, spec: ResizeSpec) -> OutputFormat:
    """The URL's format, else the original's; asking for the original's own is non-canonical."""
    default = FORMATS[DEFAULT_OUTPUT[source_format or ""]]
    if spec.output is None:
        return default
    if spec.output == default and spec.quality is None:
        # Two URLs would make the same bytes; the short one is canonical.
        raise NonCanonicalSize(
            f"the original is already {default.name}; use {spec.without_output().token!r}"
        )
    return spec.output
