"""Where keys come from, in the official SDK's order; the one place that reads them.

1. arguments; 2. ``VOLC_ACCESSKEY`` / ``VOLC_SECRETKEY`` (+ ``VOLC_SESSION_TOKEN``, our addition);
3. ``~/.volc/credentials`` (INI, section ``[default]``: ``access_key_id`` / ``secret_access_key``), or, only
when that file is absent, ``~/.volc/config`` (JSON: ``ak`` / ``sk``). The home folder is ``Path.home()``.
"""

from __future__ import annotations

import configparser
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..protocol.signing import Credentials

__all__ = ["FoundKeys", "find_credentials"]


@dataclass(frozen=True)
class FoundKeys:
    """Credentials and where they were found (``source`` names a place, never a secret)."""

    credentials: Credentials
    source: str
    """``"arguments"``, ``"environment (VOLC_ACCESSKEY)"``, ``"~/.volc/credentials"`` or ``"~/.volc/config"``."""


def find_credentials(
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
) -> FoundKeys | None:
    """The first complete key pair in the SDK's order, or ``None`` when there is none anywhere."""
    env = os.environ if environ is None else environ
    if access_key and secret_key:
        return FoundKeys(Credentials(access_key, secret_key, session_token or None), "arguments")
    env_ak, env_sk = env.get("VOLC_ACCESSKEY", ""), env.get("VOLC_SECRETKEY", "")
    if env_ak and env_sk:
        # an STS token belongs to its temporary key pair: taken only with the environment's pair
        token = session_token or env.get("VOLC_SESSION_TOKEN") or None
        return FoundKeys(Credentials(env_ak, env_sk, token), "environment (VOLC_ACCESSKEY)")
    folder = (home if home is not None else _home()) / ".volc"
    pair = _from_ini(folder / "credentials")
    source = "~/.volc/credentials"
    if pair is None and not (folder / "credentials").is_file():
        pair, source = _from_json(folder / "config"), "~/.volc/config"
    if pair is None:
        return None
    return FoundKeys(Credentials(pair[0], pair[1], session_token or None), source)


def _home() -> Path:
    try:
        return Path.home()
    except RuntimeError:  # no home folder at all (some containers)
        return Path(os.devnull)


def _from_ini(path: Path) -> tuple[str, str] | None:
    if not path.is_file():
        return None
    conf = configparser.ConfigParser()
    try:
        conf.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    ak = conf.get("default", "access_key_id", fallback="").strip()
    sk = conf.get("default", "secret_access_key", fallback="").strip()
    return (ak, sk) if ak and sk else None


def _from_json(path: Path) -> tuple[str, str] | None:
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict):
        return None
    ak, sk = obj.get("ak"), obj.get("sk")
    return (ak, sk) if isinstance(ak, str) and isinstance(sk, str) and ak and sk else None
