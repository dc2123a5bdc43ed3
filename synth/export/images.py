"""Images of exported rows as files: DIR/images/<sha256>.<ext>, written once per image."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

IMAGES_DIR = "images"


def image_extension(data: bytes) -> str:
    """"png" or "jpg" from the bytes' signature; "" for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    return ""


def write_image(data: bytes, sha256: str, out_dir: Path) -> str:
    """Write the image under out_dir/images/ once; return its path relative to out_dir.

    PNG and JPEG bytes are written as they are (so the file's sha256 is the row's
    image_sha256); other encodings (WebP, BMP, ...) are converted to PNG, which every trainer's
    image loader reads, and keep the original's sha256 as their name.
    """
    ext = image_extension(data)
    if not ext:
        buffer = io.BytesIO()
        with Image.open(io.BytesIO(data)) as image:
            image.save(buffer, format="PNG")
        data, ext = buffer.getvalue(), "png"
    relative = f"{IMAGES_DIR}/{sha256}.{ext}"
    target = out_dir / relative
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(target)  # a crash mid-write never leaves a truncated image under the final name
    return relative
