"""The whole pipeline's config: one section per stage, plus output and runner.

Each stage module owns its section's model (`synth.stages.<stage>.<Stage>Config`); this module only
puts them together and says what the config hash covers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field

from synth.config.base import Strict
from synth.stages.annotate import AnnotateConfig
from synth.stages.extract import ExtractConfig
from synth.stages.ground import GroundConfig
from synth.stages.read import ReadConfig
from synth.stages.teach import TeachConfig


class OutputConfig(Strict):
    """Where and how shards are written."""

    dir: Path = Field(Path("runs/out"), description="output folder; relative to the working directory")
    # 32 items is a few shards for the demo and ~100 rows per shard for k=4 runs; each commit is a
    # resume point, so smaller loses less work to a crash and larger makes fewer files.
    commit_every: int = Field(32, ge=1, description="items per commit (one rows and one rejects shard)")


class RunnerConfig(Strict):
    """How the stages are executed."""

    kind: Literal["ray", "local"] = Field(
        "ray", description="ray: Ray Data actor pools (embedded or a cluster); local: this process, in order"
    )
    ray_address: Optional[str] = Field(None, description="a Ray cluster to join; None starts Ray embedded")
    # Ray Data lets a stage run ahead of a slower one until the blocks queued between them fill its
    # share of the object store: GBs on a big machine, most of them images the read stage decoded
    # long before the segmenter gets to them.
    object_store_mb: Optional[int] = Field(
        None, ge=1, description="cap on the object store memory the run's queued blocks take (MB); "
        "None: Ray Data's default, a share of the store"
    )


class RunConfig(Strict):
    """A pipeline: read -> teach -> extract -> ground -> annotate -> write."""

    name: str = Field("run", description="a name for logs and the manifest")
    source: ReadConfig = Field(description="what to read (the read stage)")
    teacher: TeachConfig = Field(description="who writes the traces (the teach stage)")
    extract: ExtractConfig = Field(default_factory=ExtractConfig, description="the extract stage")
    ground: GroundConfig = Field(default_factory=GroundConfig, description="the ground stage")
    annotate: AnnotateConfig = Field(default_factory=AnnotateConfig, description="the annotate stage")
    output: OutputConfig = Field(default_factory=OutputConfig, description="where shards go")
    runner: RunnerConfig = Field(default_factory=RunnerConfig, description="how stages run")


#: What does not change the data: excluded from the config hash, so row ids survive a move to a
#: cluster, a new output folder, another server address or other actor counts.
_TEACHER_TRANSPORT = {
    "resources", "base_url", "api_key", "python", "engine_args", "server_env", "port", "health_timeout_s",
    "request_timeout_s", "retries", "concurrency", "engine_batch",
}
HASH_EXCLUDE = {
    "output": True,
    "runner": True,
    "teacher": _TEACHER_TRANSPORT,
    **{section: {"resources"} for section in ("source", "extract", "ground", "annotate")},
}
