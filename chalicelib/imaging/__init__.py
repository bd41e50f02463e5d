"""Imaging: original bytes in, variant bytes out; the only package that imports Pillow.

Modules, cheapest first: ``limits`` (the policy as plain data), ``formats``
and ``geometry`` (pure), ``containers`` (walks a file's structure before any
decoder runs), ``memory`` (the measured model of a render's peak),
``pipeline`` (decode, orient, colour, resize), ``encoders``, ``webp`` (still
WebP scaled by libwebp), ``watermark`` (a mark as plain data, and where it
sits), ``overlay`` (marks composited onto outputs) and ``facts`` (what an
original is).

The names below load their module, and so Pillow, on first use: a request
refused before there is an original to look at never imports it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.imaging.encoders import Rendered
    from chalicelib.imaging.facts import ImageFacts, describe
    from chalicelib.imaging.formats import CONTENT_TYPES
    from chalicelib.imaging.geometry import canonical_spec, fitted_size, plan
    from chalicelib.imaging.limits import ImagingLimits
    from chalicelib.imaging.pipeline import SharedDecode, Source, inspect, render
    from chalicelib.imaging.watermark import Watermark, check_watermark

__all__ = [
    "CONTENT_TYPES",
    "ImageFacts",
    "ImagingLimits",
    "Rendered",
    "SharedDecode",
    "Source",
    "Watermark",
    "canonical_spec",
    "check_watermark",
    "describe",
    "fitted_size",
    "inspect",
    "plan",
    "render",
]

_HOMES = {
    "CONTENT_TYPES": "formats",
    "ImageFacts": "facts",
    "ImagingLimits": "limits",
    "Rendered": "encoders",
    "SharedDecode": "pipeline",
    "Source": "pipeline",
    "Watermark": "watermark",
    "canonical_spec": "geometry",
    "check_watermark": "watermark",
    "describe": "facts",
    "fitted_size": "geometry",
    "inspect": "pipeline",
    "plan": "geometry",
    "render": "pipeline",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
