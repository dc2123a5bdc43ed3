"""Read a YAML config, apply `--set dotted.key=value` overrides, validate, explain errors.

YAML is read with `yaml.safe_load` (no object construction). Errors name the place (a dotted
path), what was expected, what was found and, where there are any, the choices.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from synth.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping in a YAML file; ConfigError when it is missing, malformed or not a mapping."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each `dotted.key=value` in a copy of `data`; values are parsed as YAML scalars."""
    data = json.loads(json.dumps(data))
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {override!r}: expected dotted.key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {override!r}: {part} is a value, not a section")
            node = child
        node[parts[-1]] = value
    return data


def validate(model: type[M], data: dict[str, Any], where: str) -> M:
    """Build `model` from `data`, turning pydantic's errors into one readable ConfigError."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = [_explain(model, err) for err in exc.errors()]
        raise ConfigError(f"{where}: invalid config\n  " + "\n  ".join(lines)) from None


def load_config(model: type[M], path: Path, overrides: list[str] | None = None) -> M:
    """Read, override and validate a config file."""
    data = apply_overrides(read_yaml(path), overrides or [])
    return validate(model, data, str(path))


def config_sha256(config: BaseModel, exclude: Any = None) -> str:
    """sha256 of the config's canonical JSON, without the sections in `exclude`."""
    dumped = config.model_dump(mode="json", exclude=exclude)
    return hashlib.sha256(json.dumps(dumped, sort_keys=True).encode()).hexdigest()


def _explain(model: type[BaseModel], err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    found = err.get("input")
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_at(model, err["loc"][:-1])
        choices = ", ".join(parent.model_fields) if parent else "?"
        return f"{loc}: unknown key; expected one of: {choices}"
    if kind == "literal_error":
        return f"{loc}: expected {err['ctx']['expected']}; found {found!r}"
    if kind == "missing":
        return f"{loc}: required, not given"
    return f"{loc}: {err['msg']}; found {found!r}"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that sits at `loc` inside `model`, following nested model fields."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """The model class inside Optional[...] / Union[...], else the annotation itself."""
    if get_origin(annotation) is None:
        return annotation
    for arg in get_args(annotation):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return annotation
