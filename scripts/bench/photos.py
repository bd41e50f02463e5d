#!/usr/bin/env python3
"""Large real photos for the benchmarks, fetched at bench time and never committed.

By default the source is "Kleiber" by Lukas Baubkus (6028×3391, CC-BY-SA-3.0),
shipped in Debian's ``lomiri-wallpapers-20.04`` package.  Its licence asks for
attribution and share-alike, so the repository carries no copy: this script
downloads the package with ``apt-get download``, unpacks it with ``dpkg -x`` and
writes the photo plus images derived from it into ``.local/photos/`` (ignored
by git).  Synthetic gradients compress and decode unlike photos, hence the effort.

With ``--photos DIR`` (or ``BENCH_PHOTOS=DIR``) the JPEGs in DIR are used as
they are instead, and nothing is downloaded.

    python -m scripts.bench.photos [--photos DIR]     # fetch or list, print attribution
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from chalicelib.imaging import heif

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = ROOT / ".local" / "photos"
PACKAGE = "lomiri-wallpapers-20.04"
PACKAGE_MEMBER = "usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg"
ATTRIBUTION = (
    '"Kleiber" by Lukas Baubkus, CC-BY-SA-3.0, from Debian package '
    f"{PACKAGE}; the 12 MP JPEG, PNG, WebP, GIF and HEIC are derived from it "
    "(cropped, resized, re-encoded by scripts/bench/photos.py)."
)
JPEG_SUFFIXES = (".jpg", ".jpeg")


class PhotosUnavailable(RuntimeError):
    """The default photo cannot be fetched here; the message says what to do instead."""


@dataclass(frozen=True)
class Photo:
    name: str
    path: Path
    note: str


@dataclass(frozen=True)
class _Derived:
    name: str
    filename: str
    note: str
    make: Callable[[Path, Image.Image], None]


def photos_dir_from(argument: str | None) -> Path | None:
    """The user's photo directory: the command-line argument, else ``BENCH_PHOTOS``."""
    chosen = argument or os.environ.get("BENCH_PHOTOS")
    return Path(chosen) if chosen else None


def add_photos_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--photos",
        metavar="DIR",
        help="benchmark the JPEGs in DIR instead of the Debian photo (env BENCH_PHOTOS)",
    )


def photos_and_rounds(description: str, rounds: int, quick_rounds: int) -> tuple[list[Photo], int]:
    """A timing benchmark's command line (``--quick``, ``--photos DIR``): its photos and rounds.

    Raises PhotosUnavailable, saying why, when there are no photos to time.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=f"{quick_rounds} rounds, not {rounds}")
    add_photos_argument(parser)
    args = parser.parse_args()
    return get_photos(photos_dir_from(args.photos)), quick_rounds if args.quick else rounds


def photos_and_rounds_or_exit(
    description: str, rounds: int, quick_rounds: int
) -> tuple[list[Photo], int]:
    """photos_and_rounds; without photos to time, exit 1 once stderr has said why."""
    try:
        return photos_and_rounds(description, rounds, quick_rounds)
    except PhotosUnavailable as err:
        print(f"bench: {err}", file=sys.stderr)
        raise SystemExit(1) from err


def get_photos(user_dir: Path | None = None, cache_dir: Path = DEFAULT_DIR) -> list[Photo]:
    """The user's JPEGs when a directory is given, else the Debian photo and its derivatives."""
    if user_dir is not None:
        return user_photos(user_dir)
    return default_photos(cache_dir)


def user_photos(directory: Path) -> list[Photo]:
    if not directory.is_dir():
        raise PhotosUnavailable(f"{directory} is not a directory")
    found = sorted(p for p in directory.iterdir() if p.suffix.lower() in JPEG_SUFFIXES)
    if not found:
        raise PhotosUnavailable(f"no .jpg/.jpeg files in {directory}")
    return [Photo(f"jpeg-{p.stem}", p, "your photo") for p in found]


def default_photos(cache_dir: Path) -> list[Photo]:
    """Fetch the photo once, derive the other originals once; later runs reuse the files."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    source = cache_dir / "kleiber-20mp.jpg"
    if not source.exists():
        fetch_debian_photo(source)
    result = [Photo("jpeg-20mp", source, "Kleiber as shipped, 6028×3391")]
    pending = [d for d in DERIVED if not (cache_dir / d.filename).exists()]
    if pending:
        with Image.open(source) as photo:
            photo.load()
            for derived in pending:
                _write_atomically(cache_dir / derived.filename, derived.make, photo)
    result += [Photo(d.name, cache_dir / d.filename, d.note) for d in DERIVED]
    return result


def fetch_debian_photo(destination: Path) -> None:
    """apt-get download + dpkg -x in a temporary directory: no root, nothing installed."""
    missing = [tool for tool in ("apt-get", "dpkg") if shutil.which(tool) is None]
    if missing:
        raise PhotosUnavailable(
            f"{' and '.join(missing)} not found, so the Debian photo cannot be fetched; "
            "pass your own large JPEGs instead: --photos DIR (or BENCH_PHOTOS=DIR)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        _download_package(work)
        package = next(work.glob(f"{PACKAGE}_*.deb"))
        _run(["dpkg", "-x", str(package), str(work / "root")], work)
        shutil.copyfile(work / "root" / PACKAGE_MEMBER, destination)


def _download_package(work: Path) -> None:
    try:
        _run(["apt-get", "download", PACKAGE], work)
    except PhotosUnavailable:
        # A fresh container often has empty package lists; refresh them once and retry.
        _run(["apt-get", "update"], work)
        _run(["apt-get", "download", PACKAGE], work)


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PhotosUnavailable(
            f"`{' '.join(command)}` failed ({result.returncode}): {result.stderr.strip()[-500:]}\n"
            "pass your own large JPEGs instead: --photos DIR (or BENCH_PHOTOS=DIR)"
        )


def _write_atomically(
    path: Path, make: Callable[[Path, Image.Image], None], photo: Image.Image
) -> None:
    # An interrupted run must not leave a half-written file that later runs take as cached.
    partial = path.with_name(f".{path.name}.partial")
    make(partial, photo)
    partial.replace(path)


def twelve_megapixels(photo: Image.Image) -> Image.Image:
    """4000×3000: the centre 4:3 crop of the 16:9 photo, downscaled."""
    width, height = photo.size
    crop_width = min(width, height * 4 // 3)
    left = (width - crop_width) // 2
    box = (left, 0, left + crop_width, crop_width * 3 // 4)
    return photo.resize((4000, 3000), Image.Resampling.LANCZOS, box=box)


def _save_jpeg_12mp(path: Path, photo: Image.Image) -> None:
    twelve_megapixels(photo).save(path, "JPEG", quality=90)


def _save_webp_12mp(path: Path, photo: Image.Image) -> None:
    twelve_megapixels(photo).save(path, "WEBP", quality=80)


def _save_heic_12mp(path: Path, photo: Image.Image) -> None:
    """4000×3000 in 512² tiles, as phones store it; x265's fastest preset (the default takes
    minutes here)."""
    heif.register_opener()
    twelve_megapixels(photo).save(
        path, "HEIF", quality=80, tile_size=512, enc_params={"preset": "ultrafast"}
    )


def _save_png_rgba(path: Path, photo: Image.Image) -> None:
    """2000×2000 centre square with a radial alpha: opaque centre fading to clear corners."""
    width, height = photo.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = photo.resize(
        (2000, 2000), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side)
    )
    alpha = Image.radial_gradient("L").resize((2000, 2000), Image.Resampling.BILINEAR)
    square.putalpha(alpha.point(lambda value: 255 - value))
    square.save(path, "PNG")


def _save_gif_animated(path: Path, photo: Image.Image) -> None:
    """20 frames of 800×600, a pan across the 12 MP crop, each with its own palette."""
    base = twelve_megapixels(photo)
    frames = []
    for index in range(20):
        left = index * (base.width - 1600) // 19
        crop = base.resize((800, 600), Image.Resampling.LANCZOS, box=(left, 600, left + 1600, 1800))
        frames.append(crop.quantize(256))
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


DERIVED = (
    _Derived(
        "jpeg-12mp", "kleiber-12mp.jpg", "derived: 4:3 crop → 4000×3000, q90", _save_jpeg_12mp
    ),
    _Derived(
        "png-rgba", "kleiber-rgba.png", "derived: 2000×2000 RGBA, radial alpha", _save_png_rgba
    ),
    _Derived("webp-12mp", "kleiber-12mp.webp", "derived: 4000×3000, WebP q80", _save_webp_12mp),
    _Derived("gif-anim", "kleiber-pan.gif", "derived: 20 frames 800×600", _save_gif_animated),
    _Derived(
        "heic-12mp", "kleiber-12mp.heic", "derived: 4000×3000 HEIC, 512² tiles", _save_heic_12mp
    ),
)


def describe(photo: Photo) -> str:
    heif.register_opener()
    with Image.open(photo.path) as image:
        frames = getattr(image, "n_frames", 1)
        width, height = image.size
        kind = f"{image.format} {image.mode}" + (f" {frames} frames" if frames > 1 else "")
    size_mb = photo.path.stat().st_size / 1e6
    return f"{photo.name:<12} {width}×{height} {kind:<16} {size_mb:5.1f} MB  {photo.note}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_photos_argument(parser)
    args = parser.parse_args()
    user_dir = photos_dir_from(args.photos)
    try:
        found = get_photos(user_dir)
    except PhotosUnavailable as err:
        print(f"photos: {err}", file=sys.stderr)
        return 1
    for photo in found:
        print(f"{describe(photo)}  ({photo.path})")
    if user_dir is None:
        print(f"Photo: {ATTRIBUTION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
