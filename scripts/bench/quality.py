#!/usr/bin/env python3
"""How much quality a lossy output needs to look lossless, measured with SSIMULACRA 2.

For the 12 MP photo (scripts/bench/photos.py) rendered to a 1000 px wide
variant, each lossy output format is encoded at a ladder of qualities by
render() itself and scored against the same variant rendered losslessly
(PNG) with SSIMULACRA 2 (the ``ssimulacra2`` package, requirements-bench.txt):
90 and above is "visually lossless" on its scale (no visible difference side
by side at 1:1), 70 "high quality".  The table gives the score and the bytes
per pixel at each quality; the last lines name, per format, the lowest
quality that scores 90, next to the cap the service applies
(grammar.OUTPUT_FORMATS' max_quality): qualities above it only add bytes.

    python -m scripts.bench.quality [--quick] [--photos DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from ssimulacra2 import compute_ssimulacra2

from chalicelib.imaging import render
from chalicelib.resize.grammar import OUTPUT_FORMATS, parse_size
from scripts.bench import photos as photo_source
from scripts.bench.stack import stack_photo

BOX = "1000x"
QUALITIES = (50, 60, 70, 75, 80, 85, 90, 95, 100)
QUICK_QUALITIES = (85, 90, 95, 100)
VISUALLY_LOSSLESS = 90.0
LOSSY = ("jpeg", "webp", "avif")


def score(reference: bytes, distorted: bytes) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        original, candidate = Path(tmp) / "reference.png", Path(tmp) / "candidate"
        original.write_bytes(reference)
        candidate.write_bytes(distorted)
        return float(compute_ssimulacra2(str(original), str(candidate)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer qualities")
    photo_source.add_photos_argument(parser)
    args = parser.parse_args()
    qualities = QUICK_QUALITIES if args.quick else QUALITIES
    photo = stack_photo(photo_source.get_photos(photo_source.photos_dir_from(args.photos)))
    data = photo.path.read_bytes()
    reference = render(data, parse_size(f"{BOX}.png", 16384))
    pixels = reference.width * reference.height
    print(f"{photo.name} → {BOX} ({reference.width}×{reference.height}), against the PNG render")
    print("| format | quality | SSIMULACRA 2 | bytes/pixel |")
    print("|---|---|---|---|")
    lowest: dict[str, int | None] = dict.fromkeys(LOSSY)
    for extension in LOSSY:
        for quality in qualities:
            spec = replace(parse_size(f"{BOX}.{extension}", 16384), quality=quality)
            variant = render(data, spec)
            value = score(reference.body, variant.body)
            print(f"| {extension} | {quality} | {value:.1f} | {len(variant.body) / pixels:.3f} |")
            if value >= VISUALLY_LOSSLESS and lowest[extension] is None:
                lowest[extension] = quality
    for extension in LOSSY:
        output = OUTPUT_FORMATS[extension]
        print(
            f"{extension}: lowest quality scoring {VISUALLY_LOSSLESS:.0f}: {lowest[extension]}; "
            f"cap: {output.max_quality}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
