"""The read stage: items from a source, then each image loaded, checked and decoded upright.

`ReadStage.iter_items()` streams the source's items (sampled by `limit`, `seed`, `shuffle`,
`sample_fraction`); the runner wraps each in an `ItemRecord` and calls the stage on batches.
`__call__` loads every record's image and sets `image` ((H, W, 3) uint8 RGB, upright), `image_bytes`,
`image_format`, `width`, `height` and `image_sha256`, or a `Reject("read", reason, detail)`:
`bad_item` (the entry lacks a field or has a wrong type, or its annotations do not fit the image),
`image_missing`, `image_unreadable` (zero bytes, truncated, not an image, not a regular file),
`image_too_large` (more than `max_pixels`, more than `max_bytes`, or a side above `max_side` with
`oversize: reject`) and `path_outside_root`.

Frames and rules (detailed in `synth.sources.images`): the canonical frame is the upright image,
the EXIF orientation applied; a dataset's annotations are assumed to be in that frame. Alpha is
composited over white; 16-bit is scaled to 8 bits; an animated image gives its first frame. An
image with a side above `max_side` is downscaled to `max_side` on its longer side, aspect kept,
and its points, boxes and masks are scaled with it (`synth.sources.annotations`).
Image paths are relative to the source's image folder (a manifest's folder, the COCO image
folder, the image folder, the Parquet file's folder) and must resolve, symlinks followed, inside
`root` (default: that folder) unless `allow_outside_root`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, model_validator

from synth.config.base import Resources, Strict
from synth.core.records import Item, ItemRecord, Reject
from synth.sources import coco, parquet_images
from synth.sources.annotations import fit_annotations
from synth.sources.base import BadItem, SourceError
from synth.sources.coco import CocoOptions, iter_coco
from synth.sources.demo import DemoOptions, iter_demo
from synth.sources.folder import FolderOptions, iter_folder
from synth.sources.images import ReadFailure, decode_image, read_image_file
from synth.sources.manifest import ManifestOptions, iter_manifest, manifest_format
from synth.sources.parquet_images import ParquetOptions, iter_parquet_images
from synth.sources.sampling import sample_items
from synth.stages.base import RunContext

log = logging.getLogger(__name__)

SourceKind = Literal["manifest", "parquet", "coco", "folder", "demo"]


class ReadConfig(Strict):
    """What to read and how images are guarded. Relative paths are taken from the working directory."""

    # demo: the one source that needs no file, so a bare config runs offline.
    kind: SourceKind = Field("demo", description="source kind: manifest, parquet, coco, folder or demo")
    path: Optional[Path] = Field(
        None, description="manifest file, Parquet file or folder, COCO instances json, or image folder; not for demo"
    )
    # None: the folder image paths are relative to, the narrowest root that still works.
    root: Optional[Path] = Field(None, description="folder every image path must stay inside; None: the image folder")
    # False: a manifest from elsewhere must not make a run read /etc/passwd or a home directory.
    allow_outside_root: bool = Field(False, description="allow image paths that resolve outside root")
    limit: Optional[int] = Field(None, ge=1, description="read at most this many items; None: all")
    seed: int = Field(0, description="seed of sample_fraction and shuffle")
    shuffle: bool = Field(False, description="shuffle the items (a uniform random sample when limit is set)")
    sample_fraction: float = Field(1.0, gt=0.0, le=1.0, description="keep this share of items, chosen by a seeded hash")
    # Pillow's own default (~89.5 Mpx, 0.27 GB as RGB): above any camera's photo, far below a bomb.
    max_pixels: int = Field(89_478_485, ge=1, description="refuse images with more pixels (decompression-bomb guard)")
    # 256 MiB: no real photo is that big; a hostile multi-GB file is refused before it is read.
    max_bytes: int = Field(256 * 2**20, ge=1, description="refuse image files larger than this many bytes")
    # 4096: VLMs and SAM resize to 1-2k anyway; beyond, rows grow and nobody sees more.
    max_side: int = Field(4096, ge=16, description="longest side allowed; see oversize")
    # downscale keeps the item (geometry scaled along); reject is for sets that must stay pixel-exact.
    oversize: Literal["downscale", "reject"] = Field(
        "downscale", description="an image with a side above max_side: downscale to max_side, or reject"
    )
    manifest: ManifestOptions = Field(default_factory=ManifestOptions, description="options of kind manifest")
    parquet: ParquetOptions = Field(default_factory=ParquetOptions, description="options of kind parquet")
    coco: CocoOptions = Field(default_factory=CocoOptions, description="options of kind coco")
    folder: FolderOptions = Field(default_factory=FolderOptions, description="options of kind folder")
    demo: DemoOptions = Field(default_factory=DemoOptions, description="options of kind demo")
    resources: Resources = Field(default_factory=Resources, description="how the read stage runs on Ray")

    @model_validator(mode="after")
    def _path_fits_kind(self) -> "ReadConfig":
        if self.kind != "demo" and self.path is None:
            raise ValueError(f"source kind {self.kind!r} needs a path (source.path); only kind 'demo' reads none")
        return self


def source_problems(config: ReadConfig) -> list[str]:
    """What would stop the source from being read, found without reading it (for `synth validate`)."""
    if config.kind == "demo" or config.path is None:
        return []
    path, problems = Path(config.path), []
    if not path.exists():
        return [f"source.path: {path} does not exist"]
    if config.kind == "manifest":
        try:
            manifest_format(path, config.manifest)
        except SourceError as exc:
            problems.append(f"source.path: {exc}")
    if config.kind == "folder" and not (path / config.folder.questions).is_file():
        problems.append(f"source.folder.questions: {path / config.folder.questions} does not exist")
    if config.kind == "coco" and not coco.image_base(path, config.coco).is_dir():
        problems.append(f"source.coco.image_dir: {coco.image_base(path, config.coco)} is not a folder")
    return problems


class ReadStage:
    """Streams items from the configured source and loads their images (see the module docstring)."""

    name = "read"

    def __init__(self, config: ReadConfig, context: RunContext):
        self.config = config
        self.context = context

    def setup(self) -> None:
        """Nothing to load: decoding needs no model."""

    def iter_items(self) -> Iterator[Item]:
        """The source's items, sampled; lazy. Raises SourceError when the source cannot be read."""
        cfg = self.config
        return sample_items(self._source_items(), cfg.limit, cfg.seed, cfg.shuffle, cfg.sample_fraction)

    def _source_items(self) -> Iterator[Item]:
        cfg = self.config
        if cfg.kind == "demo":
            return iter_demo(cfg.demo)
        path = Path(cfg.path)  # type: ignore[arg-type] - the validator guarantees it
        readers = {
            "manifest": lambda: iter_manifest(path, cfg.manifest),
            "parquet": lambda: iter_parquet_images(path, cfg.parquet),
            "coco": lambda: iter_coco(path, cfg.coco),
            "folder": lambda: iter_folder(path, cfg.folder),
        }
        return readers[cfg.kind]()

    def image_base(self) -> Path:
        """The folder relative image paths are taken from."""
        cfg = self.config
        if cfg.kind == "demo" or cfg.path is None:
            return Path(".")
        path = Path(cfg.path)
        return {
            "manifest": lambda: path.parent,
            "parquet": lambda: parquet_images.image_base(path),
            "coco": lambda: coco.image_base(path, cfg.coco),
            "folder": lambda: path,
        }[cfg.kind]()

    def root(self) -> Path:
        """The folder image paths must stay inside (unless allow_outside_root)."""
        return Path(self.config.root) if self.config.root is not None else self.image_base()

    def __call__(self, batch: list[ItemRecord]) -> list[ItemRecord]:
        """Load each record's image; a per-record failure becomes `record.reject`, never an exception."""
        base, root = self.image_base(), self.root()
        for record in batch:
            if record.alive:
                self._read_one(record, base, root)
        return batch

    def _read_one(self, record: ItemRecord, base: Path, root: Path) -> None:
        item, cfg = record.item, self.config
        if isinstance(item, BadItem):
            record.reject = Reject("read", "bad_item", item.problem)
            return
        try:
            if item.image_bytes is not None:
                data = item.image_bytes
            elif item.image_path:
                data = read_image_file(item.image_path, base, root, cfg.allow_outside_root, cfg.max_bytes)
            else:
                raise ReadFailure("bad_item", f"item {item.item_id} has neither image bytes nor an image path")
            decoded = decode_image(data, cfg.max_pixels, cfg.max_side, cfg.oversize)
            record.item = fit_annotations(item, decoded)
        except ReadFailure as failure:
            record.reject = Reject("read", failure.reason, failure.detail)
            return
        if decoded.scale != (1.0, 1.0):
            log.debug("downscaled %s from %s to %s", item.item_id, decoded.source_size, decoded.array.shape[1::-1])
        record.image = decoded.array
        record.image_bytes = decoded.data
        record.image_format = decoded.format
        record.height, record.width = decoded.array.shape[:2]
        record.image_sha256 = hashlib.sha256(decoded.data).hexdigest()
