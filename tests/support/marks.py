"""Watermarks for tests: generated mark files, and finding a mark by comparing renders.

A mark is found by pixel comparison: the marked render against the unmarked
render of the same spec, frame by frame.  Where they differ by more than a
threshold is where the mark went.
"""

from __future__ import annotations

from io import BytesIO

from PIL import Image, ImageChops, ImageDraw

from tests.support import corpus

MAGENTA = (255, 0, 255)
# A channel differing by more than this is the mark, not an encoder's noise.
THRESHOLD = 48
# Lossy encoders spread a change over their blocks (JPEG's 16×16 with chroma subsampling).
LOSSY_SLACK = 16

Box = tuple[int, int, int, int]  # left, top, right, bottom (exclusive), as Pillow's getbbox


def mark_png(
    size: tuple[int, int] = (200, 100),
    colour: tuple[int, int, int] = MAGENTA,
    *,
    transparent_left: bool = False,
) -> bytes:
    """A solid mark with full alpha; ``transparent_left``: its left half fully transparent."""
    image = Image.new("RGBA", size, (*colour, 255))
    if transparent_left:
        ImageDraw.Draw(image).rectangle((0, 0, size[0] // 2 - 1, size[1] - 1), fill=(0, 0, 0, 0))
    return corpus.encode(image, "PNG")


def frames(body: bytes) -> list[Image.Image]:
    """Every frame of an encoded output, as RGBA (16-bit grey scaled to 8 bits)."""
    with Image.open(BytesIO(body)) as image:
        result = []
        for index in range(getattr(image, "n_frames", 1)):
            image.seek(index)
            frame = corpus.eight_bit(image) if image.mode.startswith("I") else image
            result.append(frame.convert("RGBA"))
        return result


def difference_box(marked: Image.Image, unmarked: Image.Image) -> Box | None:
    """Where two frames of the same size differ by more than THRESHOLD in any channel."""
    assert marked.size == unmarked.size
    difference = ImageChops.difference(marked.convert("RGBA"), unmarked.convert("RGBA"))
    strong = [
        band.point(lambda value: 255 if value > THRESHOLD else 0) for band in difference.split()
    ]
    combined = strong[0]
    for band in strong[1:]:
        combined = ImageChops.lighter(combined, band)
    return combined.getbbox()


def _over_threshold(value: int) -> int:
    return 255 if value > THRESHOLD else 0


def expected_box(
    content: Box,
    anchor: str,
    mark: tuple[int, int],
    width: float = 0.25,
    margin: float = 0.03,
) -> Box:
    """Where a mark of ``mark`` size should land in ``content`` (the test's own arithmetic)."""
    left, top, right, bottom = content
    content_width, content_height = right - left, bottom - top
    gap = round(margin * min(content_width, content_height))
    scale = min(
        width * content_width / mark[0],
        (content_width - 2 * gap) / mark[0],
        (content_height - 2 * gap) / mark[1],
    )
    mark_width, mark_height = round(mark[0] * scale), round(mark[1] * scale)
    if "w" in anchor:
        x = left + gap
    elif "e" in anchor:
        x = right - gap - mark_width
    else:
        x = left + (content_width - mark_width) // 2
    if anchor.startswith("n"):
        y = top + gap
    elif anchor.startswith("s"):
        y = bottom - gap - mark_height
    else:
        y = top + (content_height - mark_height) // 2
    return x, y, x + mark_width, y + mark_height


def grown(box: Box, by: int) -> Box:
    return box[0] - by, box[1] - by, box[2] + by, box[3] + by


def inside(inner: Box, outer: Box) -> bool:
    return (
        inner[0] >= outer[0]
        and inner[1] >= outer[1]
        and inner[2] <= outer[2]
        and inner[3] <= outer[3]
    )
