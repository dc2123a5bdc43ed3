"""Small image files with known content, good and hostile, written by the tests that need them."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

EXIF_ORIENTATION = 0x0112


def rgb_array(width: int = 40, height: int = 30) -> np.ndarray:
    """A (H, W, 3) uint8 image whose every pixel differs from its neighbours (so turns show)."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs * 5 % 256, ys * 7 % 256, (xs + ys) * 3 % 256], axis=2).astype(np.uint8)


def encode(image: Image.Image, fmt: str, **save: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


def png_bytes(array: np.ndarray) -> bytes:
    return encode(Image.fromarray(array), "PNG")


def jpeg_with_orientation(array: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    return encode(Image.fromarray(array), "JPEG", exif=exif, quality=95)


def animated_gif(colours: list[tuple[int, int, int]], size: tuple[int, int] = (16, 12)) -> bytes:
    frames = [Image.new("RGB", size, c) for c in colours]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that claims `width` x `height` RGB pixels: a decompression bomb's header."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
