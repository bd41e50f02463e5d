#!/usr/bin/env python3
"""What a watermark costs a miss: the render with one against the same render without.

The 12 MP JPEG (scripts/bench/photos.py; with ``--photos DIR`` every JPEG in
DIR) to 300 and 1000 px wide, each the whole miss render
(``chalicelib.imaging.render``), unmarked and with a generated mark at the
Watermark defaults (bottom right, a quarter of the width, opacity 0.6).  Timed
interleaved in one process, CPU time per call, medians over rounds
(scripts/bench/timing.py).  A mark is decoded once per process and scaled
once per output size, both kept: the timed renders reuse them, and what the
first output of a size pays on top, scaling the mark (Lanczos, opacity), is
timed apart, and so is compositing it onto an output-sized frame (the part
every marked render pays, small enough to vanish in the renders' noise);
so is the mark's first decode in a process (the walk, the checks, the
decode), on fresh bytes each round.  The closing line: the worst
ratio of marked to unmarked per size.

    python -m scripts.bench.watermarks [--quick] [--photos DIR]
"""

from __future__ import annotations

import sys
from functools import partial
from io import BytesIO

from PIL import Image, ImageDraw, PngImagePlugin

from chalicelib import imaging
from chalicelib.imaging import overlay
from chalicelib.resize.grammar import parse_size
from scripts.bench import photos as photo_source
from scripts.bench.timing import CPU, interleaved, median, write_summary

TOKENS = ("300x", "1000x")
ROUNDS = 11
QUICK_ROUNDS = 3
MAX_DIMENSION = 16384
MARK_SIZE = (600, 200)  # scaled down to 250 px wide at 1000 px, 75 at 300


def sample_mark(label: str = "") -> bytes:
    """A PNG mark with soft alpha: a translucent plate, an opaque frame and bars.

    ``label`` goes into a text chunk: the same pixels, different bytes (a cache miss).
    """
    width, height = MARK_SIZE
    image = Image.new("RGBA", MARK_SIZE, (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, width - 1, height - 1), radius=30, fill=(20, 20, 20, 110))
    draw.rounded_rectangle((8, 8, width - 9, height - 9), radius=24, outline=(255, 255, 255, 255))
    for index in range(8):
        left = 40 + index * 66
        draw.rectangle((left, 50, left + 40, height - 50), fill=(255, 255, 255, 220))
    info = PngImagePlugin.PngInfo()
    info.add_text("label", label)
    buffer = BytesIO()
    image.save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def measure(data: bytes, token: str, mark: imaging.Watermark, rounds: int) -> dict[str, float]:
    """Median CPU ms of the render of ``data`` to ``token`` without and with ``mark``, and
    of scaling the mark for that output and of compositing it."""
    spec = parse_size(token, MAX_DIMENSION)
    decoded = overlay.Mark.of(mark, imaging.ImagingLimits())
    geometry = imaging.plan(imaging.inspect(data, spec).size, spec)
    stamp = decoded.stamp(geometry)
    if stamp is None:
        raise ValueError(f"{token}: the output is below the mark's min_size")
    frame = Image.new("RGB", geometry.canvas, (128, 128, 128))  # marked in place, as render does
    calls = {
        "plain": partial(imaging.render, data, spec),
        "marked": partial(imaging.render, data, spec, watermark=mark),
        "scaling": partial(overlay.scaled, decoded.image, stamp.image.size, mark.opacity),
        "compositing": partial(stamp.onto, frame),
    }
    samples = interleaved(calls, rounds, clock=CPU)
    return {name: median(values) for name, values in samples.items()}


def first_decode_ms(rounds: int) -> float:
    """Median CPU ms of a mark's first decode in a process (its checks included)."""
    fresh = iter(range(10**9))

    def decode() -> object:
        return imaging.check_watermark(sample_mark(str(next(fresh))))

    return median(interleaved({"decode": decode}, rounds, clock=CPU)["decode"])


def main() -> int:
    originals, rounds = photo_source.photos_and_rounds_or_exit(
        "Time a watermarked render against the unmarked one.", ROUNDS, QUICK_ROUNDS
    )
    jpegs = [
        photo
        for photo in originals
        if photo.path.suffix.lower() in photo_source.JPEG_SUFFIXES and photo.name != "jpeg-20mp"
    ]
    if not jpegs:
        print("bench: no JPEG originals", file=sys.stderr)
        return 1
    mark = imaging.Watermark(sample_mark())
    print("| case | size | unmarked ms | watermarked ms | ratio | scaling ms | compositing ms |")
    print("|---|---|---|---|---|---|---|")
    worst = dict.fromkeys(TOKENS, 0.0)
    for photo in jpegs:
        data = photo.path.read_bytes()
        for token in TOKENS:
            ms = measure(data, token, mark, rounds)
            ratio = ms["marked"] / ms["plain"]
            worst[token] = max(worst[token], ratio)
            plain, marked = ms["plain"], ms["marked"]
            print(
                f"| {photo.name} | {token} | {plain:.1f} | {marked:.1f} | {ratio:.2f} "
                f"| {ms['scaling']:.1f} | {ms['compositing']:.2f} |"
            )
    decode = first_decode_ms(rounds)
    print(f"\na {MARK_SIZE[0]}×{MARK_SIZE[1]} mark's first decode in a process: {decode:.1f} ms")
    closing = [
        "watermarked miss render to unmarked (12 MP JPEG): "
        + ", ".join(f"{token.rstrip('x')} px {worst[token]:.2f}" for token in TOKENS)
    ]
    write_summary("watermarks", closing)
    print("\n".join(closing))
    return 0


if __name__ == "__main__":
    sys.exit(main())
