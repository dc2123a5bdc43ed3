"""Base pieces every stage config uses: strict models and a resources block."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """A config model that refuses unknown keys and never coerces silently."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Resources(Strict):
    """How a stage runs on Ray: kept apart from what it does."""

    batch_size: int = Field(8, ge=1, description="records per call; 8 keeps batches small for images")
    actors: int = Field(1, ge=1, description="actor pool size; 1 suits a 2-core machine")
    num_cpus: float = Field(1.0, ge=0, description="CPUs reserved per actor")
    num_gpus: float = Field(0.0, ge=0, description="GPUs reserved per actor; set 1 for model stages on GPU")
    # Ray starts a worker with as many torch threads as its num_cpus: a 1-CPU actor runs its model
    # on one core even where the other stages leave the rest of the machine idle.
    threads: int | None = Field(
        None, ge=1, description="torch threads in each actor (CPU models); None: Ray's default, num_cpus"
    )
