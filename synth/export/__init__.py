"""Shards written for trainers: SFT chat data, RL parquet, dual streams, numeric coordinates.

`export_output` reads the rows of a synth output, drops rows whose image is in an evaluation set
or duplicates an image of another source, renders each grounded trace in the chosen format and
frame from the canonical geometry, and writes one of the layouts of `synth.export.layouts`.
"""

from synth.export.hygiene import HygieneReport, load_exclusions, plan_hygiene
from synth.export.layouts import TARGETS
from synth.export.render import Coordinate, Rendered, RenderOptions, render_row
from synth.export.run import ExportReport, default_file_type, export_output

__all__ = [
    "TARGETS",
    "Coordinate",
    "ExportReport",
    "HygieneReport",
    "RenderOptions",
    "Rendered",
    "default_file_type",
    "export_output",
    "load_exclusions",
    "plan_hygiene",
    "render_row",
]
