"""How many pixels an image file decodes to, read from its header before anything is decoded.

A 389 KB PNG may declare 20000x20000 pixels, and a GIF may hold thousands of frames that TensorFlow's decoder
all allocates: the header tells the cost up front. The format is recognised by its signature, as the decoder
does, never by the file's suffix. Only the formats the image folder takes are known; anything else is refused.
"""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
GIF_SIGNATURES = (b"GIF87a", b"GIF89a")
JPEG_SOI = b"\xff\xd8"
BMP_SIGNATURE = b"BM"
# Start-of-frame markers (baseline, progressive, lossless, arithmetic ...); C4, C8 and CC are other segments.
JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM carry no length


class UnknownImage(ValueError):
    """Not a PNG, JPEG, BMP or GIF header, or one cut short."""


def decoded_pixels(data: bytes) -> int:
    """width x height (x frames, for a GIF) that decoding ``data`` allocates."""
    try:
        if data.startswith(PNG_SIGNATURE):
            if data[12:16] != b"IHDR":
                raise UnknownImage("a PNG without its IHDR header")
            width, height = struct.unpack_from(">II", data, 16)
            return width * height
        if data.startswith(GIF_SIGNATURES):
            width, height = struct.unpack_from("<HH", data, 6)
            return width * height * gif_frames(data)
        if data.startswith(JPEG_SOI):
            return jpeg_pixels(data)
        if data.startswith(BMP_SIGNATURE):
            # TensorFlow reads both as int32 at these offsets, whatever the header's size; rows may run top-down.
            width, height = struct.unpack_from("<ii", data, 18)
            return abs(width) * abs(height)
    except (struct.error, IndexError):
        raise UnknownImage("its header is cut short") from None
    raise UnknownImage("not a PNG, JPEG, BMP or GIF signature")


def jpeg_pixels(data: bytes) -> int:
    """From the first start-of-frame segment, walking the segments that precede it by their lengths."""
    position = 2
    while True:
        if data[position] != 0xFF:
            raise UnknownImage("a JPEG segment does not start with a marker")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in JPEG_STANDALONE:
            position += 2
            continue
        if marker == 0xDA:  # start of scan: image data without a frame header before it
            raise UnknownImage("a JPEG without a frame header")
        if marker in JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, position + 5)
            return width * height
        (length,) = struct.unpack_from(">H", data, position + 2)
        position += 2 + length


def gif_frames(data: bytes) -> int:
    """The images in a GIF, counted by walking its blocks; TensorFlow decodes every one into a full-size frame."""
    position = 13 + colour_table_bytes(data[10])
    frames = 0
    while position < len(data):
        block = data[position]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then sub-blocks
            position = skip_sub_blocks(data, position + 2)
        elif block == 0x2C:  # image descriptor: 9 bytes, a local colour table, the LZW code size, sub-blocks
            frames += 1
            position = skip_sub_blocks(data, position + 10 + colour_table_bytes(data[position + 9]) + 1)
        else:
            break  # damaged: the decoder will say so
    return max(frames, 1)


def colour_table_bytes(flags: int) -> int:
    return 3 * 2 ** ((flags & 0x07) + 1) if flags & 0x80 else 0


def skip_sub_blocks(data: bytes, position: int) -> int:
    while position < len(data) and data[position]:
        position += data[position] + 1
    return position + 1
