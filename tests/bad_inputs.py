"""Bad originals and bad requests, as one table for the test client and the real stack."""

from __future__ import annotations

import struct
import zlib

from tests import corpus


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A tiny PNG whose header declares width×height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def originals() -> dict[str, bytes]:
    """What the bucket holds before the bad requests are made."""
    jpeg = corpus.jpeg((400, 300))
    return {
        "bad/ok.jpg": jpeg,
        "bad/notimage.txt": b"<html>hello</html>",
        "bad/empty.jpg": b"",
        "bad/truncated.jpg": corpus.jpeg((1600, 1200))[:4000],
        "bad/bomb.png": png_bomb(),
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
    ("200x.jpeg/bad/ok.jpg", 400, "non_canonical_size"),
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
)
