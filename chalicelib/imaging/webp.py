"""Still WebP decoded at a reduced scale by libwebp itself, through ctypes.

Pillow decodes every WebP through ``WebPAnimDecoder`` at full size (a 12 MP
photo: two 46 MiB canvases and a 46 MiB copy).  libwebp's advanced API
(``WebPDecode`` with ``use_scaling``) rescales row by row while decoding, so a
large photo asked for at 300 px never exists at full size.  The library is the
one Pillow's wheel bundles (``pillow.libs/libwebp-<hash>.so.<n>``), loaded once;
without it, or when anything it reports does not check out, callers get None
and keep Pillow's own decode.

The structures are libwebp's ``decode.h`` (decoder ABI 0x0209, unchanged in
layout through 1.6.0's 0x0210: only the minor number moved, and the library
refuses a different major one in ``WebPInitDecoderConfigInternal``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from pathlib import Path

from PIL import Image

log = logging.getLogger(__name__)

# What this file's structures describe; libwebp checks the major byte (0x02).
DECODER_ABI_VERSION = 0x0209
# The first release with that ABI (1.1.0); older ones are not used.
MIN_DECODER_VERSION = 0x010100
# WEBP_CSP_MODE values: plain RGB, and RGBA with premultiplied colour.
MODE_RGB = 0
MODE_PREMULTIPLIED_RGBA = 7  # MODE_rgbA
VP8_STATUS_OK = 0
# The glob patterns, relative to PIL's package directory, where wheels put their libraries.
BUNDLED_PATTERNS = (
    "../pillow.libs/libwebp-*.so*",
    "../Pillow.libs/libwebp-*.so*",
    ".libs/libwebp*",
)


class BitstreamFeatures(ctypes.Structure):
    _fields_ = [
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("has_alpha", ctypes.c_int),
        ("has_animation", ctypes.c_int),
        ("format", ctypes.c_int),
        ("pad", ctypes.c_uint32 * 5),
    ]


class RGBABuffer(ctypes.Structure):
    _fields_ = [
        ("rgba", ctypes.POINTER(ctypes.c_uint8)),
        ("stride", ctypes.c_int),
        ("size", ctypes.c_size_t),
    ]


class YUVABuffer(ctypes.Structure):
    _fields_ = [
        ("y", ctypes.POINTER(ctypes.c_uint8)),
        ("u", ctypes.POINTER(ctypes.c_uint8)),
        ("v", ctypes.POINTER(ctypes.c_uint8)),
        ("a", ctypes.POINTER(ctypes.c_uint8)),
        ("y_stride", ctypes.c_int),
        ("u_stride", ctypes.c_int),
        ("v_stride", ctypes.c_int),
        ("a_stride", ctypes.c_int),
        ("y_size", ctypes.c_size_t),
        ("u_size", ctypes.c_size_t),
        ("v_size", ctypes.c_size_t),
        ("a_size", ctypes.c_size_t),
    ]


class _BufferUnion(ctypes.Union):
    _fields_ = [("RGBA", RGBABuffer), ("YUVA", YUVABuffer)]


class DecBuffer(ctypes.Structure):
    _fields_ = [
        ("colorspace", ctypes.c_int),
        ("width", ctypes.c_int),
        ("height", ctypes.c_int),
        ("is_external_memory", ctypes.c_int),
        ("u", _BufferUnion),
        ("pad", ctypes.c_uint32 * 4),
        ("private_memory", ctypes.POINTER(ctypes.c_uint8)),
    ]


class DecoderOptions(ctypes.Structure):
    _fields_ = [
        ("bypass_filtering", ctypes.c_int),
        ("no_fancy_upsampling", ctypes.c_int),
        ("use_cropping", ctypes.c_int),
        ("crop_left", ctypes.c_int),
        ("crop_top", ctypes.c_int),
        ("crop_width", ctypes.c_int),
        ("crop_height", ctypes.c_int),
        ("use_scaling", ctypes.c_int),
        ("scaled_width", ctypes.c_int),
        ("scaled_height", ctypes.c_int),
        ("use_threads", ctypes.c_int),
        ("dithering_strength", ctypes.c_int),
        ("flip", ctypes.c_int),
        ("alpha_dithering_strength", ctypes.c_int),
        ("pad", ctypes.c_uint32 * 5),
    ]


class DecoderConfig(ctypes.Structure):
    _fields_ = [("input", BitstreamFeatures), ("output", DecBuffer), ("options", DecoderOptions)]


class ScaledDecodeError(Exception):
    """libwebp refused the data, or what it returned does not check out."""


def library_candidates() -> list[str]:
    """Where libwebp may be: the copy Pillow's wheel bundles first, then the system's."""
    import PIL

    package = Path(PIL.__file__).parent
    bundled = sorted(str(p) for pattern in BUNDLED_PATTERNS for p in package.glob(pattern))
    system = ctypes.util.find_library("webp")
    return bundled + ([system] if system else [])


@functools.cache
def library() -> ctypes.CDLL | None:
    """libwebp with every symbol this module calls typed, or None (then Pillow decodes)."""
    for candidate in library_candidates():
        try:
            lib = ctypes.CDLL(candidate)
            _declare(lib)
        except (OSError, AttributeError) as err:  # not loadable; a symbol missing
            log.info("libwebp at %s unusable: %s", candidate, err)
            continue
        version = lib.WebPGetDecoderVersion()
        if version >= MIN_DECODER_VERSION and _config_initialises(lib):
            return lib
        log.info("libwebp at %s is version %#x: not used", candidate, version)
    return None


def _declare(lib: ctypes.CDLL) -> None:
    lib.WebPGetDecoderVersion.argtypes = []
    lib.WebPGetDecoderVersion.restype = ctypes.c_int
    lib.WebPInitDecoderConfigInternal.argtypes = [ctypes.POINTER(DecoderConfig), ctypes.c_int]
    lib.WebPInitDecoderConfigInternal.restype = ctypes.c_int
    lib.WebPGetFeaturesInternal.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.POINTER(BitstreamFeatures),
        ctypes.c_int,
    ]
    lib.WebPGetFeaturesInternal.restype = ctypes.c_int
    lib.WebPDecode.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(DecoderConfig)]
    lib.WebPDecode.restype = ctypes.c_int
    lib.WebPFreeDecBuffer.argtypes = [ctypes.POINTER(DecBuffer)]
    lib.WebPFreeDecBuffer.restype = None


def _config_initialises(lib: ctypes.CDLL) -> bool:
    config = DecoderConfig()
    return bool(lib.WebPInitDecoderConfigInternal(ctypes.byref(config), DECODER_ABI_VERSION))


def available() -> bool:
    return library() is not None


def decode_scaled(
    data: bytes, source: tuple[int, int], size: tuple[int, int], alpha: bool
) -> Image.Image | None:
    """A still WebP of ``source`` size decoded straight to ``size``; None when libwebp is not
    usable here.  ``source`` is what Pillow read from the container, and what the
    limits were checked against: the bitstream must say the same.

    With ``alpha`` the result is Pillow's ``RGBa`` (colour premultiplied by
    alpha, what resampling needs; ``convert("RGBA")`` undoes it), else ``RGB``.
    Raises ScaledDecodeError when libwebp refuses the data or its answer is
    inconsistent (the caller falls back to Pillow, which reports it properly).
    """
    lib = library()
    if lib is None:
        return None
    config = DecoderConfig()
    if not lib.WebPInitDecoderConfigInternal(ctypes.byref(config), DECODER_ABI_VERSION):
        raise ScaledDecodeError("WebPInitDecoderConfig refused the ABI version")
    status = lib.WebPGetFeaturesInternal(
        data, len(data), ctypes.byref(config.input), DECODER_ABI_VERSION
    )
    _check_features(status, config.input, source, size)
    return _decode_into(lib, data, config, size, alpha)


def _check_features(
    status: int, features: BitstreamFeatures, source: tuple[int, int], size: tuple[int, int]
) -> None:
    if status != VP8_STATUS_OK:
        raise ScaledDecodeError(f"WebPGetFeatures: status {status}")
    if features.has_animation:
        raise ScaledDecodeError("an animation: WebPDecode would give its first frame only")
    if (features.width, features.height) != source:
        raise ScaledDecodeError(
            f"the bitstream is {features.width}×{features.height}, the container said {source}"
        )
    width, height = size
    if not (0 < width <= features.width and 0 < height <= features.height):
        raise ScaledDecodeError(
            f"asked for {size} from a {features.width}×{features.height} bitstream"
        )


def _decode_into(
    lib: ctypes.CDLL, data: bytes, config: DecoderConfig, size: tuple[int, int], alpha: bool
) -> Image.Image:
    """Decode into a buffer of our own, sized and checked here, and wrap it for Pillow."""
    width, height = size
    channels = 4 if alpha else 3
    stride = width * channels
    buffer = ctypes.create_string_buffer(stride * height)
    config.options.use_scaling = int(size != (config.input.width, config.input.height))
    config.options.scaled_width, config.options.scaled_height = width, height
    output = config.output
    output.colorspace = MODE_PREMULTIPLIED_RGBA if alpha else MODE_RGB
    output.is_external_memory = 1
    output.u.RGBA.rgba = ctypes.cast(buffer, ctypes.POINTER(ctypes.c_uint8))
    output.u.RGBA.stride = stride
    output.u.RGBA.size = len(buffer)
    try:
        status = lib.WebPDecode(data, len(data), ctypes.byref(config))
        got = (output.width, output.height)
        if status != VP8_STATUS_OK:
            raise ScaledDecodeError(f"WebPDecode: status {status}")
        if got != size or output.u.RGBA.stride != stride or output.u.RGBA.size != len(buffer):
            raise ScaledDecodeError(f"WebPDecode wrote {got} into the buffer for {size}")
    finally:
        lib.WebPFreeDecBuffer(ctypes.byref(output))  # frees only libwebp's own memory, if any
    raw = buffer.raw
    if alpha:
        return Image.frombytes("RGBa", size, raw, "raw", "RGBa", stride)
    return Image.frombytes("RGB", size, raw, "raw", "RGB", stride)
