"""Renders show the image with masks, boxes and points, and the grounded trace under it."""

from __future__ import annotations

import base64
import io
import re

import numpy as np
from PIL import Image

from synth.core.rows import record_to_rows
from synth.core.shards import load_output
from synth.inspect.render import PALETTE, render_row, sample_indices
from synth.inspect.report import write_report
from synth.inspect.summary import summarize
from synth.inspect.validate import validate_output
from tests.inspect.disc_rows import CONTEXT, SEGMENTER, disc_record

SIZE = 640  # 64x48 image -> scale 10, image area 640x480


def _row(**changes):
    row = record_to_rows(disc_record("a", n=2), CONTEXT, SEGMENTER)[0][0]
    row.update(changes)
    return row


def test_render_is_size_wide_with_the_scaled_image_above_the_text():
    picture = np.asarray(render_row(_row(), SIZE))
    assert picture.shape[1] == SIZE and picture.shape[0] > 480 + 40
    background = picture[470, 600]
    assert tuple(background) == (90, 90, 90)  # grey image background, unmasked, scaled x10
    text_area = picture[490:]
    assert (text_area.min(axis=2) < 100).sum() > 200  # dark glyphs of the trace are drawn


def test_masks_are_translucent_and_boxes_and_points_in_the_object_colour():
    picture = np.asarray(render_row(_row(), SIZE)).astype(int)
    colour = np.array(PALETTE[0])
    disc = np.array([220, 40, 40])
    # Disc 0 spans pixels 3..13 (box [3, 3, 14, 14]); a pixel inside it, away from box and point.
    inside = picture[65, 55]
    assert np.abs(inside - colour).sum() > 10 and np.abs(inside - disc).sum() > 10  # a blend of both
    assert np.abs(picture[30, 80] - colour).sum() < 5  # the box's top edge at y = 3 * 10
    point = picture[85, 85]  # the point (8.5, 8.5) scaled: a white ring around the object colour
    assert np.abs(point - colour).sum() < 5
    assert (picture[78:92, 78:92] == 255).all(axis=2).any()


def test_trace_lines_wrap_and_undecodable_images_still_render():
    long_trace = " ".join(["word"] * 400) + " " + "x" * 500
    picture = render_row(_row(grounded_trace=long_trace, image={"bytes": b"junk", "path": ""}), SIZE)
    assert picture.width == SIZE and picture.height > 480 + 15 * 20


def test_sample_indices_spread_over_the_rows():
    assert sample_indices(10, 3) == [0, 4, 9]
    assert sample_indices(3, 10) == [0, 1, 2]
    assert sample_indices(0, 4) == [] and sample_indices(5, 1) == [0]


def test_report_is_one_self_contained_page(disc_output, tmp_path):
    output = load_output(disc_output)
    path = write_report(output, summarize(output), tmp_path / "r" / "report.html", samples=2,
                        problems=validate_output(output))
    page = path.read_text()
    assert not re.search(r"https?://", page)
    assert "<script" not in page and "<link" not in page
    assert page.count("<svg") == 5 and "every row keeps the contract" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 2
    assert Image.open(io.BytesIO(base64.b64decode(images[0]))).width == 640
    assert "ground/count_mismatch" in page
