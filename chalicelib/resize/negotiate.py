"""Which format a ``.auto`` URL gets: one rule, from the ``Accept`` header and what the original is.

The rule (docs/urls.md#auto-the-format-the-browser-takes-best):

1. AVIF or WebP, only when the ``Accept`` header names it with q > 0; of the
   two, the higher q, AVIF on a tie.  Wildcards (``image/*``, ``*/*``)
   never select either: every browser that decodes them names them, and
   clients that send only ``*/*`` (curl, mail clients, older browsers) often
   can't.  An explicit ``q=0`` refuses a type whatever wildcard follows.
2. Animations never get AVIF: Pillow writes animated AVIF only frame by frame
   through libavif at several seconds per second of video, and the renderer
   animates GIF and WebP outputs only; so an animation gets WebP when it is
   accepted (same animation, alpha kept, far cheaper to encode).
3. Otherwise the fallback every client decodes: GIF for an animated GIF,
   PNG for alpha or a lossless original (PNG, GIF, BMP, TIFF: graphics and
   screenshots stay sharp), JPEG for the rest.

A fallback is always served, never 406: an ``<img>`` can show nothing better.

The CloudFront Function (infra/cdn/viewer_request.js) applies the part of
the rule that needs no original: :func:`cdn_format`.  Both are tested
against one table (tests/support/accept_cases.json).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from chalicelib.imaging.formats import DEFAULT_OUTPUT  # plain data, no Pillow
from chalicelib.resize.grammar import OUTPUT_FORMATS, ResizeSpec

AVIF, WEBP, JPEG, PNG, GIF = "avif", "webp", "jpeg", "png", "gif"
# Preference on equal q: AVIF is about a fifth smaller than WebP for photos at equal quality.
MODERN = (AVIF, WEBP)
_MEDIA_TYPES = {f"image/{name}": name for name in MODERN}
_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")
# Originals whose pixels are exact: their fallback stays lossless.
LOSSLESS_SOURCES = frozenset({"PNG", "GIF", "BMP", "TIFF"})


@dataclass(frozen=True)
class Traits:
    """What the rule needs to know about an original."""

    format: str  # Pillow's name, as in imaging.Source
    alpha: bool = False
    animated: bool = False


def accepted(accept: str | None) -> dict[str, float]:
    """The q of AVIF and WebP where the header names them (wildcards never count)."""
    found: dict[str, float] = {}
    for item in (accept or "").split(","):
        media_type, *params = (part.strip() for part in item.split(";"))
        name = _MEDIA_TYPES.get(media_type.lower())
        if name is not None:
            found[name] = max(found.get(name, 0.0), _quality(params))
    return {name: q for name, q in found.items() if q > 0}


def _quality(params: list[str]) -> float:
    """``q=`` of one Accept item: 1 when absent, 0 when not an RFC 9110 qvalue."""
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            value = value.strip()
            return float(value) if _QVALUE.fullmatch(value) else 0.0
    return 1.0


def _best(q: dict[str, float], candidates: tuple[str, ...]) -> str | None:
    offered = [name for name in candidates if name in q]
    # max() keeps the first of equals: candidates are in preference order.
    return max(offered, key=lambda name: q[name]) if offered else None


def fallback(traits: Traits) -> str:
    """What a client that names neither AVIF nor WebP gets."""
    if traits.animated and traits.format == "GIF":
        return GIF
    if traits.alpha or traits.format in LOSSLESS_SOURCES:
        return PNG
    return JPEG


def negotiate(accept: str | None, traits: Traits) -> str:
    """The format a ``.auto`` request for this original gets."""
    candidates = (WEBP,) if traits.animated else MODERN
    return _best(accepted(accept), candidates) or fallback(traits)


def cdn_format(accept: str | None) -> str | None:
    """What the CDN may pick knowing only ``Accept`` (None: the API decides).

    AVIF when it wins for a still and WebP is accepted too (an animation
    asked for as AVIF is its WebP, through a stored redirect); WebP when it
    wins for stills and animations alike; otherwise only the original can say.
    """
    q = accepted(accept)
    best = _best(q, MODERN)
    if best == AVIF and WEBP not in q:
        return None
    return best


def candidates(traits: Traits) -> tuple[str, ...]:
    """Every format the rule can give this original, whatever the browser."""
    return (WEBP, fallback(traits)) if traits.animated else (AVIF, WEBP, fallback(traits))


def concrete(spec: ResizeSpec, name: str, source_format: str) -> ResizeSpec:
    """``spec`` (a ``.auto`` one) in format ``name``: no suffix when that is the original's own."""
    own = DEFAULT_OUTPUT.get(source_format)
    return replace(spec, output=None if name == own else OUTPUT_FORMATS[name], quality=None)


def auto_targets(spec: ResizeSpec) -> tuple[ResizeSpec, ...]:
    """Every concrete spelling a ``.auto`` spec can resolve to (for ALLOWED_SIZES)."""
    return (replace(spec, output=None), *(replace(spec, output=f) for f in OUTPUT_FORMATS.values()))
