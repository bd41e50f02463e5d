"""The URL grammar: size tokens and object keys, parsed once into typed values.

A size token is ``<box>[-<fit>[-<anchor>]][@<dpr>x][-q<quality>][.<format>]`` and has
exactly one spelling per variant, so two URLs never create the same image twice:

=========================  ==================================================
``300x200``                fit inside 300×200, keep the aspect ratio
``300x`` / ``x200``        300 wide / 200 high, the other side follows
``300x200-cover``          fill 300×200 exactly, cropping the overflow (centred)
``300x200-cover-ne``       the crop touches that edge or corner: n s e w ne nw se sw
``300x200-cover-smart``    the crop keeps the most detailed part (edges, skin, colour)
``300x200-cover-focus``    the crop is centred on the original's focal point (else smart)
``300x200-pad``            fit inside, then letterbox to exactly 300×200
``300x200@2x``             device pixel ratio 2 or 3: a 600×400 box
``300x200.webp``           output format: ``jpeg``, ``png``, ``webp``, ``avif``
``300x200-q70.webp``       quality 1–95 (.webp: 1–100), only with an explicit lossy format
``300x200.auto``           the format the browser takes best (resize/negotiate.py)
=========================  ==================================================

``.auto`` is only ever a request: it resolves to the concrete token of the
negotiated format (``300x200.avif``, ``300x200.webp``, ``300x200``), and
nothing is stored under it.  It takes no ``-q``: one number means different
things to JPEG, WebP and AVIF, so each gets its own default.

Canonical means: ASCII digits without leading zeros, lowercase, defaults left
out (``inside``, ``@1x``, the format's default quality).  A recognisable but
non-canonical spelling is refused with an error naming the canonical one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import quote, unquote

from chalicelib.errors import InvalidKey, InvalidSize, NonCanonicalSize

MAX_KEY_BYTES = 1024
# What a URL template (an upload's answer, a notification) has where the size token goes.
SIZE_PLACEHOLDER = "{size}"
MAX_DPR = 3
# More digits than any sane value; refuses before int() sees a huge string.
_MAX_DIGITS = 6


class Fit(StrEnum):
    INSIDE = "inside"
    COVER = "cover"
    PAD = "pad"


class Anchor(StrEnum):
    """Where a cover crop sits: centred, against an edge or corner, or chosen per image."""

    CENTRE = "centre"
    N = "n"
    S = "s"
    E = "e"
    W = "w"
    NE = "ne"
    NW = "nw"
    SE = "se"
    SW = "sw"
    SMART = "smart"  # the most detailed window (imaging/attention.py)
    FOCUS = "focus"  # centred on the original's focal point; without one, smart


_PLACED = tuple(anchor for anchor in Anchor if anchor is not Anchor.CENTRE)
# Names a person may mean an anchor by; the canonical spelling is the enum's value
# (the centre is the default, spelled by leaving the anchor out).
_ANCHOR_ALIASES = {
    "center": Anchor.CENTRE,
    "north": Anchor.N,
    "top": Anchor.N,
    "south": Anchor.S,
    "bottom": Anchor.S,
    "east": Anchor.E,
    "right": Anchor.E,
    "west": Anchor.W,
    "left": Anchor.W,
    "northeast": Anchor.NE,
    "northwest": Anchor.NW,
    "southeast": Anchor.SE,
    "southwest": Anchor.SW,
}


@dataclass(frozen=True)
class OutputFormat:
    """An output format a URL may ask for."""

    name: str  # as spelled in URLs
    pillow: str  # Pillow's format name
    content_type: str
    default_quality: int | None  # None: lossless, takes no quality
    # The lowest quality that looks lossless (SSIMULACRA 2 ≥ 90 on a photo,
    # scripts/bench/quality.py): anything above only adds bytes, so it is refused.
    max_quality: int | None = None


# ``.auto``: a format to negotiate, never rendered (so not in OUTPUT_FORMATS, and takes no -q).
AUTO = OutputFormat("auto", "", "", None)

# Default qualities at equal looks: JPEG q85 scores 82–88 SSIMULACRA 2 on the bench photo
# at 320–1280 px; WebP needs q90 and AVIF q75 to score the same (docs/formats.md).
OUTPUT_FORMATS = {
    f.name: f
    for f in (
        OutputFormat("jpeg", "JPEG", "image/jpeg", 85, max_quality=95),
        OutputFormat("png", "PNG", "image/png", None),
        # WebP's lossy mode (4:2:0 colour) scores 90 only at 100: the byte cap bounds it.
        OutputFormat("webp", "WEBP", "image/webp", 90, max_quality=100),
        OutputFormat("avif", "AVIF", "image/avif", 75, max_quality=95),
    )
}
_FORMAT_ALIASES = {"jpg": "jpeg"}

# Loose on purpose: recognises what a person probably meant (any case, spaces,
# Unicode digits, defaults spelled out), so the error can name the canonical form.
# Possessive quantifiers (*+, ++) never give back what they matched: a run of
# spaces can't be split between neighbouring \s* in exponentially many ways.
_LOOSE_TOKEN = re.compile(
    r"""\s*+(?P<width>\d*+)\s*+[xX×]\s*+(?P<height>\d*+)\s*+
    (?:-\s*+(?P<fit>[A-Za-z]++)\s*+)?
    (?:-\s*+(?P<anchor>[A-Za-z]++)\s*+)?
    (?:@\s*+(?P<dpr>\d++)\s*+[xX]\s*+)?
    (?:-\s*+[qQ]\s*+(?P<quality>\d++)\s*+)?
    (?:\.\s*+(?P<format>[A-Za-z0-9]++)\s*+)?""",
    re.VERBOSE,
)
# The longest canonical token, 16384x16384-cover-smart@3x-q100.webp, has 37 characters;
# anything much longer is refused before any pattern looks at it.
MAX_TOKEN_CHARS = 64


@dataclass(frozen=True)
class ResizeSpec:
    """A requested variant: box, fit mode, pixel ratio, output format and quality."""

    width: int | None
    height: int | None
    fit: Fit = Fit.INSIDE
    dpr: int = 1
    output: OutputFormat | None = None  # None: the original's own format
    quality: int | None = None  # None: the output format's default
    anchor: Anchor = Anchor.CENTRE  # where a cover crop sits

    @property
    def token(self) -> str:
        """The canonical size token, the first segment of the variant key."""
        token = f"{self.width or ''}x{self.height or ''}"
        if self.fit is not Fit.INSIDE:
            token += f"-{self.fit}"
        if self.anchor is not Anchor.CENTRE:
            token += f"-{self.anchor}"
        if self.dpr != 1:
            token += f"@{self.dpr}x"
        if self.quality is not None:
            token += f"-q{self.quality}"
        if self.output is not None:
            token += f".{self.output.name}"
        return token

    @property
    def is_auto(self) -> bool:
        """A ``.auto`` request: resolved to a concrete format per request, never stored."""
        return self.output == AUTO

    @property
    def box(self) -> tuple[int | None, int | None]:
        """The box in output pixels (the pixel ratio applied)."""
        return (
            self.width * self.dpr if self.width else None,
            self.height * self.dpr if self.height else None,
        )

    def variant_key(self, original_key: str) -> str:
        """Where the variant of ``original_key`` is stored."""
        return variant_key(self.token, original_key)

    def without_output(self) -> ResizeSpec:
        """The same variant in the original's own format."""
        return replace(self, output=None, quality=None)


def parse_size(text: str, max_dimension: int) -> ResizeSpec:
    """Parse a canonical size token or raise InvalidSize / NonCanonicalSize."""
    match = _LOOSE_TOKEN.fullmatch(text) if len(text) <= MAX_TOKEN_CHARS else None
    if match is None or not (match["width"] or match["height"]):
        raise InvalidSize(
            "size must look like 300x200, 300x or x200, optionally followed by "
            "-cover (optionally placed: -n, -ne, ..., -smart, -focus) or -pad, "
            "@2x or @3x, -q<1-100> and .jpeg/.png/.webp/.avif/.auto; "
            f"dimensions from 1 to {max_dimension}"
        )
    spec = _spec_from(match, max_dimension)
    if spec.token != text:
        raise NonCanonicalSize(f"size {text!r} is not in canonical form; use {spec.token!r}")
    return spec


def _spec_from(match: re.Match[str], max_dimension: int) -> ResizeSpec:
    width = _number(match["width"], "width", 1, max_dimension)
    height = _number(match["height"], "height", 1, max_dimension)
    fit = _fit(match["fit"])
    if fit is not Fit.INSIDE and not (width and height):
        raise InvalidSize(f"-{fit} needs both a width and a height, e.g. 300x200-{fit}")
    anchor = _anchor(match["anchor"])
    if anchor is not Anchor.CENTRE and fit is not Fit.COVER:
        raise InvalidSize(f"an anchor only places a crop, e.g. 300x200-cover-{anchor}")
    dpr = _number(match["dpr"], "pixel ratio", 1, MAX_DPR) or 1
    output = _output_format(match["format"])
    quality = _number(match["quality"], "quality", 1, 100)
    if quality is not None:
        if output is None or output.default_quality is None:
            raise InvalidSize("-q<quality> needs an explicit lossy format: .jpeg, .webp or .avif")
        if output.max_quality is not None and quality > output.max_quality:
            raise InvalidSize(
                f"quality {quality} is over {output.max_quality}, from where .{output.name} "
                "already looks lossless: a higher quality only adds bytes"
            )
        if quality == output.default_quality:
            quality = None
    spec = ResizeSpec(width, height, fit, dpr, output, quality, anchor)
    if any(side and side > max_dimension for side in spec.box):
        raise InvalidSize(f"size times pixel ratio must stay within {max_dimension} pixels")
    return spec


def _number(digits: str | None, what: str, low: int, high: int) -> int | None:
    if not digits:
        return None
    # int() accepts any Unicode decimal digit, e.g. fullwidth ones: that's a
    # non-canonical spelling, caught when the token is rendered back.
    if len(digits) > _MAX_DIGITS or not low <= int(digits) <= high:
        raise InvalidSize(f"{what} must be between {low} and {high}")
    return int(digits)


def _fit(name: str | None) -> Fit:
    if name is None:
        return Fit.INSIDE
    try:
        return Fit(name.lower())
    except ValueError:
        raise InvalidSize(f"unknown fit mode {name!r}; use -cover or -pad") from None


def _anchor(name: str | None) -> Anchor:
    if name is None:
        return Anchor.CENTRE
    name = name.lower()
    try:
        return _ANCHOR_ALIASES.get(name) or Anchor(name)
    except ValueError:
        raise InvalidSize(f"unknown anchor {name!r}; use one of {', '.join(_PLACED)}") from None


def _output_format(name: str | None) -> OutputFormat | None:
    if name is None:
        return None
    name = _FORMAT_ALIASES.get(name.lower(), name.lower())
    if name == AUTO.name:
        return AUTO
    if name not in OUTPUT_FORMATS:
        formats = ", ".join([*OUTPUT_FORMATS, AUTO.name])
        raise InvalidSize(f"unknown output format; use one of {formats}")
    return OUTPUT_FORMATS[name]


def parse_key(segments: list[str]) -> str:
    """Join percent-encoded path segments into an S3 key, decoding exactly once.

    API Gateway REST APIs, ``chalice local`` and ``chalice.test.Client`` all
    hand path parameters over still percent-encoded, so they are decoded here
    (and the size in the service), once.  ``+`` is a literal plus in a path.
    """
    try:
        key = "/".join(decode_segment(segment) for segment in segments)
    except UnicodeDecodeError as err:
        raise InvalidKey("key is not valid UTF-8 once percent-decoded", str(err)) from err
    check_key(key)
    return key


def decode_segment(segment: str) -> str:
    """Percent-decode one path parameter (``@`` arrives as ``%40`` from S3's redirect)."""
    return unquote(segment, errors="strict")


def check_key(key: str) -> None:
    """Refuse keys that S3 or a browser would treat ambiguously."""
    if not key:
        raise InvalidKey("key is empty")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKey(f"key is longer than {MAX_KEY_BYTES} bytes")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        raise InvalidKey("key contains control characters")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKey("key has an empty, '.' or '..' segment")


def variant_key(path: str, original_key: str) -> str:
    """Where a variant is stored: ``<path>/<original key>``, ``<path>`` being
    ``[<signature>/]<size token>``."""
    return f"{path}/{original_key}"


def public_url(base: str, key: str) -> str:
    """The address of a stored object under the public base (``PUBLIC_URL``)."""
    return f"{base}/{quote(key, safe='/')}"


def variant_url_template(base: str, original_key: str) -> str:
    """The public URL of any size of ``original_key``, with a literal ``{size}`` to fill in."""
    return f"{base}/{variant_key(SIZE_PLACEHOLDER, quote(original_key, safe='/'))}"
