"""Trace formats: canonical geometry rendered into reasoning text, and read back from it.

A grounded trace is a *rendering* of the canonical geometry (absolute pixels of the original
image, see `synth.core.geometry`) in a format and a coordinate `Frame`:

- ``tvg`` ("Thinking with Visual Grounding"): one tag right after the phrase it grounds, holding
  every instance: ``the apples <point>[[12,40],[30,52]]</point>`` (points, for counting) or
  ``the cup <box>[[10,20,50,60]]</box>`` (boxes, for spatial questions). Always a list of lists.
- ``ivgr`` (iVGR): ``the ball <box>[50,80,120,150]</box>``, one tag per instance, the tags of one
  object written back to back; the whole text is ``<think>…</think><answer>…</answer>``. iVGR
  has no points, so ivgr renders boxes even when points are asked for.
- ``molmo``: the phrase itself is wrapped, ``<points x1="12.5" y1="40.1" x2=".." y2=".."
  alt="apples">apples</points>`` (one instance: ``<point x=".." y=".." alt="..">..</point>``).
  Molmo has no boxes, so molmo renders points even when boxes are asked for.
- ``qwen`` (Qwen2.5-VL / Qwen3-VL grounding JSON): a JSON list right after the phrase, inline
  rather than in a code fence so the sentence stays one line:
  ``the cups [{"bbox_2d": [10, 20, 50, 60], "label": "cups"}]`` or ``{"point_2d": [x, y], ...}``.
  The parser reads inline lists, bare objects and ```` ```json ```` fences alike.

Frames and precision: ``pixel`` (original pixels) and ``resized`` (pixels of a resized image,
Qwen2.5-VL's and iVGR's frame) and ``norm1000`` (Qwen3-VL) are written as integers; ``norm1``
with 3 decimals, ``norm100`` (Molmo) with 1. In an integer frame a box edge is rounded to the
nearest integer, while a point is written as the index of the cell that holds it (floor) and
read back as that cell's centre, so a pixel-centre point survives the pixel frame exactly and
never lands on a cell edge. Every round trip is exact to half a unit of the rendered precision.

Parsing never raises on model text. Offsets refer to the text as given. Grounded traces ground
inside their reasoning, so markup in think blocks counts; only for molmo and qwen, whose models
ground in their final answer, markup inside a closed think block is dropped as a draft when
markup also follows it. Code fences are looked into.
JSON is read strictly first, then repaired (trailing commas, single quotes, a truncated tail).
Phrases come from the markup where the format carries them (molmo ``alt``, qwen ``label``);
for tvg and ivgr they are guessed from the words just before the tag (up to four, after the
last determiner, number or clause break), which is a best effort.

Modules: `frames` (Frame, format names, Qwen's smart resize), `render` (render_trace), `scan`
(the markup found in a text), `parse` (parse_groundings, strip_groundings) and `lenient_json`
(parse_json_lenient). Import from the package; the names above are its interface.
"""

from synth.core.formats.frames import (
    FORMATS,
    FRAME_DECIMALS,
    FRAME_KINDS,
    Frame,
    format_name,
    parse_format_name,
    qwen_resized_frame,
    qwen_smart_resize,
)
from synth.core.formats.lenient_json import parse_json_lenient
from synth.core.formats.parse import PARSE_REASONS, Grounding, parse_groundings, strip_groundings
from synth.core.formats.render import render_trace

__all__ = [
    "FORMATS",
    "FRAME_DECIMALS",
    "FRAME_KINDS",
    "PARSE_REASONS",
    "Frame",
    "Grounding",
    "format_name",
    "parse_format_name",
    "parse_groundings",
    "parse_json_lenient",
    "qwen_resized_frame",
    "qwen_smart_resize",
    "render_trace",
    "strip_groundings",
]
