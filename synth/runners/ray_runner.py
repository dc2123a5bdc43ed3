"""Run the stages on Ray Data: each stage a `map_batches` over an actor pool sized by its resources.

This is the only module that imports ray. Records travel between stages pickled in a binary column,
so every stage sees exactly the objects the local runner gives it. Ray Data streams: the teacher and
the segmenter pools work at the same time on different items, and the driver commits finished
items as they arrive.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

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

    def __init__(self, stage: Stage):
        self.stage = stage
        self.stage.setup()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = [pickle.loads(blob) for blob in batch["record"]]
        fatal = next((str(f) for f in batch["fatal"] if f), "")
        if fatal:  # an earlier stage failed for good: pass the batch on untouched
            return _to_batch(records, fatal)
        try:
            out = call_stage(self.stage, records)
        except SynthError as exc:
            # In band, because Ray Data wraps a stage's exception and drops its cause: the driver
            # raises it as the stage said it, before committing anything of this batch.
            return _to_batch(records, str(exc) or type(exc).__name__)
        return _to_batch(out)


def _to_batch(records: list[ItemRecord], fatal: str = "") -> dict[str, np.ndarray]:
    blobs = np.empty(len(records), dtype=object)
    blobs[:] = [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in records]
    return {
        "item_id": np.array([r.item.item_id for r in records], dtype=object),
        "record": blobs,
        "fatal": np.array([fatal] * len(records), dtype=object),
    }


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
                 address: str | None = None, quiet: bool = False):
        self.stages = stages
        self.resources = resources
        self.commit_every = commit_every
        self.address = address
        self.quiet = quiet

    def run(self, batches: Iterable[list[ItemRecord]]) -> Iterator[list[ItemRecord]]:
        """Yield finished batches. Ray started (or joined) here is shut down when the run ends or
        fails, in order: an abandoned embedded Ray leaves agents behind that hold the caller's pipes."""
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

        rows = [
            {"item_id": r.item.item_id, "record": pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL), "fatal": ""}
            for batch in batches
            for r in batch
        ]
        if not rows:
            return
        ds = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // 8))
        for stage in self.stages:
            res = pools[stage.name]
            ds = ds.map_batches(
                _StageActor,
                fn_constructor_kwargs={"stage": stage},
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

