"""Generated originals for crop tests: a detailed subject on a plain background, edge bands,
a marked point, each stored in any EXIF orientation (the picture as displayed is the same)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from tests.support import corpus

BACKGROUND = (70, 110, 160)  # plain, and coloured: chroma alone must not attract the crop
SUBJECT_SIDE = 0.3  # of the image's shorter side
# What exif_transpose does for each orientation, undone: the stored picture.
_STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
EDGE_COLOURS = {"w": (255, 0, 0), "e": (0, 0, 255), "n": (0, 255, 0), "s": (255, 255, 0)}
MARK = (255, 0, 255)
COMPARISON = Path(__file__).resolve().parents[2] / "docs" / "smart-crop.png"


def texture(side: int, seed: int = 21) -> Image.Image:
    """Detail: random coloured blocks of 2×2 pixels, the same for the same seed."""
    rng = random.Random(seed)
    half = max(1, side // 2)
    blocks = Image.frombytes("RGB", (half, half), rng.randbytes(half * half * 3))
    return blocks.resize((side, side), Image.Resampling.NEAREST)


def subject_box(size: tuple[int, int], where: str) -> tuple[int, int, int, int]:
    """The subject's square at ``where`` (a compass anchor, or "" for the centre)."""
    width, height = size
    side = round(min(size) * SUBJECT_SIDE)
    left = 0 if "w" in where else width - side if "e" in where else (width - side) // 2
    top = 0 if "n" in where else height - side if "s" in where else (height - side) // 2
    return (left, top, left + side, top + side)


def with_subject(size: tuple[int, int], where: str) -> Image.Image:
    """A plain background with a detailed square subject at ``where``."""
    image = Image.new("RGB", size, BACKGROUND)
    box = subject_box(size, where)
    image.paste(texture(box[2] - box[0]), box[:2])
    return image


def with_edge_bands(size: tuple[int, int], band: int) -> Image.Image:
    """Each edge painted a colour of its own (EDGE_COLOURS), ``band`` pixels deep."""
    width, height = size
    image = Image.new("RGB", size, (128, 128, 128))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, band - 1, height - 1), fill=EDGE_COLOURS["w"])
    draw.rectangle((width - band, 0, width - 1, height - 1), fill=EDGE_COLOURS["e"])
    draw.rectangle((band, 0, width - band - 1, band - 1), fill=EDGE_COLOURS["n"])
    draw.rectangle((band, height - band, width - band - 1, height - 1), fill=EDGE_COLOURS["s"])
    return image


def with_mark(size: tuple[int, int], point: tuple[float, float], radius: int) -> Image.Image:
    """A grey picture with a magenta disc at ``point`` (fractions of the picture)."""
    image = Image.new("RGB", size, (128, 128, 128))
    x, y = point[0] * size[0], point[1] * size[1]
    ImageDraw.Draw(image).ellipse((x - radius, y - radius, x + radius, y + radius), fill=MARK)
    return image


def stored(picture: Image.Image, fmt: str, orientation: int = 1, **options: Any) -> bytes:
    """``picture`` as a file that displays it: stored turned as ``orientation`` says."""
    turn = _STORED[orientation]
    exif = Image.Exif()
    if orientation != 1:
        exif[corpus.ORIENTATION] = orientation
    pixels = picture if turn is None else picture.transpose(turn)
    return corpus.encode(pixels, fmt, exif=exif.tobytes(), **options)


def subject_pixels(image: Image.Image, tolerance: int = 40) -> int:
    """Pixels that are not the background."""
    far = [
        1 if max(abs(a - b) for a, b in zip(pixel, BACKGROUND, strict=True)) > tolerance else 0
        for pixel in image.convert("RGB").get_flattened_data()
    ]
    return sum(far)


def marked(image: Image.Image) -> int:
    """Pixels of the mark (see with_mark)."""
    pixels = image.convert("RGB").get_flattened_data()
    return sum(1 for pixel in pixels if close(pixel, MARK))


def close(pixel: tuple[int, ...], colour: tuple[int, ...], tolerance: int = 60) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


def comparison() -> tuple[Image.Image, Image.Image, Image.Image]:
    """The picture docs/smart-crop.png shows, and its centre and smart 100×100 crops.

    The renders are imported here, not at the top: this module also builds originals
    for tests that never render.
    """
    from chalicelib.imaging import render
    from chalicelib.resize.grammar import parse_size

    picture = with_subject((800, 400), "sw")
    original = stored(picture, "PNG")
    centre, smart = (
        corpus.opened(render(original, parse_size(token, 4096)).body)
        for token in ("100x100-cover", "100x100-cover-smart")
    )
    return picture, centre, smart


def comparison_panel(centre: Image.Image, smart: Image.Image, picture: Image.Image) -> Image.Image:
    """The picture at 200×100, then the centre crop, then the smart one, 8 px apart."""
    panel = Image.new("RGB", (200 + 8 + 100 + 8 + 100, 100), (255, 255, 255))
    panel.paste(picture.resize((200, 100), Image.Resampling.LANCZOS), (0, 0))
    panel.paste(centre.convert("RGB"), (208, 0))
    panel.paste(smart.convert("RGB"), (316, 0))
    return panel


def panel_parts(panel: Image.Image) -> tuple[Image.Image, Image.Image]:
    """The centre and smart crops back out of a comparison panel."""
    return panel.crop((208, 0, 308, 100)), panel.crop((316, 0, 416, 100))


if __name__ == "__main__":  # python -m tests.support.scenes: rewrite docs/smart-crop.png
    shown, centre_crop, smart_crop = comparison()
    comparison_panel(centre_crop, smart_crop, shown).save(COMPARISON, optimize=True)
    print(f"wrote {COMPARISON}")
