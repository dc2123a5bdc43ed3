"""Load and decode one image safely into the canonical frame: the upright RGB image, uint8.

Rules, stated once:
- **Paths** are resolved (symlinks followed) and must lie inside the dataset root unless allowed;
  only regular files are read, and none larger than `max_bytes`.
- **Size guard**: the header's width x height is checked against `max_pixels` before a pixel is
  decoded (Pillow's `MAX_IMAGE_PIXELS` is set to the same limit while decoding), so a
  decompression bomb is refused without allocating it.
- **Upright frame**: the EXIF orientation is applied (`ImageOps.exif_transpose`); the stored image,
  width, height and every annotation are in that upright frame. Annotations a dataset gives are
  assumed to be in the upright frame too (COCO's and most tools' convention).
- **Colour**: CMYK, YCbCr, palette, 1-bit and grayscale become RGB by Pillow's conversion; images
  with alpha (RGBA, LA, palette with transparency) are composited over white, the page colour most
  viewers assume; 16-bit grayscale is scaled (v * 255 / 65535, rounded), never clipped; Pillow
  reads 16-bit RGB by keeping the high byte, which is also a scaling. Colour profiles are ignored.
- **Animation**: an animated GIF/PNG/WebP gives its first frame.
- **Oversize**: an image with a side above `max_side` is downscaled so its longer side is
  `max_side` (aspect kept; each side rounded to the nearest pixel, at least 1; Lanczos), or
  refused before decoding (`oversize: reject`). A JPEG is decoded by libjpeg at 1/2, 1/4 or 1/8
  scale first when that stays above the target (an 80-Mpx JPEG: 0.7 s and 120 MB instead of 5 s
  and 1 GB); other formats are decoded in full (within `max_pixels`), then resized.
- **Stored bytes**: the original file's bytes when they decode to exactly this image (8-bit RGB,
  no orientation applied, one frame, not downscaled); otherwise a PNG of the upright image.
Every refusal raises `ReadFailure(reason, detail)` with a reason code of the read stage.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps

from synth.sources.base import short_repr

_EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT = {"I;16", "I;16B", "I;16L", "I;16N"}


class ReadFailure(Exception):
    """An image that cannot become the upright RGB image; `reason` is a read-stage reject code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class DecodedImage:
    """The upright image, (H, W, 3) uint8, with the bytes to store and their format (e.g. "png").

    `scale` is (sx, sy), the factors from the upright source frame to `array` (1.0 unless the image
    was downscaled); `source_size` is the upright source's (width, height).
    """

    array: np.ndarray
    data: bytes
    format: str
    scale: tuple[float, float]
    source_size: tuple[int, int]


def read_image_file(raw_path: str, base: Path, root: Path, allow_outside_root: bool, max_bytes: int) -> bytes:
    """The bytes of `raw_path` (relative to `base`, or absolute), refused if it leaves `root`."""
    shown = short_repr(raw_path, 160)
    try:
        path = Path(raw_path) if os.path.isabs(raw_path) else base / raw_path
        resolved = path.resolve()
        inside = resolved.is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loops, NUL bytes
        raise ReadFailure("image_unreadable", f"cannot resolve image path {shown}: {exc}") from exc
    if not inside and not allow_outside_root:
        raise ReadFailure("path_outside_root", f"image path {shown} resolves outside the dataset root {root}")
    try:
        info = resolved.stat()
    except FileNotFoundError:
        raise ReadFailure("image_missing", f"image {shown} does not exist (looked at {path})") from None
    except OSError as exc:
        raise ReadFailure("image_unreadable", f"cannot stat image {shown}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise ReadFailure("image_unreadable", f"image path {shown} is not a regular file")
    if info.st_size > max_bytes:
        raise ReadFailure("image_too_large", f"image {shown} has {info.st_size} bytes, above read.max_bytes {max_bytes}")
    try:
        return resolved.read_bytes()
    except OSError as exc:
        raise ReadFailure("image_unreadable", f"cannot read image {shown}: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def _pillow_limits(max_pixels: int) -> Iterator[None]:
    """Pillow's bomb guard at our limit, truncated files refused, for the duration of one decode."""
    saved = Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES
    Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = max_pixels, False
    try:
        with warnings.catch_warnings():
            # Between the limit and twice it Pillow only warns; an error is what we want there.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS, ImageFile.LOAD_TRUNCATED_IMAGES = saved


def decode_image(data: bytes, max_pixels: int, max_side: int, oversize: str) -> DecodedImage:
    """Decode `data` into the upright RGB image under the rules of this module's docstring."""
    if not data:
        raise ReadFailure("image_unreadable", "the image file has zero bytes")
    with _pillow_limits(max_pixels):
        try:
            im = Image.open(io.BytesIO(data))
            _check_pixels(im.size, max_pixels)
            keep_original = _native_rgb8(im)  # read the tile list before anything loads the pixels
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)  # the first frame, by this module's rule
                # A camera's MPO is a JPEG whose first frame is what every JPEG decoder shows.
                keep_original = keep_original and im.format == "MPO"
            jpeg = im.format in ("JPEG", "MPO")
            if not jpeg:
                im.load()  # getexif loads a PNG anyway; loading here lets a broken file fail here
            orientation = _orientation(im)
            size = (im.height, im.width) if orientation >= 5 else im.size  # upright (width, height)
            target = _target_size(size, max_side, oversize)
            keep_original = keep_original and orientation == 1 and target is None
            if target is not None and jpeg:
                # Let libjpeg decode at 1/2, 1/4 or 1/8 scale (never below the target): a fraction
                # of the memory and time of decoding a huge photo in full.
                im.draft(None, target[::-1] if orientation >= 5 else target)
            im.load()
            rgb = to_rgb(ImageOps.exif_transpose(im) if orientation != 1 else im)
        except ReadFailure:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ReadFailure("image_too_large", f"{exc}") from exc
        except MemoryError as exc:
            raise ReadFailure("image_too_large", "decoding ran out of memory") from exc
        except Exception as exc:  # noqa: BLE001 - Pillow raises many types on hostile bytes
            raise ReadFailure("image_unreadable", f"cannot decode image: {type(exc).__name__}: {exc}") from exc
    if keep_original:
        fmt = "jpeg" if im.format == "MPO" else (im.format or "").lower()
        return DecodedImage(rgb, bytes(data), fmt, (1.0, 1.0), size)
    return _as_png(rgb, size, target)


def _as_png(rgb: np.ndarray, size: tuple[int, int], target: tuple[int, int] | None) -> DecodedImage:
    """The decoded image, resized to `target` when given, with PNG bytes of it."""
    if target is None:
        return DecodedImage(rgb, encode_png(rgb), "png", (1.0, 1.0), size)
    rgb = _resize(rgb, target)
    return DecodedImage(rgb, encode_png(rgb), "png", (target[0] / size[0], target[1] / size[1]), size)


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise ReadFailure("image_unreadable", f"the image claims a size of {w}x{h}")
    if w * h > max_pixels:
        raise ReadFailure("image_too_large", f"{w}x{h} = {w * h} pixels, above read.max_pixels {max_pixels}")


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block is no orientation, not an unreadable image
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _native_rgb8(im: Image.Image) -> bool:
    """Whether the file decodes straight to 8-bit RGB (not 16-bit RGB, CMYK, palette, gray)."""
    if im.mode != "RGB":
        return False
    if im.format == "WEBP":  # Pillow leaves WebP's tile list empty; WebP is 8 bits per channel
        return True
    if not im.tile:
        return False
    args = im.tile[0].args
    rawmode = args if isinstance(args, str) else (args[0] if args else "")
    return rawmode in ("RGB", "BGR", "RGBX", "BGRX")


def to_rgb(im: Image.Image) -> np.ndarray:
    """A (H, W, 3) uint8 RGB array of a decoded Pillow image of any mode (see the module rules)."""
    mode = im.mode
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8).copy()
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        return np.repeat(_gray_to_uint8(np.asarray(im), mode)[:, :, None], 3, axis=2)
    if mode in _ALPHA_MODES or (mode in ("P", "L", "1") and "transparency" in im.info):
        return over_white(np.asarray(im.convert("RGBA")))
    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def _gray_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """16-bit gray scaled to 8 bits; 32-bit int read as 16-bit when it fits, else stretched; float 0..1."""
    values = values.astype(np.float64)
    lo, hi = float(values.min()), float(values.max())
    if mode in _SIXTEEN_BIT or (mode == "I" and lo >= 0 and hi <= 65535):
        scaled = values * (255.0 / 65535.0)
    elif mode == "F" and lo >= 0 and hi <= 1:
        scaled = values * 255.0
    else:
        scaled = (values - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(values)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def over_white(rgba: np.ndarray) -> np.ndarray:
    """Composite an (H, W, 4) uint8 RGBA array over a white background: (H, W, 3) uint8."""
    alpha = rgba[:, :, 3:4].astype(np.float64) / 255.0
    rgb = rgba[:, :, :3].astype(np.float64) * alpha + 255.0 * (1.0 - alpha)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def downscaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size after the downscale rule: longer side `max_side`, aspect kept, each side >= 1."""
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def _target_size(size: tuple[int, int], max_side: int, oversize: str) -> tuple[int, int] | None:
    """The downscaled (width, height) of an upright `size`, None when it fits; raises for oversize reject."""
    w, h = size
    if max(w, h) <= max_side:
        return None
    if oversize == "reject":
        raise ReadFailure("image_too_large", f"{w}x{h} has a side above read.max_side {max_side} (oversize: reject)")
    return downscaled_size(w, h, max_side)


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    # reducing_gap lets Pillow shrink by whole factors first: fast on huge images, same quality.
    small = Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(small, dtype=np.uint8).copy()


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 array."""
    buf = io.BytesIO()
    # zlib level 3: a third of level 6's time for ~15% more bytes (measured on demo scenes); the
    # read stage encodes on the pipeline's clock.
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=3)
    return buf.getvalue()
