"""What model adapters load late: optional packages on first use, models once per worker.

An adapter is built cheaply where the pipeline is configured and shipped (pickled) to workers;
each worker loads its own model in `setup()`. `WorkerLocal` is the base that keeps the loaded
model, its processor, the torch module and caches tied to them out of the pickle. `to_device`
moves what a loaded processor made to the model's device.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, ClassVar

MODELS_PIP = "pip install 'synth[models]'"
TRANSFORMERS_PIP = "pip install 'synth[models]'  (transformers>=5)"


def require(module: str, pip: str, purpose: str) -> ModuleType:
    """Import an optional package or raise ImportError naming the `pip install` that fixes it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{purpose} needs the Python module {module!r} ({err}); install it with: {pip}") from err


def to_device(encoding: Any, device: str) -> dict[str, Any]:
    """A processor's output with every tensor in it moved to `device`."""
    return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in encoding.items()}


class WorkerLocal:
    """Base of adapters whose `setup()` loads a model once per worker.

    A subclass names in `worker_local` the attributes `setup()` fills (model, processor, the torch
    module, caches tied to the model) and calls `super().__init__()`. Those attributes start as
    None, and a pickled adapter carries None for them: a worker receives the recipe (paths, device,
    batch size), not the weights, and loads its own copy in `setup()`.
    """

    worker_local: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        for name in self.worker_local:
            setattr(self, name, None)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(dict.fromkeys(self.worker_local))
        return state
