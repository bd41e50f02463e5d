"""ICC profiles for pictures that name their colour space by code (HEIF's ``nclx``), not by profile.

A HEIC may describe its colours with an ``nclx`` box (ITU-T H.273 code points)
instead of an embedded ICC profile: Display P3 is colour_primaries 12 with the
sRGB transfer curve (transfer_characteristics 13).  The pipeline converts ICC
profiles to sRGB (pipeline.to_srgb); for such a box it is given a matrix/TRC
profile built here: LittleCMS's own sRGB profile (its curve is the sRGB curve)
with the primaries' colorants, adapted to the ICC's D50 white with the Bradford
transform, written in.  Primaries that are sRGB's, unknown ones and other
curves (BT.2020 with PQ or HLG: HDR) get None and are left as decoded.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from functools import lru_cache

from PIL import ImageCms

Matrix = tuple[tuple[float, float, float], ...]

SRGB_TRANSFER = 13  # H.273 transfer_characteristics: the sRGB curve (IEC 61966-2-1)
D65 = (0.3127, 0.3290)
# H.273 colour_primaries: red, green, blue and white chromaticities (x, y), with a
# four-character name written over the profile's "sRGB" (to_srgb leaves sRGB alone).
PRIMARIES: dict[int, tuple[tuple[tuple[float, float], ...], str]] = {
    9: (((0.708, 0.292), (0.170, 0.797), (0.131, 0.046), D65), "2020"),  # BT.2020
    12: (((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), D65), "DP3 "),  # Display P3
}
ICC_WHITE = (0.9642, 1.0, 0.8249)  # D50, the ICC's connection space
BRADFORD: Matrix = (
    (0.8951, 0.2664, -0.1614),
    (-0.7502, 1.7135, 0.0367),
    (0.0389, -0.0685, 1.0296),
)
COLORANT_TAGS = (b"rXYZ", b"gXYZ", b"bXYZ")


def nclx_icc(nclx: Mapping[str, int] | None) -> bytes | None:
    """An ICC profile for pillow-heif's ``info["nclx_profile"]``, or None when none is needed
    (sRGB's primaries) or known (other primaries or curves)."""
    if not nclx or nclx.get("transfer_characteristics") != SRGB_TRANSFER:
        return None
    primaries = nclx.get("color_primaries")
    return profile_for(primaries) if primaries in PRIMARIES else None


@lru_cache(maxsize=len(PRIMARIES))
def profile_for(primaries: int) -> bytes:
    """LittleCMS's sRGB profile with ``primaries``' D50-adapted colorants and name."""
    chromaticities, name = PRIMARIES[primaries]
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    matrix = d50_matrix(chromaticities)
    for index in range(struct.unpack_from(">I", profile, 128)[0]):
        signature, offset, _ = struct.unpack_from(">4sII", profile, 132 + 12 * index)
        if signature in COLORANT_TAGS:
            column = COLORANT_TAGS.index(signature)
            fixed = [round(matrix[row][column] * 65536) for row in range(3)]
            struct.pack_into(">iii", profile, offset + 8, *fixed)
    old = "sRGB".encode("utf-16-be")
    at = profile.index(old)
    profile[at : at + len(old)] = name.encode("utf-16-be")
    return bytes(profile)


def d50_matrix(chromaticities: Sequence[tuple[float, float]]) -> Matrix:
    """RGB → XYZ for red, green, blue and white (x, y), adapted to D50 (Bradford)."""
    *rgb, white = chromaticities
    columns = _transpose(tuple(_xyz(point) for point in rgb))
    scale = _solve(columns, _xyz(white))
    to_xyz = tuple(tuple(row[i] * scale[i] for i in range(3)) for row in columns)
    source_cone = _apply(BRADFORD, _xyz(white))
    target_cone = _apply(BRADFORD, ICC_WHITE)
    gains = tuple(t / s for t, s in zip(target_cone, source_cone, strict=True))
    cone_scaled = tuple(tuple(gains[r] * v for v in BRADFORD[r]) for r in range(3))
    adapt = _product(_inverse(BRADFORD), cone_scaled)
    return _product(adapt, to_xyz)


def _xyz(point: tuple[float, float]) -> tuple[float, float, float]:
    x, y = point
    return x / y, 1.0, (1 - x - y) / y


def _transpose(matrix: Sequence[Sequence[float]]) -> Matrix:
    return tuple((matrix[0][i], matrix[1][i], matrix[2][i]) for i in range(3))


def _apply(matrix: Matrix, vector: Sequence[float]) -> tuple[float, float, float]:
    a, b, c = (sum(row[i] * vector[i] for i in range(3)) for row in matrix)
    return a, b, c


def _product(left: Matrix, right: Matrix) -> Matrix:
    return tuple(
        tuple(sum(left[r][k] * right[k][c] for k in range(3)) for c in range(3)) for r in range(3)
    )


def _inverse(m: Matrix) -> Matrix:
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    cofactors = (
        (e * i - f * h, c * h - b * i, b * f - c * e),
        (f * g - d * i, a * i - c * g, c * d - a * f),
        (d * h - e * g, b * g - a * h, a * e - b * d),
    )
    return tuple(tuple(v / det for v in row) for row in cofactors)


def _solve(m: Matrix, vector: Sequence[float]) -> tuple[float, float, float]:
    return _apply(_inverse(m), vector)
