"""An output folder written by the real ShardWriter, holding rows with known geometry."""

import pytest

from synth.core.shards import ShardWriter
from tests.rewards.factory import png_bytes, three_discs_row, two_boxes_row

EVAL_IMAGE = png_bytes(48, 64, seed=99)
SHARED_IMAGE = png_bytes(48, 64, seed=7)


def output_rows() -> list[dict]:
    """Rows of one output: two plain rows, one image reached through two sources, one eval image."""
    return [
        three_discs_row("r1-discs"),
        two_boxes_row("r2-boxes"),
        three_discs_row("r3-shared-a", source="countbench", image=SHARED_IMAGE),
        three_discs_row("r4-shared-b", source="pixmo", image=SHARED_IMAGE),        # same image, later id
        three_discs_row("r5-shared-a2", source="countbench", image=SHARED_IMAGE),  # same source: kept
        three_discs_row("r6-eval", image=EVAL_IMAGE),
    ]


@pytest.fixture
def output_dir(tmp_path):
    rows = output_rows()
    writer = ShardWriter(tmp_path / "out", "c" * 64)
    writer.commit(rows[:3], [], [r["item_id"] for r in rows[:3]])
    writer.commit(rows[3:], [], [r["item_id"] for r in rows[3:]])
    return tmp_path / "out"
