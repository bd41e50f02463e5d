"""Bad originals and bad requests, as one table for the test client and the real stack."""

from __future__ import annotations

from chalicelib.imaging import containers
from scripts.bench import bomb_files as bombs
from tests.support import corpus


def originals() -> dict[str, bytes]:
    """What the bucket holds before the bad requests are made."""
    jpeg = corpus.jpeg((400, 300))
    return {
        "bad/ok.jpg": jpeg,
        "bad/notimage.txt": b"<html>hello</html>",
        "bad/empty.jpg": b"",
        "bad/truncated.jpg": corpus.jpeg((1600, 1200))[:4000],
        "bad/bomb.png": bombs.png_bomb(),
        # Resource bombs, each just past the cap it crosses (tests/bombs.py).
        "bad/canvas.webp": bombs.webp_animation((8000, 8000)),
        "bad/scans.jpg": bombs.jpeg_progressive(64, 1, containers.MAX_JPEG_SCANS),
        "bad/markers.jpg": bombs.jpeg_many_markers(containers.MAX_JPEG_SEGMENTS),
        "bad/chunks.png": bombs.png_many_chunks(containers.MAX_PNG_CHUNKS),
        "bad/extensions.gif": bombs.gif_many_extensions(containers.MAX_GIF_BLOCKS),
        "bad/strips.tif": bombs.tiff_many_strips(containers.MAX_TIFF_VALUES // 2),
        "bad/rle.bmp": bombs.bmp_rle4(4001),
        "bad/image.ppm": corpus.in_format("PPM", (64, 64)),
        "bad/image.eps": corpus.in_format("EPS", (64, 64)),
    }


FULLWIDTH_300 = "%EF%BC%93%EF%BC%90%EF%BC%90"  # fullwidth "300", percent-encoded

# (path after /resize/, status, code)
BAD_REQUESTS: tuple[tuple[str, int, str], ...] = (
    ("300X300/bad/ok.jpg", 400, "non_canonical_size"),
    ("0300x300/bad/ok.jpg", 400, "non_canonical_size"),
    (f"{FULLWIDTH_300}x/bad/ok.jpg", 400, "non_canonical_size"),
    ("300%20x300/bad/ok.jpg", 400, "non_canonical_size"),
    ("300x300-inside/bad/ok.jpg", 400, "non_canonical_size"),
    ("200x-q70.auto/bad/ok.jpg", 400, "invalid_size"),
    ("200x.AUTO/bad/ok.jpg", 400, "non_canonical_size"),
    ("1e3x/bad/ok.jpg", 400, "invalid_size"),
    ("-300x/bad/ok.jpg", 400, "invalid_size"),
    ("0x0/bad/ok.jpg", 400, "invalid_size"),
    ("99999999999x/bad/ok.jpg", 400, "invalid_size"),
    ("300x300.gif/bad/ok.jpg", 400, "invalid_size"),
    ("300x-cover/bad/ok.jpg", 400, "invalid_size"),
    ("300x300%00/bad/ok.jpg", 400, "invalid_size"),
    ("%20" * 400 + "x" + "%20" * 400 + "%21/bad/ok.jpg", 400, "invalid_size"),  # once a ReDoS
    ("300x/bad/%2E%2E/ok.jpg", 400, "invalid_key"),
    ("300x/bad/%2E/ok.jpg", 400, "invalid_key"),
    ("300x/bad//ok.jpg", 400, "invalid_key"),
    ("300x/bad/ok%00.jpg", 400, "invalid_key"),
    ("300x/bad/ok%0A.jpg", 400, "invalid_key"),
    ("300x/bad/%FF.jpg", 400, "invalid_key"),
    ("300x/bad/" + "a" * 1100, 400, "invalid_key"),
    ("300x/_variants/bad/ok.jpg", 400, "invalid_key"),
    ("300x/300x300/bad/ok.jpg", 400, "variant_of_variant"),
    ("300x/bad/missing.jpg", 404, "original_not_found"),
    ("300x/bad/notimage.txt", 415, "unsupported_format"),
    ("300x/bad/image.ppm", 415, "unsupported_format"),
    ("300x/bad/image.eps", 415, "unsupported_format"),
    ("300x/bad/empty.jpg", 422, "empty_original"),
    ("300x/bad/truncated.jpg", 422, "invalid_image"),
    ("300x/bad/bomb.png", 413, "original_too_many_pixels"),
    ("300x/bad/canvas.webp", 413, "original_too_many_pixels"),
    ("300x/bad/rle.bmp", 413, "original_too_many_pixels"),
    ("300x/bad/scans.jpg", 422, "original_too_complex"),
    ("300x/bad/markers.jpg", 422, "original_too_complex"),
    ("300x/bad/chunks.png", 422, "original_too_complex"),
    ("300x/bad/extensions.gif", 422, "original_too_complex"),
    ("300x/bad/strips.tif", 422, "original_too_complex"),
)
