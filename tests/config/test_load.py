"""Config loading: safe YAML, overrides, and errors that name the place, expectation and finding."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field

from synth.config.base import Resources, Strict
from synth.config.load import apply_overrides, config_sha256, load_config, read_yaml
from synth.errors import ConfigError


class TeacherSection(Strict):
    backend: Literal["vllm_server", "annotation"] = Field("vllm_server", description="backend")
    base_url: str | None = Field(None, description="server")
    k: int = Field(4, ge=1, description="samples")
    resources: Resources = Field(default_factory=Resources, description="resources")


class Cfg(Strict):
    name: str = Field("x", description="name")
    teacher: TeacherSection = Field(default_factory=TeacherSection, description="teacher")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_place_and_choices(tmp_path):
    path = _write(tmp_path, "teacher:\n  bas_url: http://x\n")
    with pytest.raises(ConfigError) as err:
        load_config(Cfg, path)
    message = str(err.value)
    assert "teacher.bas_url: unknown key" in message
    assert "base_url" in message and "backend" in message


def test_wrong_literal_names_choices_and_found(tmp_path):
    path = _write(tmp_path, "teacher:\n  backend: vlm\n")
    with pytest.raises(ConfigError, match=r"teacher.backend: expected 'vllm_server' or 'annotation'; found 'vlm'"):
        load_config(Cfg, path)


def test_wrong_type_and_range(tmp_path):
    path = _write(tmp_path, "teacher:\n  k: 0\n  resources:\n    batch_size: many\n")
    with pytest.raises(ConfigError) as err:
        load_config(Cfg, path)
    assert "teacher.k:" in str(err.value) and "found 0" in str(err.value)
    assert "teacher.resources.batch_size:" in str(err.value) and "'many'" in str(err.value)


def test_set_overrides_parse_yaml_scalars(tmp_path):
    path = _write(tmp_path, "teacher:\n  k: 2\n")
    cfg = load_config(Cfg, path, ["teacher.k=8", "teacher.base_url=http://127.0.0.1:8000/v1"])
    assert cfg.teacher.k == 8
    assert cfg.teacher.base_url == "http://127.0.0.1:8000/v1"


def test_set_without_equals_is_refused():
    with pytest.raises(ConfigError, match="expected dotted.key=value"):
        apply_overrides({}, ["teacher.k"])


def test_yaml_is_loaded_safely(tmp_path):
    path = _write(tmp_path, "name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(path)


def test_top_level_must_be_mapping(tmp_path):
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_yaml(_write(tmp_path, "- a\n- b\n"))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        read_yaml(tmp_path / "nope.yaml")


def test_hash_ignores_excluded_sections_only(tmp_path):
    base = load_config(Cfg, _write(tmp_path, "teacher:\n  k: 2\n"))
    more_actors = load_config(Cfg, _write(tmp_path, "teacher:\n  k: 2\n  resources:\n    actors: 4\n"))
    other_k = load_config(Cfg, _write(tmp_path, "teacher:\n  k: 3\n"))
    exclude = {"teacher": {"resources"}}
    assert config_sha256(base, exclude) == config_sha256(more_actors, exclude)
    assert config_sha256(base, exclude) != config_sha256(other_k, exclude)
