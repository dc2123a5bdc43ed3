"""Run the stages on Ray Data: each stage a `map_batches` over an actor pool sized by its resources.

This is the only module that imports ray. Records travel between stages pickled in a binary column,
so every stage sees exactly the objects the local runner gives it. Ray Data streams: the teacher and
the segmenter pools work at the same time on different items, and the driver commits finished
items as they arrive.

The items themselves come from one read task on the driver's node (`PendingItemsDatasource`) that
walks the source lazily and hands out a block per batch, under Ray Data's backpressure: the driver
never holds the input, and the first commit does not wait for the whole source to be listed.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from synth.adapters.lazy import MODELS_PIP, require
from synth.config.base import Resources
from synth.core.records import ItemRecord
from synth.errors import SynthError
from synth.runners.local import call_stage
from synth.stages.base import Stage

log = logging.getLogger(__name__)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise SynthError("the Ray runner needs Ray: pip install 'ray[data,default]'") from None
    return ray


def init_ray(address: str | None, quiet: bool) -> bool:
    """Join the cluster at `address` (or RAY_ADDRESS); otherwise start Ray embedded, sized to this machine.

    Returns whether this call connected (so the caller owns the shutdown).
    """
    ray = _ray()
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        log.info("joining the Ray cluster at %s", address)
        ray.init(address=address, log_to_driver=not quiet)
    else:
        ray.init(num_cpus=os.cpu_count() or 1, include_dashboard=False, log_to_driver=not quiet)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = not quiet
    return True


class _StageActor:
    """Holds one set-up stage in a Ray actor; converts batches of pickled records in and out."""

    def __init__(self, stage: Stage, threads: int | None = None):
        if threads:
            require("torch", MODELS_PIP, "resources.threads").set_num_threads(threads)
        self.stage = stage
        self.stage.setup()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if any(batch["fatal"]):  # the source or an earlier stage failed for good: pass it on untouched
            return batch
        records = [pickle.loads(blob) for blob in batch["record"]]
        try:
            out = call_stage(self.stage, records)
        except SynthError as exc:
            # In band, because Ray Data wraps a stage's exception and drops its cause: the driver
            # raises it as the stage said it, before committing anything of this batch.
            return _to_batch(records, str(exc) or type(exc).__name__)
        return _to_batch(out)


#: Target size of a Ray Data block: about one demo image with its records.
BLOCK_BYTES = 1 << 20
_BLOCK_SCHEMA = pa.schema([("item_id", pa.string()), ("record", pa.large_binary()), ("fatal", pa.string())])


def _to_batch(records: list[ItemRecord], fatal: str = "") -> dict[str, np.ndarray]:
    blobs = np.empty(len(records), dtype=object)
    blobs[:] = [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in records]
    return {
        "item_id": np.array([r.item.item_id for r in records], dtype=object),
        "record": blobs,
        "fatal": np.array([fatal] * len(records), dtype=object),
    }


def pending_items_datasource(batches: Iterable[list[ItemRecord]]) -> Any:
    """A Ray datasource of one read task that walks `batches` (picklable, re-iterable, read where
    the driver runs) and yields a block per batch. A source that fails for good (SynthError)
    yields one block that carries the message in band, as a failing stage does."""
    _ray()
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    def read() -> Iterator[pa.Table]:
        try:
            for records in batches:
                yield pa.table(_to_batch(records), schema=_BLOCK_SCHEMA)
        except SynthError as exc:
            yield pa.table({"item_id": [""], "record": [b""], "fatal": [str(exc)]}, schema=_BLOCK_SCHEMA)

    class PendingItemsDatasource(Datasource):
        def estimate_inmemory_data_size(self) -> None:
            return None  # unknown until the source is walked, which is the point

        def get_read_tasks(self, parallelism: int, per_task_row_limit=None, data_context=None) -> list:
            metadata = BlockMetadata(num_rows=None, size_bytes=None, input_files=None, exec_stats=None)
            return [ReadTask(read, metadata, per_task_row_limit=per_task_row_limit)]

        @property
        def supports_distributed_reads(self) -> bool:
            return False  # the source's files are where the driver runs

    return PendingItemsDatasource()


def check_pools_fit(pools: dict[str, Resources], cluster: dict[str, float]) -> None:
    """Refuse pools the cluster cannot hold all at once.

    Every stage's actor pool is fixed and streaming needs them alive together; when their CPUs or
    GPUs add up to more than the cluster has, Ray Data can start a later stage's actors first and
    then wait forever for a CPU an idle one holds.
    """
    for key, unit in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
        need = sum(r.actors * getattr(r, key) for r in pools.values())
        have = cluster.get(unit, 0.0)
        if need > have + 1e-9:
            asks = ", ".join(f"{name} {r.actors}×{getattr(r, key):g}" for name, r in pools.items() if getattr(r, key))
            raise SynthError(
                f"the stages' actor pools need {need:g} {unit} at once ({asks}) but the Ray cluster has "
                f"{have:g}: lower <stage>.resources.actors or .{key} (light stages run well on 0.25 CPU)"
            )


class RayExecutor:
    """Streams records through one actor pool per stage and yields finished batches to the driver."""

    def __init__(self, stages: list[Stage], resources: dict[str, Resources], commit_every: int,
                 address: str | None = None, quiet: bool = False, object_store_mb: int | None = None):
        self.stages = stages
        self.resources = resources
        self.commit_every = commit_every
        self.address = address
        self.quiet = quiet
        self.object_store_mb = object_store_mb

    def run(self, batches: Iterable[list[ItemRecord]]) -> Iterator[list[ItemRecord]]:
        """Yield finished batches of `batches`, which must be picklable and re-iterable (a read
        task walks it, see `pending_items_datasource`). Ray started (or joined) here is shut down
        when the run ends or fails, in order: an abandoned embedded Ray leaves agents behind that
        hold the caller's pipes."""
        connected = init_ray(self.address, self.quiet)
        try:
            yield from self._stream(batches)
        finally:
            if connected:
                _ray().shutdown()

    def _stream(self, batches: Iterable[list[ItemRecord]]) -> Iterator[list[ItemRecord]]:
        ray = _ray()
        from ray.data import ActorPoolStrategy

        pools = {s.name: self.resources.get(s.name, Resources()) for s in self.stages}
        check_pools_fit(pools, ray.cluster_resources())

        # Ray Data merges a task's output up to 128 MiB per block: the read task's first block would
        # wait for hundreds of items. Records are few and heavy (an image each); small blocks keep
        # them moving. This driver's Ray Data context is ours to set.
        ctx = ray.data.DataContext.get_current()
        ctx.target_max_block_size = BLOCK_BYTES
        # Set on every run, so a run without a cap does not inherit an earlier run's in this process.
        cap = self.object_store_mb * 2**20 if self.object_store_mb else None
        ctx.execution_options.resource_limits = ray.data.ExecutionResources.for_limits(object_store_memory=cap)
        ds = ray.data.read_datasource(pending_items_datasource(batches), num_cpus=0, override_num_blocks=1)
        for stage in self.stages:
            res = pools[stage.name]
            ds = ds.map_batches(
                _StageActor,
                fn_constructor_kwargs={"stage": stage, "threads": res.threads},
                batch_size=res.batch_size,
                compute=ActorPoolStrategy(size=res.actors),
                num_cpus=res.num_cpus,
                num_gpus=res.num_gpus,
                batch_format="numpy",
            )
        for batch in ds.iter_batches(batch_size=self.commit_every, batch_format="numpy"):
            fatal = next((str(f) for f in batch["fatal"] if f), "")
            if fatal:
                raise SynthError(fatal)
            yield [pickle.loads(blob) for blob in batch["record"]]

