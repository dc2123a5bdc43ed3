"""The Parquet schemas of rows and rejects, built from `schemas/v<N>.json` (the source of truth).

Writers always pass these schemas explicitly; nothing is inferred from data. The schema version
travels in every file's metadata under `synth.schema_version`, and `check_file_schema` refuses a
file of another version or a file that is not a synth shard with a message that says which.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from synth.errors import SynthError

SCHEMA_VERSION = 1
SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
METADATA_VERSION_KEY = b"synth.schema_version"
METADATA_KIND_KEY = b"synth.kind"
#: Hugging Face datasets reads its feature types (e.g. `Image`) from this schema-metadata key.
METADATA_HF_KEY = b"huggingface"

Kind = Literal["rows", "rejects"]

_SCALARS = {
    "string": pa.string(),
    "binary": pa.binary(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "timestamp_us_utc": pa.timestamp("us", tz="UTC"),
}


class SchemaError(SynthError, ValueError):
    """A file is not a synth shard, or is one of another schema version."""


def _to_arrow_type(spec: Any) -> pa.DataType:
    if isinstance(spec, str):
        if spec not in _SCALARS:
            raise ValueError(f"unknown type {spec!r} in schema; choices: {', '.join(_SCALARS)}")
        return _SCALARS[spec]
    if "struct" in spec:
        return pa.struct([_to_arrow_field(f) for f in spec["struct"]])
    if "list" in spec:
        return pa.list_(_to_arrow_type(spec["list"]), spec.get("size", -1))
    raise ValueError(f"cannot read type {spec!r} in schema")


def _to_arrow_field(spec: dict[str, Any]) -> pa.Field:
    meta = {"description": spec.get("description", "")}
    return pa.field(spec["name"], _to_arrow_type(spec["type"]), spec.get("nullable", True), meta)


@lru_cache(maxsize=None)
def load_contract(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    """The JSON contract of `version` as a dict."""
    path = SCHEMAS_DIR / f"v{version}.json"
    if not path.exists():
        raise SchemaError(f"no schema of version {version} (looked for {path.name} in schemas/)")
    return json.loads(path.read_text())


@lru_cache(maxsize=None)
def arrow_schema(kind: Kind, version: int = SCHEMA_VERSION) -> pa.Schema:
    """The explicit Arrow schema of `kind` ("rows" or "rejects"), with version metadata."""
    if kind not in ("rows", "rejects"):
        raise ValueError(f"unknown shard kind {kind!r}; choices: rows, rejects")
    contract = load_contract(version)
    fields = [_to_arrow_field(f) for f in contract[kind]]
    meta = {METADATA_VERSION_KEY: str(version).encode(), METADATA_KIND_KEY: kind.encode()}
    hf_features = contract.get("huggingface_features", {}).get(kind)
    if hf_features:
        meta[METADATA_HF_KEY] = json.dumps({"info": {"features": hf_features}}).encode()
    return pa.schema(fields, metadata=meta)


@lru_cache(maxsize=None)
def required_columns(kind: Kind, version: int = SCHEMA_VERSION) -> tuple[str, ...]:
    """Top-level columns of `kind` that must never be null.

    That is every column the contract marks `"nullable": false`, plus those marked
    `"required": true` (declared nullable in Arrow for a reader's sake, e.g. `image`).
    """
    if kind not in ("rows", "rejects"):
        raise ValueError(f"unknown shard kind {kind!r}; choices: rows, rejects")
    return tuple(
        f["name"]
        for f in load_contract(version)[kind]
        if not f.get("nullable", True) or f.get("required", False)
    )


def check_file_schema(schema: pa.Schema, where: str) -> Kind:
    """Return the kind of a synth shard from its schema; raise SchemaError naming what is wrong."""
    meta = schema.metadata or {}
    if METADATA_VERSION_KEY not in meta:
        raise SchemaError(f"{where}: not a synth shard (no {METADATA_VERSION_KEY.decode()} in its metadata)")
    version_text = meta[METADATA_VERSION_KEY].decode(errors="replace")
    if version_text != str(SCHEMA_VERSION):
        raise SchemaError(
            f"{where}: synth schema version {version_text}, this synth reads version {SCHEMA_VERSION}"
        )
    kind = meta.get(METADATA_KIND_KEY, b"").decode(errors="replace")
    if kind not in ("rows", "rejects"):
        raise SchemaError(f"{where}: unknown shard kind {kind!r}; expected rows or rejects")
    expected = arrow_schema(kind)  # type: ignore[arg-type]
    if not schema.remove_metadata().equals(expected.remove_metadata()):
        missing = sorted(set(expected.names) - set(schema.names))
        extra = sorted(set(schema.names) - set(expected.names))
        raise SchemaError(
            f"{where}: columns differ from schema v{SCHEMA_VERSION} {kind}: "
            f"missing {missing or 'none'}, unexpected {extra or 'none'}"
            + ("" if missing or extra else ", or a column has another type")
        )
    return kind  # type: ignore[return-value]
