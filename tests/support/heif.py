"""HEIC test originals, encoded by x265 through pillow-heif, and a Display P3 ICC profile."""

from __future__ import annotations

import struct

from PIL import Image, ImageCms

from scripts.bench.bomb_files import heic

# Display P3's colorants, adapted to D50 (as in Apple's profile); its curve is sRGB's.
DISPLAY_P3_COLORANTS = {
    b"rXYZ": (0.515121, 0.241196, -0.001053),
    b"gXYZ": (0.291977, 0.692245, 0.041885),
    b"bXYZ": (0.157104, 0.066574, 0.784073),
}


def display_p3_profile() -> bytes:
    """LittleCMS's sRGB profile given Display P3's colorants and name."""
    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    for index in range(struct.unpack_from(">I", profile, 128)[0]):
        signature, offset, _ = struct.unpack_from(">4sII", profile, 132 + 12 * index)
        if signature in DISPLAY_P3_COLORANTS:
            fixed = [round(v * 65536) for v in DISPLAY_P3_COLORANTS[signature]]
            struct.pack_into(">iii", profile, offset + 8, *fixed)
    name = "sRGB".encode("utf-16-be")
    at = profile.index(name)
    profile[at : at + len(name)] = "DP3 ".encode("utf-16-be")
    return bytes(profile)


def quadrants(size: tuple[int, int]) -> Image.Image:
    """Blue top-left quarter on red: where the stored top-left ends up shows the turn."""
    picture = Image.new("RGB", size, (255, 0, 0))
    picture.paste((0, 0, 255), (0, 0, size[0] // 2, size[1] // 2))
    return picture


def heic_with_exif(
    orientation: int, *, make: str = "Apple", taken: str = "2026:05:04 10:11:12"
) -> bytes:
    """A 64×48 landscape quadrants HEIC whose EXIF says ``orientation`` (pillow-heif writes it
    as irot/imir, as phones do), a camera and a time."""
    exif = Image.Exif()
    exif[0x0112], exif[0x010F], exif[0x0110], exif[0x0132] = orientation, make, "iPhone", taken
    return heic(picture=quadrants((64, 48)), exif=exif.tobytes(), quality=90)


def without_box(data: bytes, kind: bytes) -> bytes:
    """``data`` with every ``kind`` property renamed ``free`` (readers skip it)."""
    return data.replace(kind, b"free")
