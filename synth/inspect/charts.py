"""Bar charts as inline SVG text, written by hand so a report needs no plotting library and no
network. The SVG is meant to sit inside an HTML5 page, which needs no namespace declaration."""

from __future__ import annotations

from html import escape

BAR_COLOUR = "#3b7dd8"
TEXT_COLOUR = "#222"


def bar_chart(title: str, counts: dict[str, int], width: int = 420, height: int = 220) -> str:
    """Vertical bars, one per label in the given order, each with its count above it."""
    labels, values = list(counts), list(counts.values())
    top, bottom, left, right = 38, 42, 8, 8
    plot_h = height - top - bottom
    peak = max(values, default=0) or 1
    slot = (width - left - right) / max(len(labels), 1)
    parts = [_open(width, height, title)]
    for i, (label, value) in enumerate(zip(labels, values)):
        bar_h = plot_h * value / peak
        x = left + i * slot + slot * 0.1
        y = top + plot_h - bar_h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" height="{bar_h:.1f}" '
                     f'fill="{BAR_COLOUR}"><title>{escape(label)}: {value}</title></rect>')
        parts.append(_text(x + slot * 0.4, y - 3, str(value), 10, "middle"))
        cx, cy = x + slot * 0.4, top + plot_h + 12
        parts.append(f'<text x="{cx:.1f}" y="{cy:.1f}" font-size="9" fill="{TEXT_COLOUR}" text-anchor="end" '
                     f'transform="rotate(-35 {cx:.1f} {cy:.1f})">{escape(_short(label, 14))}</text>')
    if not labels:
        parts.append(_text(width / 2, height / 2, "no data", 12, "middle"))
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(title: str, counts: dict[str, int], width: int = 520, row_height: int = 18) -> str:
    """Horizontal bars for long labels (e.g. stage/reason), largest first as given."""
    labels, values = list(counts), list(counts.values())
    top, label_w, value_w = 28, 210, 40
    height = top + row_height * max(len(labels), 1) + 8
    peak = max(values, default=0) or 1
    plot_w = width - label_w - value_w
    parts = [_open(width, height, title)]
    for i, (label, value) in enumerate(zip(labels, values)):
        y = top + i * row_height
        bar_w = plot_w * value / peak
        parts.append(_text(label_w - 6, y + row_height * 0.7, _short(label, 32), 11, "end"))
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{bar_w:.1f}" height="{row_height - 4}" '
                     f'fill="{BAR_COLOUR}"><title>{escape(label)}: {value}</title></rect>')
        parts.append(_text(label_w + bar_w + 4, y + row_height * 0.7, str(value), 11, "start"))
    if not labels:
        parts.append(_text(width / 2, top + 12, "none", 12, "middle"))
    parts.append("</svg>")
    return "".join(parts)


def _open(width: int, height: int, title: str) -> str:
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{escape(title)}">' + _text(4, 16, title, 13, "start", bold=True))


def _text(x: float, y: float, text: str, size: int, anchor: str, bold: bool = False) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" fill="{TEXT_COLOUR}" '
            f'text-anchor="{anchor}"{weight}>{escape(text)}</text>')


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
