"""ISO-BMFF (HEIF, AVIF) box walk: what decoding a still image item will cost, before any decoder.

A HEIF or AVIF file is a tree of boxes.  The picture is the primary item
(``pitm``), either one coded image or a ``grid`` of coded tiles (``iref``
``dimg``), each with properties (``ipco`` / ``ipma``: ``ispe`` size,
``irot``, ``imir``, ``clap``, ``colr``, ``auxC``) and coded bytes located by
``iloc``.  An alpha plane is an auxiliary image (``auxl``) that is decoded too.

The walk reads boxes only, caps every count a decoder would loop over (boxes,
depth, items, extents, properties, associations, tiles), checks that every
decoded item's extents lie inside the file, that a grid's tiles cover its
canvas (and not much more), and that an item's declared size is not absurdly
large for its coded bytes (libheif and libavif allocate what ``ispe`` says,
whatever the bitstream holds).  It returns the pixels the decoder will
really produce.  A truncated box is a corrupt file (422).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from chalicelib.errors import InvalidImage, OriginalTooComplex

MAX_BOXES = 4096  # a phone's 48 MP HEIC (192 tiles) has ~500
MAX_DEPTH = 12  # real files nest 5 deep (meta/iprp/ipco/colr...)
MAX_ITEMS = 1024  # libheif's own security limit is 1000 items
MAX_EXTENTS = 4096
MAX_PROPERTIES = 1024
MAX_ASSOCIATIONS = 16_384
MAX_GRID_TILES = 1024  # a 48 MP phone photo in 512² tiles: 192
# A coded item may declare at most this many pixels per byte of its coded data.  Flat
# grey, the cheapest picture there is: x265 codes 8000×7000 in 34.5 KB (1,600 pixels a
# byte), libaom 7745² in 1,251 bytes (48,000); a 7745² ispe over 64² of AV1 is 1.4 M.
MAX_PIXELS_PER_CODED_BYTE = 1 << 18

HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1"})

# Boxes whose payload is more boxes (after a 4-byte version/flags word for the full boxes).
_CONTAINERS = frozenset({b"iprp", b"dinf", b"moov", b"trak", b"mdia", b"minf", b"stbl"})
_FULL_CONTAINERS = frozenset({b"meta", b"iref"})
# Coded images libheif or libavif may decode: HEVC, AV1, AVC, JPEG, JPEG 2000, VVC, uncompressed.
_CODED_TYPES = frozenset({b"hvc1", b"av01", b"avc1", b"jpeg", b"j2k1", b"vvc1", b"unci"})
# Derived images: one made from another (turned, cropped), or several overlaid on a canvas.
_DERIVED_TYPES = frozenset({b"iden", b"iovl"})
MAX_DERIVATION_DEPTH = 2  # a derived image of a derived image, at most
_METADATA_ITEMS = {b"Exif": "EXIF", b"mime": "XMP"}  # item type → metadata kind
_ICC_COLOURS = (b"prof", b"rICC")  # colr types holding an ICC profile (not nclx)
_ALPHA_URNS = (b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha", b"urn:mpeg:hevc:2015:auxid:1")


@dataclass
class _Item:
    type: bytes = b""
    extents: list[tuple[int, int, int]] = field(default_factory=list)  # (method, offset, length)
    properties: list[int] = field(default_factory=list)  # 1-based ipco indices


@dataclass
class _Tree:
    """What the boxes say, gathered in one pass."""

    data: bytes
    boxes: int = 0
    primary: int | None = None
    items: dict[int, _Item] = field(default_factory=dict)
    properties: list[tuple[bytes, int, int]] = field(default_factory=list)  # type, start, end
    references: dict[bytes, dict[int, list[int]]] = field(default_factory=dict)  # type→from→to
    idat: tuple[int, int] = (0, 0)
    extents: int = 0
    associations: int = 0

    def item(self, item_id: int) -> _Item:
        if item_id not in self.items:
            if len(self.items) >= MAX_ITEMS:
                raise _too_complex("items", len(self.items) + 1, MAX_ITEMS)
            self.items[item_id] = _Item()
        return self.items[item_id]


@dataclass(frozen=True)
class Cost:
    """What decoding the primary image (and its alpha) will produce."""

    brand: bytes
    decoded_pixels: int  # every coded item decoded: tiles, the image, its alpha
    canvas: tuple[int, int] | None  # the primary item's declared size
    # Metadata bytes a decoder's opener reads, by kind: EXIF and XMP items (``iloc``
    # lengths of ``Exif`` and ``mime`` items), ICC profiles (``colr`` properties).
    metadata: tuple[tuple[str, int], ...] = ()


def brand(data: bytes) -> bytes | None:
    """The major brand of an ISO-BMFF file, or None if it does not start with ``ftyp``."""
    return data[8:12] if data[4:8] == b"ftyp" and len(data) >= 12 else None


def is_heif(data: bytes) -> bool:
    """Whether the file is HEIF (HEVC-coded, or a generic ``mif1``), not AVIF."""
    return brand(data) in HEIF_BRANDS


def walk(data: bytes) -> Cost:
    """Walk the box tree and bound the primary image's decode; typed errors when it is hostile."""
    tree = _Tree(data)
    try:
        _boxes(tree, 0, len(data), 0)
    except (IndexError, struct.error) as err:
        raise _corrupt("a box is shorter than its fields") from err
    return _cost(tree)


def _boxes(tree: _Tree, start: int, end: int, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _too_complex("levels of nested boxes", depth, MAX_DEPTH)
    data, pos = tree.data, start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise _corrupt(f"the {kind!r} box runs past its parent")
        tree.boxes += 1
        if tree.boxes > MAX_BOXES:
            raise _too_complex("boxes", tree.boxes, MAX_BOXES)
        _box(tree, kind, pos + header, pos + size, depth)
        pos += size
    if depth == 0 and pos < end:
        raise _corrupt("the file ends inside a box header")


def _box(tree: _Tree, kind: bytes, start: int, end: int, depth: int) -> None:
    data = tree.data
    if kind in _CONTAINERS:
        _boxes(tree, start, end, depth + 1)
    elif kind in _FULL_CONTAINERS:
        if kind == b"iref":
            _iref(tree, start, end)
        else:
            _boxes(tree, start + 4, end, depth + 1)
    elif kind == b"pitm":
        tree.primary = _read_id(data, start + 4, data[start])
    elif kind == b"iinf":
        count_size = 2 if data[start] == 0 else 4
        _boxes(tree, start + 4 + count_size, end, depth + 1)
    elif kind == b"infe":
        _infe(tree, start)
    elif kind == b"iloc":
        _iloc(tree, start)
    elif kind == b"ipma":
        _ipma(tree, start)
    elif kind == b"idat":
        tree.idat = (start, end)
    elif kind == b"ipco":
        _ipco(tree, start, end)


def _ipco(tree: _Tree, start: int, end: int) -> None:
    """Properties, numbered from 1 in the order they appear; their payloads are read on demand."""
    data, pos = tree.data, start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size < 8 or pos + size > end:
            raise _corrupt(f"the {kind!r} property runs past its box")
        tree.boxes += 1
        if tree.boxes > MAX_BOXES:
            raise _too_complex("boxes", tree.boxes, MAX_BOXES)
        tree.properties.append((kind, pos + 8, pos + size))
        if len(tree.properties) > MAX_PROPERTIES:
            raise _too_complex("item properties", len(tree.properties), MAX_PROPERTIES)
        pos += size


def _read_id(data: bytes, at: int, version: int) -> int:
    return int(struct.unpack_from(">H" if version == 0 else ">I", data, at)[0])


def _infe(tree: _Tree, start: int) -> None:
    version = tree.data[start]
    if version < 2:
        return  # no item type: nothing a still-image decoder reads
    item_id = _read_id(tree.data, start + 4, 0 if version == 2 else 1)
    type_at = start + 4 + (2 if version == 2 else 4) + 2
    tree.item(item_id).type = tree.data[type_at : type_at + 4]


def _uint(data: bytes, at: int, size: int) -> int:
    return int.from_bytes(data[at : at + size], "big") if size else 0


def _iloc(tree: _Tree, start: int) -> None:
    data = tree.data
    version = data[start]
    offset_size, length_size = data[start + 4] >> 4, data[start + 4] & 0x0F
    base_size, index_size = data[start + 5] >> 4, data[start + 5] & 0x0F
    if version not in (1, 2):
        index_size = 0
    pos = start + 6
    count_size = 2 if version < 2 else 4
    count = _uint(data, pos, count_size)
    pos += count_size
    if count > MAX_ITEMS:
        raise _too_complex("located items", count, MAX_ITEMS)
    for _ in range(count):
        item_id = _uint(data, pos, count_size)
        pos += count_size
        method = 0
        if version in (1, 2):
            method = _uint(data, pos, 2) & 0x0F
            pos += 2
        pos += 2  # data_reference_index
        base = _uint(data, pos, base_size)
        extent_count = _uint(data, pos + base_size, 2)
        pos += base_size + 2
        tree.extents += extent_count
        if tree.extents > MAX_EXTENTS:
            raise _too_complex("extents", tree.extents, MAX_EXTENTS)
        item = tree.item(item_id)
        for _ in range(extent_count):
            pos += index_size
            offset = _uint(data, pos, offset_size)
            length = _uint(data, pos + offset_size, length_size)
            pos += offset_size + length_size
            item.extents.append((method, base + offset, length))
        if pos > len(data):
            raise IndexError(pos)


def _ipma(tree: _Tree, start: int) -> None:
    data = tree.data
    version, flags = data[start], _uint(data, start + 1, 3)
    count = _uint(data, start + 4, 4)
    pos = start + 8
    for _ in range(min(count, MAX_ITEMS + 1)):
        item_id = _read_id(data, pos, version)
        pos += 2 if version == 0 else 4
        associations = data[pos]
        pos += 1
        tree.associations += associations
        if tree.associations > MAX_ASSOCIATIONS:
            raise _too_complex("property associations", tree.associations, MAX_ASSOCIATIONS)
        item = tree.item(item_id)
        for _ in range(associations):
            if flags & 1:
                item.properties.append(_uint(data, pos, 2) & 0x7FFF)
                pos += 2
            else:
                item.properties.append(data[pos] & 0x7F)
                pos += 1


def _iref(tree: _Tree, start: int, end: int) -> None:
    data = tree.data
    id_size = 2 if data[start] == 0 else 4
    pos = start + 4
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size < 8 or pos + size > end:
            raise _corrupt("an item reference runs past its box")
        tree.boxes += 1
        if tree.boxes > MAX_BOXES:
            raise _too_complex("boxes", tree.boxes, MAX_BOXES)
        source = _uint(data, pos + 8, id_size)
        count = _uint(data, pos + 8 + id_size, 2)
        first = pos + 10 + id_size
        if first + count * id_size > pos + size:
            raise _corrupt("an item reference lists more items than it holds")
        targets = [_uint(data, first + i * id_size, id_size) for i in range(count)]
        tree.references.setdefault(kind, {}).setdefault(source, []).extend(targets)
        pos += size


def _property(tree: _Tree, item: _Item, kind: bytes) -> tuple[int, int] | None:
    """Where the payload of the item's first property of ``kind`` is."""
    for index in item.properties:
        if 0 < index <= len(tree.properties) and tree.properties[index - 1][0] == kind:
            return tree.properties[index - 1][1:]
    return None


def _size(tree: _Tree, item_id: int, item: _Item) -> tuple[int, int]:
    at = _property(tree, item, b"ispe")
    if at is None:
        raise _corrupt(f"item {item_id} has no size (ispe)")
    width, height = struct.unpack_from(">II", tree.data, at[0] + 4)
    return int(width), int(height)


def _payload(tree: _Tree, item_id: int, item: _Item) -> tuple[bytes, int]:
    """The item's bytes (only for small derived items) and its coded length; extents checked."""
    chunks, total = [], 0
    for method, offset, length in item.extents:
        if method == 0:
            length = length or len(tree.data) - offset
            base, limit = 0, len(tree.data)
        elif method == 1:
            base, limit = tree.idat
        else:
            raise _corrupt(f"item {item_id} is built from other items' data")
        if base + offset + length > limit:
            raise _corrupt(f"item {item_id}'s data lies past the end of the file")
        chunks.append((base + offset, length))
        total += length
    head = b"".join(tree.data[at : at + min(length, 64)] for at, length in chunks[:1])
    return head, total


def _coded_pixels(tree: _Tree, item_id: int) -> tuple[int, int]:
    """A coded image item's declared size, checked against its coded bytes."""
    item = tree.items.get(item_id)
    if item is None or item.type not in _CODED_TYPES:
        raise _corrupt(f"item {item_id} is not a coded image")
    width, height = _size(tree, item_id, item)
    _, coded = _payload(tree, item_id, item)
    if width * height > max(coded, 1) * MAX_PIXELS_PER_CODED_BYTE:
        raise _corrupt(
            f"item {item_id} declares {width}×{height} pixels over {coded} bytes of coded data"
        )
    return width, height


def _decoded_pixels(tree: _Tree, item_id: int, depth: int = 0) -> int:
    """Pixels the decoder produces for an image item: a coded image, a grid of them, or an
    image derived from others (each source decoded, an overlay's canvas besides)."""
    item = tree.items.get(item_id)
    if item is None:
        raise _corrupt(f"item {item_id} is not in the file")
    if item.type in _DERIVED_TYPES:
        if depth >= MAX_DERIVATION_DEPTH:
            raise _too_complex("levels of derived images", depth + 1, MAX_DERIVATION_DEPTH)
        sources = tree.references.get(b"dimg", {}).get(item_id, [])
        if not sources or (item.type == b"iden" and len(sources) != 1):
            raise _corrupt(f"derived item {item_id} names {len(sources)} sources")
        if len(sources) > MAX_GRID_TILES:
            raise _too_complex("overlaid images", len(sources), MAX_GRID_TILES)
        canvas = 0
        if item.type == b"iovl":
            width, height = _size(tree, item_id, item)
            canvas = width * height
        return canvas + sum(_decoded_pixels(tree, source, depth + 1) for source in sources)
    if item.type != b"grid":
        width, height = _coded_pixels(tree, item_id)
        return width * height
    head, _ = _payload(tree, item_id, item)
    wide = head[1] & 1
    rows, columns = head[2] + 1, head[3] + 1
    width, height = struct.unpack_from(">II" if wide else ">HH", head, 4)
    tiles = tree.references.get(b"dimg", {}).get(item_id, [])
    if rows * columns > MAX_GRID_TILES or len(tiles) > MAX_GRID_TILES:
        raise _too_complex("grid tiles", max(rows * columns, len(tiles)), MAX_GRID_TILES)
    if len(tiles) != rows * columns:
        raise _corrupt(f"a {columns}×{rows} grid names {len(tiles)} tiles")
    sizes = {_coded_pixels(tree, tile) for tile in tiles}
    if len(sizes) != 1:
        raise _corrupt("a grid's tiles differ in size")
    ((tile_width, tile_height),) = sizes
    # The tiles cover the canvas, the last row and column overhanging it by less than a tile.
    if not (
        (columns - 1) * tile_width < width <= columns * tile_width
        and (rows - 1) * tile_height < height <= rows * tile_height
    ):
        raise _corrupt(
            f"a {width}×{height} grid of {columns}×{rows} tiles of {tile_width}×{tile_height}"
        )
    declared = _property(tree, item, b"ispe")
    if declared is not None and _size(tree, item_id, item) != (width, height):
        raise _corrupt("a grid's ispe disagrees with its canvas")
    return rows * columns * tile_width * tile_height


def _alpha_items(tree: _Tree, primary: int) -> list[int]:
    """Auxiliary images of the primary that hold its alpha: decoded with it."""
    found = []
    for source, targets in tree.references.get(b"auxl", {}).items():
        item = tree.items.get(source)
        if primary not in targets or item is None:
            continue
        urn = _property(tree, item, b"auxC")
        if urn is not None and tree.data[urn[0] + 4 : urn[1]].startswith(_ALPHA_URNS):
            found.append(source)
    return found


def _metadata(tree: _Tree) -> tuple[tuple[str, int], ...]:
    """(kind, bytes) of every metadata item and ICC profile, in the file's order."""
    found = [
        (_METADATA_ITEMS[item.type], sum(length for _, _, length in item.extents))
        for item in tree.items.values()
        if item.type in _METADATA_ITEMS
    ]
    for kind, start, end in tree.properties:
        if kind == b"colr" and tree.data[start : start + 4] in _ICC_COLOURS:
            found.append(("ICC", end - start - 4))
    return tuple(found)


def _cost(tree: _Tree) -> Cost:
    kind, metadata = brand(tree.data) or b"", _metadata(tree)
    if tree.primary is None:
        return Cost(kind, 0, None, metadata)  # a sequence, or no image: the decoder decides
    item = tree.items.get(tree.primary)
    canvas = _size(tree, tree.primary, item) if item and _property(tree, item, b"ispe") else None
    pixels = _decoded_pixels(tree, tree.primary)
    for alpha in _alpha_items(tree, tree.primary):
        pixels += _decoded_pixels(tree, alpha)
    return Cost(kind, pixels, canvas, metadata)


def _corrupt(detail: str) -> InvalidImage:
    return InvalidImage("the original image is corrupt or truncated", detail)


_too_complex = OriginalTooComplex.over_cap
