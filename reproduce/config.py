"""Figure settings: frozen dataclasses whose fields say whether the paper STATED them.

A field is declared with `setting(...)`. Its metadata records
- `source`: "stated" (printed in the paper) or "not_stated" (our choice, overridable, recorded in meta.json),
- `size`: whether presets may override it (presets change sizes only, never code paths),
- `choices`: the allowed values of a string setting,
- `help`: one line shown in meta.json and `repro list`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from typing import Any, Mapping, Sequence


class ReproError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def setting(default: Any, *, stated: bool, size: bool = False, choices: Sequence[Any] | None = None,
            help: str = "", low: float | None = None, empty: str | None = None) -> Any:
    """Declare a config field with its provenance (stated / not stated).

    Numbers may not be negative; a size must be > 0 unless `low` allows less (e.g. low=0). A list that may be empty
    names the word that sets it so (`empty="none"`: --set lr_picks=none)."""
    meta = {"source": "stated" if stated else "not_stated", "size": size,
            "choices": tuple(choices) if choices else None, "help": help, "low": low, "empty": empty}
    return dataclasses.field(default=default, metadata=meta)


def like(cls: type, name: str, default: Any, *, stated: bool | None = None) -> Any:
    """Field `name` of config class `cls` with another default (same provenance, help and choices; `stated` overrides
    the provenance where the figure's paper states what its family's does not).

    A figure's config states only what differs from its family's base class:
    `dataset: str = like(CifarConfig, "dataset", "cifar100")`.
    """
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    meta = dict(f.metadata) if stated is None else {**f.metadata, "source": "stated" if stated else "not_stated"}
    return dataclasses.field(default=default, metadata=meta)


def from_values(cls: type, values: Mapping[str, Any]) -> Any:
    """Rebuild a config from meta.json values (lists back to tuples); fields it lacks keep their defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names})


def _types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_scalar(text: str, typ: type, key: str) -> Any:
    text = text.strip()
    if typ is bool:
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ReproError(f"--set {key}: expected true/false, got {text!r}")
    try:
        if typ is int:   # 1e8 or 2000.0 name an integer too; 2.5 does not
            as_float = float(text)
            if not as_float.is_integer():
                raise ValueError(text)
            return int(text) if text.lstrip("+-").isdigit() else int(as_float)
        return typ(text)
    except (ValueError, OverflowError):
        raise ReproError(f"--set {key}: expected {typ.__name__}, got {text!r}") from None


def parse_value(cls: type, key: str, text: str) -> Any:
    """Parse the string `text` as the declared type of field `key` of `cls`."""
    typ = _types(cls)[key]
    if typing.get_origin(typ) is tuple:
        inner = typing.get_args(typ)[0]
        empty = {f.name: f for f in dataclasses.fields(cls)}[key].metadata.get("empty")
        if empty is not None and text.strip() == empty:
            return ()
        parts = [p for p in text.split(",") if p.strip()]
        if not parts:
            raise ReproError(f"--set {key}: expected a comma-separated list{f' or {empty}' if empty else ''}, got "
                             f"{text!r}")
        return tuple(_parse_scalar(p, inner, key) for p in parts)
    return _parse_scalar(text, typ, key)


def _check(cls: type, key: str, value: Any) -> None:
    f = {f.name: f for f in dataclasses.fields(cls)}[key]
    choices = f.metadata.get("choices")
    values = value if isinstance(value, tuple) else (value,)
    if choices and any(v not in choices for v in values):
        raise ReproError(f"{key}={value!r} is not one of {', '.join(map(str, choices))}")
    typ = _types(cls)[key]
    base = typing.get_args(typ)[0] if typing.get_origin(typ) is tuple else typ
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if base not in (int, float) or not numbers:
        return
    low = f.metadata.get("low")
    if low is not None and min(numbers) < low:
        raise ReproError(f"{key}={value!r}: must be >= {low:g}")
    if low is None and f.metadata.get("size") and min(numbers) <= 0:
        raise ReproError(f"{key}={value!r}: a size must be > 0")
    if min(numbers) < 0:
        raise ReproError(f"{key}={value!r}: must not be negative")


def resolve(cls: type, preset: Mapping[str, Any], overrides: Sequence[str]) -> Any:
    """Build a config: dataclass defaults, then preset values, then `key=value` overrides."""
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = dict(preset)
    for item in overrides:
        if "=" not in item:
            raise ReproError(f"--set expects key=value, got {item!r}")
        key, text = item.split("=", 1)
        key = key.strip()
        if key not in names:
            raise ReproError(f"unknown setting {key!r} for {cls.__name__}; known: {', '.join(sorted(names))}")
        values[key] = parse_value(cls, key, text)
    for key, value in values.items():
        _check(cls, key, value)
    return cls(**values)


def describe(cfg: Any) -> dict[str, dict[str, Any]]:
    """Resolved config for meta.json: value, source (stated / not_stated), and help per field."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        out[f.name] = {"value": list(value) if isinstance(value, tuple) else value,
                       "source": f.metadata.get("source", "not_stated"),
                       "help": f.metadata.get("help", "")}
    return out


def size_fields(cls: type) -> set[str]:
    """Names of fields that presets are allowed to override."""
    return {f.name for f in dataclasses.fields(cls) if f.metadata.get("size")}


def stable_hash(obj: Any) -> str:
    """Short sha256 of a JSON-serialisable object (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
