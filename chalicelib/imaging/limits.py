"""The imaging policy as plain data: settings build it without importing Pillow."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImagingLimits:
    """Policy the pipeline needs: a background, the animation budget, the decode limits."""

    background: tuple[int, int, int] = (255, 255, 255)
    max_frames: int = 300
    # frames × the larger of the original's canvas (every frame's extent) and the output canvas
    max_animation_pixels: int = 50_000_000
    max_source_pixels: int = 60_000_000  # checked from the header, before decoding
    max_render_bytes: int = 640 * 2**20  # the memory model's estimate of one render's peak
