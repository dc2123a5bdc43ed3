"""The command line as a user meets it: help, version, validate, and a run with no teacher."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from synth import __version__
from synth.config.run import RunConfig
from synth.runners.run import load_run_config

REPO = Path(__file__).resolve().parents[2]
SYNTH = str(Path(sys.executable).parent / "synth")


def _synth(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([SYNTH, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def test_help_lists_every_command():
    done = _synth("--help")
    assert done.returncode == 0
    for command in ("run", "validate", "inspect", "eval", "export"):
        assert command in done.stdout


def test_version():
    done = _synth("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"synth {__version__}"


@pytest.mark.parametrize("name", ["demo", "counting", "spatial"])
def test_every_pipeline_parses(name):
    cfg = load_run_config(REPO / "pipelines" / f"{name}.yaml", [])
    assert isinstance(cfg, RunConfig) and cfg.name == name


def test_validate_demo_passes():
    done = _synth("validate", "pipelines/demo.yaml")
    assert done.returncode == 0, done.stderr
    assert "valid" in done.stderr


def test_validate_names_a_bad_key_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "pipelines/demo.yaml").read_text().replace("backend: annotation", "backend: annotaton"))
    done = _synth("validate", str(bad))
    assert done.returncode == 2
    assert "teacher.backend" in done.stderr and "annotaton" in done.stderr
    assert "Traceback" not in done.stderr


def test_validate_names_a_missing_source(tmp_path):
    done = _synth("validate", "pipelines/counting.yaml", "--set", f"source.path={tmp_path / 'none.jsonl'}")
    assert done.returncode == 2
    assert "source.path" in done.stderr and "does not exist" in done.stderr


def test_validate_rejects_annotation_teacher_on_unannotated_source(tmp_path):
    done = _synth("validate", "pipelines/demo.yaml", "--set", "source.kind=folder", "--set", f"source.path={tmp_path}")
    assert done.returncode == 2
    assert "annotation teacher needs annotated items" in done.stderr


def test_dry_run_loads_no_model():
    start = time.monotonic()
    done = _synth("run", "pipelines/demo.yaml", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "dry run" in done.stderr
    assert time.monotonic() - start < 60


def test_counting_without_a_teacher_fails_fast_and_says_how_to_start_one(tmp_path):
    Image.new("RGB", (32, 24), "white").save(tmp_path / "a.png")
    manifest = tmp_path / "items.jsonl"
    manifest.write_text(json.dumps({"image": "a.png", "question": "How many cats?", "answer": "0"}) + "\n")
    start = time.monotonic()
    done = _synth(
        "run", "pipelines/counting.yaml", "--quiet", "--output", str(tmp_path / "out"),
        "--set", f"source.path={manifest}", "--set", "teacher.base_url=http://127.0.0.1:9/v1",
    )
    assert done.returncode == 2
    assert "no vLLM server answers" in done.stderr
    assert "--set teacher.base_url=" in done.stderr.replace("\n", "")
    assert "Traceback" not in done.stderr
    assert time.monotonic() - start < 60
