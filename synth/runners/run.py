"""The driver of `synth run`: config in, stages built, records executed, shards committed.

The driver is the only writer. It commits finished items in batches; each commit writes a rows
shard and a rejects shard and then the manifest, which is the commit point. A rerun with the same
config and output skips the items the manifest lists as done, so a killed run resumes with no
duplicate and no gap.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from synth import __version__
from synth.config.load import config_sha256, load_config
from synth.config.run import HASH_EXCLUDE, RunConfig
from synth.core.records import ItemRecord
from synth.core.rows import record_to_rows
from synth.core.shards import ShardWriter
from synth.runners.local import LocalExecutor
from synth.runners.progress import RunProgress
from synth.runners.summary import Summary
from synth.runners.teacher_service import serving_teacher
from synth.stages.annotate import AnnotateStage
from synth.stages.base import RunContext, Stage
from synth.stages.extract import ExtractStage
from synth.stages.extract import validate_prompts as validate_extract_prompts
from synth.stages.ground import GroundStage
from synth.stages.ground import validate_prompts as validate_ground_prompts
from synth.stages.read import ReadStage, source_problems
from synth.stages.teach import TeachStage
from synth.stages.teach import validate_prompts as validate_teach_prompts

log = logging.getLogger(__name__)


def load_run_config(
    path: Path,
    overrides: list[str],
    output: Path | None = None,
    runner: str | None = None,
    ray_address: str | None = None,
) -> RunConfig:
    """Read a pipeline config with its `--set` overrides and the CLI's own options applied."""
    extra = list(overrides)
    if output is not None:
        extra.append(f"output.dir={output}")
    if runner is not None:
        extra.append(f"runner.kind={runner}")
    if ray_address:
        extra.append(f"runner.ray_address={ray_address}")
    return load_config(RunConfig, path, extra)


def validate_run_config(cfg: RunConfig) -> list[str]:
    """Problems a run would hit before loading any model: prompt placeholders, stage inputs."""
    prompts = RunContext().prompts_dir
    problems = [
        *source_problems(cfg.source),
        *validate_teach_prompts(cfg.teacher, prompts),
        *validate_extract_prompts(cfg.extract, prompts),
        *validate_ground_prompts(cfg.ground, prompts),
    ]
    unannotated = cfg.source.kind in ("parquet", "folder")
    if cfg.teacher.backend == "annotation" and unannotated:
        problems.append(
            f"teacher.backend: the annotation teacher needs annotated items; source.kind "
            f"{cfg.source.kind!r} carries no points, boxes or masks (use manifest, coco or demo)"
        )
    if unannotated and cfg.ground.sources == ["annotation"]:
        problems.append(
            f"ground.sources: only 'annotation', but source.kind {cfg.source.kind!r} has no annotations; "
            "add teacher_points, detector or text_sam"
        )
    needs_model = cfg.extract.backend == "teacher" or "teacher_points" in cfg.ground.sources
    if needs_model and cfg.teacher.backend != "vllm_server":
        problems.append(
            "teacher.backend: extract.backend=teacher and ground source teacher_points ask a model; "
            f"the {cfg.teacher.backend!r} teacher cannot answer them (use vllm_server)"
        )
    return problems


def build_stages(cfg: RunConfig, context: RunContext) -> list[Stage]:
    """The stages of a run, in order. Cheap: nothing is loaded until `setup()`."""
    return [
        ReadStage(cfg.source, context),
        TeachStage(cfg.teacher, context),
        ExtractStage(cfg.extract, context),
        GroundStage(cfg.ground, context),
        AnnotateStage(cfg.annotate, context),
    ]


def run_pipeline(cfg: RunConfig, quiet: bool = False, overwrite: bool = False) -> Summary:
    """Run (or resume) a pipeline and return its summary, which also lands in the output folder."""
    sha = config_sha256(cfg, HASH_EXCLUDE)
    out = Path(cfg.output.dir)
    context = RunContext(config_sha256=sha, output_dir=out, synth_version=__version__)
    writer = ShardWriter.open(out, sha, config=cfg.model_dump(mode="json"), overwrite=overwrite)
    summary = Summary.from_dict(writer.summary)
    if writer.done_item_ids:
        log.info("resuming: %d items already done in %s", len(writer.done_item_ids), out)
    with serving_teacher(cfg.teacher, context) as teacher_cfg:
        stages = build_stages(cfg.model_copy(update={"teacher": teacher_cfg}), context)
        _execute(cfg, stages, context, writer, summary, quiet)
    _write_summary(out, summary)
    return summary


def _execute(
    cfg: RunConfig, stages: list[Stage], context: RunContext, writer: ShardWriter, summary: Summary, quiet: bool
) -> None:
    """Stream the pending items through the stages and commit each finished batch."""
    read, ground = stages[0], stages[3]
    batches = PendingBatches(read, frozenset(writer.done_item_ids), cfg.output.commit_every)
    if next(iter(batches), None) is None:  # everything is done: load no model, start no Ray
        return
    segmenter = ground.describe()
    with RunProgress([s.name for s in stages], quiet) as progress:
        executor = _executor(cfg, stages, progress, quiet)
        # closing: a failed commit ends the executor (its stages, its Ray) before the error leaves.
        with contextlib.closing(executor.run(batches)) as finished:
            for records in finished:
                rows, rejects = [], []
                for record in records:
                    r, j = record_to_rows(record, context, segmenter)
                    rows += r
                    rejects += j
                summary.add(records, len(rows), len(rejects))
                writer.commit(rows, rejects, [r.item.item_id for r in records], summary=summary.to_dict())
                progress.committed(len(records), len(rows), len(rejects), summary.items)


def _executor(cfg: RunConfig, stages: list[Stage], progress: RunProgress, quiet: bool):  # noqa: ANN202
    if cfg.runner.kind == "local":
        return LocalExecutor(stages, on_stage_done=progress.stage_done)
    from synth.runners.ray_runner import RayExecutor

    resources = {s.name: getattr(cfg, section).resources for s, section in zip(stages, _SECTIONS)}
    return RayExecutor(stages, resources, cfg.output.commit_every, cfg.runner.ray_address, quiet,
                       object_store_mb=cfg.runner.object_store_mb)


_SECTIONS = ("source", "teacher", "extract", "ground", "annotate")


@dataclass(frozen=True)
class PendingBatches:
    """The items a run has still to do, as batches of records, read lazily from the source.

    Re-iterable and picklable, so a runner may read the source where it likes: the local runner
    in this process, the Ray runner inside a read task on the driver's node.
    """

    read: ReadStage
    done: frozenset[str]
    size: int

    def __iter__(self) -> Iterator[list[ItemRecord]]:
        pending = (ItemRecord(item=i) for i in self.read.iter_items() if i.item_id not in self.done)
        while batch := list(itertools.islice(pending, self.size)):
            yield batch


def _write_summary(out: Path, summary: Summary) -> None:
    from rich.console import Console

    (out / "summary.json").write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    console = Console(record=True, width=120, file=io.StringIO())
    console.print(summary.rich_table())
    (out / "summary.txt").write_text(console.export_text())
