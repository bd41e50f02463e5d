#!/usr/bin/env python3
"""Bytes per view: what each format costs a browser at equal looks, and what it costs to encode.

For three crops of the bench photo (scripts/bench/photos.py) at 320, 640 and
1280 px wide, each lossy output is encoded at the service's defaults
(grammar.OUTPUT_FORMATS' quality, encoders.SAVE_OPTIONS' effort) from the
same resized frame, and so is libvips' own encode at its defaults
(pyvips-binary); each is scored with SSIMULACRA 2 against the lossless
frame (90: visually lossless, 70: high quality) and its encode timed (CPU,
median).  The last lines are the mean ratio of what a current Chromium is
sent for a ``.auto`` URL (resize/negotiate.py) to the JPEG it got before,
and the AVIF encode time at 640 px.

    python -m scripts.bench.bytes_per_view [--quick] [--photos DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from io import BytesIO

import pyvips
from PIL import Image

from chalicelib.imaging import ImagingLimits, render
from chalicelib.imaging.encoders import SAVE_OPTIONS, encode
from chalicelib.resize.grammar import OUTPUT_FORMATS, parse_size
from chalicelib.resize.negotiate import Traits, negotiate
from scripts.bench import photos as photo_source
from scripts.bench.quality import score
from scripts.bench.stack import stack_photo
from scripts.bench.timing import write_summary

WIDTHS = (320, 640, 1280)
LOSSY = ("jpeg", "webp", "avif")
CHROMIUM_ACCEPT = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
CROPS = ("left", "centre", "right")


def crops(photo: Image.Image, count: int) -> list[tuple[str, bytes]]:
    """Square-ish thirds of a wide photo, as lossless PNGs: different content, one licence."""
    width, height = photo.size
    side = min(height, width // 3)
    found = []
    for index, name in enumerate(CROPS[:count]):
        left = index * (width - side) // 2
        buffer = BytesIO()
        photo.crop((left, 0, left + side, side)).save(buffer, "PNG", compress_level=1)
        found.append((name, buffer.getvalue()))
    return found


def cpu_ms(call: Callable[[], bytes], rounds: int) -> tuple[bytes, float]:
    """The output of ``call`` and its median CPU time in ms."""
    times, out = [], b""
    for _ in range(rounds):
        start = time.process_time()
        out = call()
        times.append((time.process_time() - start) * 1000)
    return out, statistics.median(times)


def ours(frame: Image.Image, extension: str) -> Callable[[], bytes]:
    spec = parse_size(f"{frame.size[0]}x.{extension}", 16384)
    background = ImagingLimits().background
    return lambda: encode([frame], OUTPUT_FORMATS[extension], spec, background).body


def libvips(png: bytes, extension: str) -> Callable[[], bytes]:
    image = pyvips.Image.new_from_buffer(png, "")
    suffix = {"jpeg": ".jpg", "webp": ".webp", "avif": ".avif"}[extension]
    return lambda: image.write_to_buffer(suffix)  # libvips' own defaults


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one crop, one round")
    photo_source.add_photos_argument(parser)
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    photo = stack_photo(photo_source.get_photos(photo_source.photos_dir_from(args.photos)))
    with Image.open(photo.path) as opened:
        sources = crops(opened.convert("RGB"), 1 if args.quick else 3)
    print(f"Bytes per view: {photo.name}, {len(sources)} crop(s), SSIMULACRA 2 against lossless")
    formats = [OUTPUT_FORMATS[name] for name in LOSSY]
    defaults = [f"{f.name} q{f.default_quality} {SAVE_OPTIONS[f.pillow]}" for f in formats]
    print("defaults: " + ", ".join(defaults))
    print("| crop | width | format | bytes | score | encode ms | libvips bytes | score | ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    auto_ratios: list[float] = []
    avif_640: list[float] = []
    traits = Traits("JPEG", alpha=False, animated=False)
    chosen = negotiate(CHROMIUM_ACCEPT, traits)
    for name, original in sources:
        for width in WIDTHS:
            reference = render(original, parse_size(f"{width}x.png", 16384)).body
            with Image.open(BytesIO(reference)) as decoded:
                frame = decoded.convert("RGB")
            sizes: dict[str, int] = {}
            for extension in LOSSY:
                body, ms = cpu_ms(ours(frame, extension), rounds)
                theirs, vips_ms = cpu_ms(libvips(reference, extension), rounds)
                sizes[extension] = len(body)
                if extension == "avif" and width == 640:
                    avif_640.append(ms)
                print(
                    f"| {name} | {width} | {extension} | {len(body)} | "
                    f"{score(reference, body):.1f} | {ms:.1f} | {len(theirs)} | "
                    f"{score(reference, theirs):.1f} | {vips_ms:.1f} |"
                )
            auto_ratios.append(sizes.get(chosen, sizes["jpeg"]) / sizes["jpeg"])
    lines = [
        f"auto bytes vs jpeg: {statistics.mean(auto_ratios):.2f}",
        f"avif encode ms at 640 px: {statistics.median(avif_640):.0f}",
    ]
    print("\n".join(lines))
    write_summary("views", lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
