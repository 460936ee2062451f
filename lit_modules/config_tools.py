"""Frozen-dataclass configs: type checking, dotted overrides, hashing.

Each package owns the config of what it builds (`ModelConfig` here, `DataConfig` in datamodules, the
run config in ablations).  These helpers are shared so that every config validates its fields the same
way, accepts the strings that come from a command line, and rejects unknown keys (as init2winit does).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import types
import typing
from typing import Any, Mapping

from .registry import ConfigError, Registry

_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Return `value` as type `tp` (strings from the command line included) or raise ConfigError."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return coerce(value, inner[0], key)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.strip("()[] ").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a sequence, got {value!r}")
        return tuple(coerce(v, args[0], key) for v in value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        raise ConfigError(f"{key}: expected a {_type_name(tp)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
    elif tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                pass
        if number is not None:
            check_finite(key, number)
            return number
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"{key}: unsupported config field type {tp!r}")
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def validate_fields(cfg: Any) -> None:
    """Coerce every field of a frozen dataclass to its annotated type (call from __post_init__)."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        object.__setattr__(cfg, f.name, coerce(getattr(cfg, f.name), hints[f.name], f.name))


def check_choice(key: str, value: Any, registry: Registry) -> None:
    try:
        registry.check(value)
    except ConfigError as e:
        raise ConfigError(f"{key}: {e}") from None


def check_finite(key: str, value: float) -> None:
    """NaN passes every comparison and inf every lower bound: both are refused before any range check."""
    if not math.isfinite(value):
        raise ConfigError(f"{key}: {value!r} is not a finite number; NaN and infinity are not valid settings")


def check_range(key: str, value: float, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> None:
    """Raise unless low <= value <= high (with open ends where asked)."""
    check_finite(key, value)
    bad = (low is not None and (value < low or (low_open and value == low))) or \
          (high is not None and (value > high or (high_open and value == high)))
    if bad:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open else '['}{lo}, {hi}{')' if high_open else ']'}"
        raise ConfigError(f"{key}: {value!r} is out of range; it must lie in {interval}")


def leaf_keys(cfg: Any, prefix: str = "") -> list[str]:
    """Every dotted key that `override` accepts for this config."""
    keys = []
    for f in dataclasses.fields(cfg):
        sub = getattr(cfg, f.name)
        if dataclasses.is_dataclass(sub):
            keys += leaf_keys(sub, f"{prefix}{f.name}.")
        else:
            keys.append(prefix + f.name)
    return keys


def _flatten(changes: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in changes.items():
        if not isinstance(k, str):
            raise ConfigError(f"config keys must be strings, got {k!r}")
        if isinstance(v, Mapping):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[prefix + k] = v
    return flat


def override(cfg: Any, changes: Mapping[str, Any], _prefix: str = "") -> Any:
    """Copy of `cfg` with dotted keys replaced ({"optim.lr": 0.1}); unknown keys raise at once.

    A key may also name a whole sub-config, given as an instance or as a dict of its fields.
    """
    names = {f.name for f in dataclasses.fields(cfg)}
    updates: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in _flatten(changes).items():
        head, _, rest = key.partition(".")
        if head not in names:
            valid = ", ".join(leaf_keys(cfg, _prefix))
            raise ConfigError(f"unknown config key {_prefix + key!r}; valid keys: {valid}")
        sub = getattr(cfg, head)
        if rest and not dataclasses.is_dataclass(sub):
            raise ConfigError(f"unknown config key {_prefix + key!r}: {_prefix + head!r} has no sub-keys")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            updates[head] = value
    for head, sub_changes in nested.items():
        base = updates.get(head, getattr(cfg, head))
        updates[head] = override(base, sub_changes, f"{_prefix}{head}.")
    try:
        return dataclasses.replace(cfg, **updates)
    except ConfigError as e:
        raise ConfigError(f"{_prefix}{e}") from None


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready nested dict of a config (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def flat_dict(cfg: Any) -> dict[str, Any]:
    """{"optim.lr": 0.1, ...}: the config as dotted leaf keys."""
    return {k: _get(cfg, k) for k in leaf_keys(cfg)}


def _get(cfg: Any, key: str) -> Any:
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return list(cfg) if isinstance(cfg, tuple) else cfg


def config_hash(cfg: Any, length: int = 12) -> str:
    """Content address of a config: fields marked metadata={"hash": False} (paths, display) are left out."""
    def strip(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj):
            return {f.name: strip(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                    if f.metadata.get("hash", True)}
        return list(obj) if isinstance(obj, tuple) else obj
    blob = json.dumps(strip(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]
