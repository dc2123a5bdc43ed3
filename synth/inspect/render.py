"""Draw a row: its image with translucent masks, boxes and points labelled by phrase, and the
grounded trace wrapped as text under it. PIL only, with its built-in font (nothing fetched).

Every render is `size` pixels wide; the image is scaled to fit a `size` x `size` square (nearest
neighbour when enlarged, so mask edges stay pixel-exact) and centred above the text.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from synth.core.geometry import rle_to_mask
from synth.core.shards import Output

log = logging.getLogger(__name__)

#: One colour per object, cycled; chosen to stay distinct on photographs and on each other.
PALETTE = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40),
)
MASK_ALPHA = 110
MARGIN = 10
FONT_SIZE = 14
MAX_TEXT_LINES = 60


def render_row(row: dict[str, Any], size: int = 768) -> Image.Image:
    """The row drawn as an RGB image `size` pixels wide (see the module docstring)."""
    font = ImageFont.load_default(size=FONT_SIZE)
    picture, scale = _picture(row, size)
    lines = _text_lines(row, font, size - 2 * MARGIN)
    line_height = FONT_SIZE + 5
    canvas = Image.new("RGB", (size, picture.height + 2 * MARGIN + line_height * len(lines)), "white")
    offset = (size - picture.width) // 2
    canvas.paste(picture, (offset, 0))
    draw = ImageDraw.Draw(canvas)
    _draw_geometry(draw, row, scale, offset, font)
    y = picture.height + MARGIN
    for line in lines:
        draw.text((MARGIN, y), line, fill=(20, 20, 20), font=font)
        y += line_height
    return canvas


def render_samples(output: Output, folder: Path, n: int, size: int = 768) -> list[Path]:
    """Render `n` rows spread evenly over the output into `folder` as PNGs; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in sample_indices(output.rows.num_rows, n):
        row = output.rows.slice(index, 1).to_pylist()[0]
        path = folder / f"{index:05d}-{row['id'][:12]}.png"
        render_row(row, size).save(path, format="PNG")
        paths.append(path)
    return paths


def sample_indices(total: int, n: int) -> list[int]:
    """`n` row indices spread evenly over `total` rows (all of them when n >= total)."""
    if n <= 0 or total <= 0:
        return []
    if n >= total:
        return list(range(total))
    if n == 1:
        return [0]
    return sorted({round(i * (total - 1) / (n - 1)) for i in range(n)})


def _picture(row: dict[str, Any], size: int) -> tuple[Image.Image, float]:
    """The image with masks blended in, scaled to fit `size`; and the scale used."""
    width, height = max(int(row["image_width"]), 1), max(int(row["image_height"]), 1)
    try:
        with Image.open(io.BytesIO(row["image"]["bytes"])) as raw:
            base = raw.convert("RGB")
    except Exception as exc:  # any undecodable bytes: draw a placeholder, --validate reports them
        log.warning("row %s: image does not decode (%s); drawing a placeholder", row.get("id"), exc)
        base = Image.new("RGB", (width, height), (128, 128, 128))
    overlay = np.zeros((base.height, base.width, 4), dtype=np.uint8)
    for j, obj in enumerate(row["objects"]):
        colour = PALETTE[j % len(PALETTE)]
        for inst in obj["instances"] or []:
            mask = _mask(inst["mask"], base.height, base.width)
            if mask is not None:
                overlay[mask] = (*colour, MASK_ALPHA)
    blended = Image.alpha_composite(base.convert("RGBA"), Image.fromarray(overlay, "RGBA")).convert("RGB")
    scale = size / max(base.width, base.height)
    target = (max(1, round(base.width * scale)), max(1, round(base.height * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    return blended.resize(target, resample), scale


def _mask(rle: dict[str, Any], height: int, width: int) -> np.ndarray | None:
    try:
        mask = rle_to_mask(rle)
    except Exception:  # a broken mask is drawn as nothing; --validate names it
        return None
    return mask if mask.shape == (height, width) else None


def _draw_geometry(draw: ImageDraw.ImageDraw, row: dict[str, Any], scale: float, offset: int,
                   font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> None:
    for j, obj in enumerate(row["objects"]):
        colour = PALETTE[j % len(PALETTE)]
        for k, inst in enumerate(obj["instances"] or []):
            box, point = inst["box"], inst["point"]
            if box is not None:
                x0, y0, x1, y1 = (v * scale for v in box)
                draw.rectangle([offset + x0, y0, offset + max(x0, x1 - 1), max(y0, y1 - 1)], outline=colour, width=2)
                if k == 0:
                    _label(draw, f"{obj['phrase'][:40]} ({len(obj['instances'])})", offset + x0, y0, colour, font)
            if point is not None:
                px, py = offset + point[0] * scale, point[1] * scale
                # White ring with a dark edge: visible on the mask's own colour and on any photo.
                draw.ellipse([px - 5, py - 5, px + 5, py + 5], fill="white", outline=(0, 0, 0), width=1)
                draw.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=colour)


def _label(draw: ImageDraw.ImageDraw, text: str, x: float, y: float, colour: tuple[int, int, int],
           font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> None:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    height = bottom - top + 4
    y = y - height if y >= height else y  # above the box when there is room, else inside it
    draw.rectangle([x, y, x + right - left + 4, y + height], fill=colour)
    draw.text((x + 2, y + 2 - top), text, fill="white", font=font)


def _text_lines(row: dict[str, Any], font: Any, width: int) -> list[str]:
    header = [
        f"{row['item_id']}  |  {row['grounded_format']}  |  {row['task']}  |  id {row['id'][:12]}",
        f"Q: {row['question']}",
        f"A: {row['answer']}  (trace's answer: {row['final_answer']})",
        "",
    ]
    lines: list[str] = []
    for paragraph in header + (row["grounded_trace"] or row["trace"]).split("\n"):
        lines += _wrap(paragraph, font, width)
    if len(lines) > MAX_TEXT_LINES:
        lines = lines[:MAX_TEXT_LINES] + [f"... ({len(lines) - MAX_TEXT_LINES} more lines)"]
    return lines


def _wrap(text: str, font: Any, width: int) -> list[str]:
    """Greedy word wrap to `width` pixels; words longer than a line are cut by characters."""
    if not text:
        return [""]
    lines, current = [], ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if font.getlength(candidate) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        while font.getlength(word) > width:
            cut = max(1, _fit(word, font, width))
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    lines.append(current)
    return lines


def _fit(word: str, font: Any, width: int) -> int:
    lo, hi = 1, len(word)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if font.getlength(word[:mid]) <= width:
            lo = mid
        else:
            hi = mid - 1
    return lo
