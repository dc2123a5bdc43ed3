"""Teacher faults in real runs: `synth run pipelines/counting.yaml` (local runner, vllm_server
teacher, parser extraction, annotation proposals grounded by the real MobileSAM) against
`FaultyOpenAIServer`, which answers 500s, hangs, garbage, nonsense, slowly, or dies.

What a user must see: faults within the retry bound cost nothing; faults beyond it become rejects
with the right reason and the run completes (hostile entries beside them are refused at read and
accounted for too); a dead server stops the run with a clear message,
what was committed stays intact, and a rerun against a healthy server ends equal to a clean run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.reliability.faulty_server import FaultyOpenAIServer, ScriptedItem
from tests.fixtures.runs import (
    check_output,
    disc_manifest,
    manifest_of,
    output_rows,
    reject_keys,
    rejects_by_item,
    synth_run,
)
from tests.sources.imagefiles import png_bytes, png_header_only, rgb_array

pytestmark = [pytest.mark.models, pytest.mark.slow]

RETRIES = 2
TIMEOUT_S = 2.0


def _sets(manifest: Path, server: FaultyOpenAIServer, commit_every: int) -> list[str]:
    return [
        f"source.path={manifest}", f"teacher.base_url={server.base_url}", "teacher.model=null", "teacher.k=2",
        f"teacher.request_timeout_s={TIMEOUT_S}", f"teacher.retries={RETRIES}", "extract.backend=parser",
        "ground.sources=[annotation]", "ground.segmenter={backend: mobile_sam}", f"output.commit_every={commit_every}",
    ]


def _scripted(entries: list[dict], actions: list[list]) -> list[ScriptedItem]:
    return [ScriptedItem(e["question"], e["label"], e["answer"], list(a)) for e, a in zip(entries, actions)]


def _add_hostile_entries(folder: Path) -> dict[str, str]:
    """Append entries a read must refuse (without asking the teacher) to the manifest; returns
    their ids and the read reject reason each must get."""
    outside = folder.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.png").write_bytes(png_bytes(rgb_array(9, 9)))
    files = {"zero.png": b"", "truncated.png": png_bytes(rgb_array(200, 150))[:300],
             "bomb.png": png_header_only(100_000, 100_000), "text.png": b"not a picture"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    os.symlink(outside / "secret.png", folder / "link_out.png")
    os.mkfifo(folder / "fifo.png")  # reading it would block forever
    expected = {"zero.png": "image_unreadable", "truncated.png": "image_unreadable", "bomb.png": "image_too_large",
                "text.png": "image_unreadable", "link_out.png": "path_outside_root", "fifo.png": "image_unreadable",
                "../../etc/passwd": "path_outside_root", "/etc/passwd": "path_outside_root"}
    entries = [{"id": f"hostile-{i}", "image": image, "question": f"How many red discs are in hostile {i}?",
                "answer": 1, "label": "red disc"} for i, image in enumerate(expected)]
    entries.append({"id": "hostile-no-answer", "image": "zero.png", "question": "How many?"})
    with open(folder / "items.jsonl", "a") as manifest:
        manifest.writelines(json.dumps(e) + "\n" for e in entries)
    return {**{f"hostile-{i}": reason for i, reason in enumerate(expected.values())}, "hostile-no-answer": "bad_item"}


def _rows_per_item(out: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for row in output_rows(out).values():
        found.setdefault(row["item_id"], []).append(row)
    return found


def test_faults_within_bounds_are_retried_and_beyond_become_rejects(tmp_path):
    entries = disc_manifest(tmp_path / "data", [2, 3, 1, 2, 3, 2])
    hostile = _add_hostile_entries(tmp_path / "data")  # refused at read: the teacher never sees them
    actions = [
        ["500", "500", "ok"],        # recovers on the last retry
        ["hang"],                    # never answers: timeout on every try
        ["garbage"],                 # 200 with a body that is not JSON, every time
        ["nonsense"],                # well-formed, but no answer in any trace
        [("slow", 0.8)],             # slow but within the timeout
        ["no_choices", "ok"],        # one malformed answer, then a good one (sample 1 counts wrong)
    ]
    items = _scripted(entries, actions)
    items[5].wrong_sample = 1
    out = tmp_path / "out"
    with FaultyOpenAIServer(items) as server:
        done = synth_run("pipelines/counting.yaml", out, _sets(tmp_path / "data" / "items.jsonl", server, 8))
    assert "Traceback" not in done.stderr

    ids = [e["id"] for e in entries]
    # Ids are the manifest's own; every item read is a row or a reject, and every count adds up.
    summary = check_output(out, set(ids) | set(hostile))
    read = next(line for line in summary["stages"] if line["stage"] == "read")
    assert (read["in"], read["out"]) == (len(ids) + len(hostile), len(ids))
    assert set(server.requests) == {e["question"] for e in entries}, "the teacher was asked about refused items"
    asked = {e["id"]: server.requests[e["question"]] for e in entries}
    assert asked == {ids[0]: 3, ids[1]: RETRIES + 1, ids[2]: RETRIES + 1, ids[3]: 1, ids[4]: 1, ids[5]: 2}

    rows, rejects = _rows_per_item(out), rejects_by_item(out)
    assert {i: len(r) for i, r in rows.items()} == {ids[0]: 2, ids[4]: 2, ids[5]: 1}
    assert rejects == {
        **{item_id: [("read", reason)] for item_id, reason in hostile.items()},
        ids[1]: [("teach", "teacher_timeout")],
        ids[2]: [("teach", "teacher_error")],
        ids[3]: [("teach", "answer_unparseable")] * 2,
        ids[5]: [("teach", "answer_wrong")],
    }
    for item_id, item_rows in rows.items():
        count = next(e["answer"] for e in entries if e["id"] == item_id)
        for row in item_rows:
            assert row["trace"].rstrip().endswith(f"<answer>{count}</answer>")
            assert [len(obj["instances"]) for obj in row["objects"]] == [count], "grounding lost a disc"


@pytest.fixture(scope="module")
def three_items(tmp_path_factory) -> tuple[Path, list[dict]]:
    folder = tmp_path_factory.mktemp("three")
    return folder / "items.jsonl", disc_manifest(folder, [2, 3, 1])


@pytest.fixture(scope="module")
def clean_run(three_items, tmp_path_factory) -> Path:
    manifest, entries = three_items
    out = tmp_path_factory.mktemp("clean") / "out"
    with FaultyOpenAIServer(_scripted(entries, [["ok"]] * 3)) as server:
        synth_run("pipelines/counting.yaml", out, _sets(manifest, server, 1))
    return out


@pytest.fixture(scope="module")
def server_death(three_items, tmp_path_factory):
    """A run whose server dies at the third item's request, after two items were committed."""
    manifest, entries = three_items
    out = tmp_path_factory.mktemp("death") / "out"
    with FaultyOpenAIServer(_scripted(entries, [["ok"], ["ok"], ["die"]])) as server:
        done = synth_run("pipelines/counting.yaml", out, _sets(manifest, server, 1), expect=None)
    return out, done, entries


def test_a_dead_server_stops_the_run_and_a_rerun_resumes_to_the_clean_result(server_death, clean_run, three_items):
    out, done, entries = server_death
    assert done.returncode != 0, "the run went on without its teacher"
    committed = {i for s in manifest_of(out)["shards"] for i in s["item_ids"]}
    assert committed == {entries[0]["id"], entries[1]["id"]}, "the items done before the death were not kept"
    assert not [p.name for p in out.iterdir() if p.suffix == ".tmp"]

    with FaultyOpenAIServer(_scripted(entries, [["ok"]] * 3)) as healthy:
        synth_run("pipelines/counting.yaml", out, _sets(three_items[0], healthy, 1))
        # The rerun asks only for the item that was not committed.
        assert sum(healthy.requests.values()) == 1
    check_output(out, {e["id"] for e in entries})
    assert output_rows(out) == output_rows(clean_run)
    assert reject_keys(out) == reject_keys(clean_run)


def test_a_dead_server_is_reported_in_one_clear_message(server_death):
    out, done, _ = server_death
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "is gone" in done.stderr and "rerun" in done.stderr


@pytest.mark.ray
def test_a_dead_server_under_ray_is_reported_in_one_clear_message(three_items, tmp_path):
    manifest, entries = three_items
    out = tmp_path / "out"
    ray_sets = ["teacher.resources.batch_size=1", "ground.resources={batch_size: 1, actors: 1, num_cpus: 1}"]
    with FaultyOpenAIServer(_scripted(entries, [["ok"], ["die"], ["ok"]])) as server:
        done = synth_run("pipelines/counting.yaml", out, [*_sets(manifest, server, 1), *ray_sets], runner="ray",
                         expect=None)
    assert "is gone" in done.stderr and "rerun" in done.stderr
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
