"""``POST /sim/config``: a configuration document checked like an API request, field by field, then applied.

Nothing is applied unless the whole document is valid; each problem is a ``ValueError`` naming the field
(``faults.http_500``) and what it must be. Document::

    {"faults": {kind: rate 0–1, "slow_seconds": s ≥ 0, "actions": [names] | null},
     "plan": {action: [kinds]}, "service_times": {req_key: median | [median, sigma]},
     "queue_time": s, "quotas": {"submit_qps": > 0, "max_unfinished": int ≥ 0, "get_result_qps": > 0},
     "max_video_bytes": int > 0, "task_ttl": s > 0 (a task answers ``expired`` this long after its submit),
     "iva_callback": URL | null (callbacks of every IVA TaskID), "iva_callbacks": {TaskID: URL | null},
     "iva_task_ids": [TaskID] | null (only these are accepted; null: any), "iva_service_time": s ≥ 0}
"""

from __future__ import annotations

import math
from typing import Any

from ._engine import Engine
from ._model import Faults, ServiceTime

__all__ = ["apply_config", "check_config", "check_url"]

_TOP = ("faults", "plan", "service_times", "queue_time", "quotas", "max_video_bytes", "task_ttl", "iva_callback",
        "iva_callbacks", "iva_task_ids", "iva_service_time")


def _number(value: Any, name: str, *, low: float = 0.0, high: float = math.inf, strict_low: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r:.60}")
    if value < low or (strict_low and value == low) or value > high:
        lo = f"> {low:g}" if strict_low else f">= {low:g}"
        raise ValueError(f"{name} must be {lo}" + (f" and <= {high:g}" if high < math.inf else "") + f", got {value!r}")
    return float(value)


def _integer(value: Any, name: str, *, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r:.60}")
    return value


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def _strings(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a JSON array of strings, got {value!r:.60}")
    return value


def _faults(conf: Any) -> Faults:
    f = _object(conf, "faults")
    new = Faults()
    for key, value in f.items():
        name = f"faults.{key}"
        if key in Faults.KINDS:
            setattr(new, key, _number(value, name, high=1.0))
        elif key == "slow_seconds":
            new.slow_seconds = _number(value, name, high=3600.0)
        elif key == "actions":
            new.actions = None if value is None else frozenset(_strings(value, name))
        else:
            raise ValueError(f"{name} is not a fault setting; one of {', '.join((*Faults.KINDS, 'slow_seconds', 'actions'))}")
    return new


def _plan(conf: Any) -> dict[str, list[str]]:
    plan = {}
    for action, kinds in _object(conf, "plan").items():
        for kind in _strings(kinds, f"plan.{action}"):
            if kind != "ok" and kind not in Faults.KINDS:
                raise ValueError(f"plan.{action} has {kind!r:.40}; each entry is 'ok' or one of {', '.join(Faults.KINDS)}")
        plan[action] = kinds
    return plan


def _service_times(conf: Any) -> dict[str, ServiceTime]:
    out = {}
    for req_key, st in _object(conf, "service_times").items():
        name = f"service_times.{req_key}"
        if isinstance(st, list):
            if len(st) != 2:
                raise ValueError(f"{name} must be a median or [median, sigma], got {st!r:.60}")
            out[req_key] = ServiceTime(_number(st[0], f"{name}[0]", high=86400.0),
                                       _number(st[1], f"{name}[1]", high=10.0))
        else:
            out[req_key] = ServiceTime(_number(st, name, high=86400.0), 0.3)
    return out


def _quotas(conf: Any) -> dict[str, float | int]:
    out: dict[str, float | int] = {}
    for key, value in _object(conf, "quotas").items():
        name = f"quotas.{key}"
        if key in ("submit_qps", "get_result_qps"):
            out[key] = _number(value, name, strict_low=True)
        elif key == "max_unfinished":
            out[key] = _integer(value, name)
        else:
            raise ValueError(f"{name} is not a quota; one of submit_qps, max_unfinished, get_result_qps")
    return out


def check_url(value: Any, name: str) -> str | None:
    """An http(s) URL or ``None``; ``ValueError`` naming the field."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith(("http://", "https://")) or len(value) > 2048:
        raise ValueError(f"{name} must be an http(s) URL (at most 2048 characters) or null, got {value!r:.60}")
    return value


def _iva(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "iva_callback" in doc:
        out["iva_callback"] = check_url(doc["iva_callback"], "iva_callback")
    if "iva_callbacks" in doc:
        out["iva_callbacks"] = {k: check_url(v, f"iva_callbacks.{k}") for k, v in _object(doc["iva_callbacks"],
                                                                                   "iva_callbacks").items()}
    if "iva_task_ids" in doc:
        ids = doc["iva_task_ids"]
        out["iva_task_ids"] = None if ids is None else set(_strings(ids, "iva_task_ids"))
        if out["iva_task_ids"] and "" in out["iva_task_ids"]:
            raise ValueError("iva_task_ids must hold non-empty strings")
    if "iva_service_time" in doc:
        out["iva_service_time"] = _number(doc["iva_service_time"], "iva_service_time", high=3600.0)
    return out


def check_config(conf: Any) -> dict[str, Any]:
    """The checked, typed form of a ``/sim/config`` document; ``ValueError`` naming the first bad field."""
    doc = _object(conf, "the configuration")
    unknown = sorted(set(doc) - set(_TOP))
    if unknown:
        raise ValueError(f"{unknown[0]!r:.40} is not a configuration field; one of {', '.join(_TOP)}")
    out: dict[str, Any] = {}
    if "faults" in doc:
        out["faults"] = _faults(doc["faults"])
    out["plan"] = _plan(doc.get("plan") or {})
    out["service_times"] = _service_times(doc.get("service_times") or {})
    if "queue_time" in doc:
        out["queue_time"] = _number(doc["queue_time"], "queue_time", high=86400.0)
    out["quotas"] = _quotas(doc.get("quotas") or {})
    if "max_video_bytes" in doc:
        out["max_video_bytes"] = _integer(doc["max_video_bytes"], "max_video_bytes", low=1)
    if "task_ttl" in doc:
        out["task_ttl"] = _number(doc["task_ttl"], "task_ttl", high=30 * 86400.0, strict_low=True)
    out.update(_iva(doc))
    return out


def apply_config(sim: Engine, conf: Any) -> None:
    """Check a ``/sim/config`` document as a whole, then apply it to ``sim``."""
    checked = check_config(conf)
    if "faults" in checked:
        sim.faults = checked["faults"]
    for action, kinds in checked["plan"].items():
        sim.faults.plan(action, *kinds)
    for req_key, st in checked["service_times"].items():
        sim.set_service_time(req_key, st)
    if "queue_time" in checked:
        sim.queue_time = checked["queue_time"]
    for key, value in checked["quotas"].items():
        setattr(sim.quotas, key, value)
    if "max_video_bytes" in checked:
        sim.max_video_bytes = checked["max_video_bytes"]
    if "task_ttl" in checked:
        sim.ttl = checked["task_ttl"]
    if "iva_callback" in checked:
        sim.iva.callback = checked["iva_callback"]
    for task_id, url in checked.get("iva_callbacks", {}).items():
        if url is None:
            sim.iva.callbacks.pop(task_id, None)
        else:
            sim.iva.callbacks[task_id] = url
    if "iva_task_ids" in checked:
        sim.iva.task_ids = checked["iva_task_ids"]
    if "iva_service_time" in checked:
        sim.iva.service_time = checked["iva_service_time"]
