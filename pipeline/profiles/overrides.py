"""A profile as ``dvc exp run -S`` overrides: the Hydra override strings that turn one params mapping into another.

DVC applies ``-S`` values to ``params.yaml`` with Hydra's override grammar (``dvc.utils.hydra.apply_overrides``):
``key=value`` changes a key params.yaml has, ``+key=value`` adds one it lacks, ``~key`` deletes one. The
overrides are computed as the difference between ``params.yaml`` and the merged profile params rather than from the
profile's own values, so what the profile replaces whole (``datasets``) or leaves alone needs no rule of its own.

The YAML that DVC writes back is not read the same way by every reader (a float like ``5e-05`` comes back from
PyYAML as a string), so :func:`check_overrides` applies the overrides with DVC's own code to a scratch copy and
compares the result with what was meant: a profile that DVC would not reproduce exactly fails before anything runs.
"""
from __future__ import annotations

import math
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from pipeline.core.errors import RemotError

# Hydra's key grammar (dotted IDs); a params key outside it cannot be named in an override.
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def hydra_value(value: Any, where: str = "value") -> str:
    """``value`` in Hydra's override grammar. Strings are always quoted, so 'true', '1' or 'null' stay strings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RemotError(f"{where}: {value!r} cannot be a params value (YAML readers disagree on it)")
        return repr(value)
    if isinstance(value, str):
        return _quote(value, where)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(hydra_value(v, where) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{" + ",".join(f"{_key(k, where)}:{hydra_value(v, where)}" for k, v in value.items()) + "}"
    raise RemotError(f"{where}: a {type(value).__name__} cannot be passed to `dvc exp run -S`")


def _quote(text: str, where: str) -> str:
    # Hydra's quoted strings: \' is a quote; backslashes count as escapes only in front of a quote or at the
    # end, so only those runs are doubled; ${ would be an OmegaConf interpolation and is escaped as \${.
    if re.search(r"\\\$\{", text):
        raise RemotError(f"{where}: {text!r} has a backslash in front of '${{', which Hydra's grammar (used by "
                         "`dvc exp run -S`) cannot pass through unchanged; rename the value")
    out = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, text)
    out = out.replace("'", "\\'").replace("${", "\\${")
    return f"'{out}'"


def _key(key: Any, where: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise RemotError(f"{where}: key {key!r} cannot be named in a `dvc exp run -S` override (letters, digits, "
                         "'_' and '-' only)")
    return key


def to_overrides(base: dict[str, Any], target: dict[str, Any], prefix: str = "") -> list[str]:
    """Hydra overrides that turn ``base`` (params.yaml as read) into ``target``, key by key, leaves only."""
    out: list[str] = []
    for key in base:
        if key not in target:
            out.append(f"~{prefix}{_key(key, prefix + str(key))}")
    for key, value in target.items():
        path = f"{prefix}{_key(key, prefix + str(key))}"
        if key not in base:
            out += _added(path, value)
        elif isinstance(value, dict) and isinstance(base[key], dict) and value:
            out += to_overrides(base[key], value, path + ".")
        elif isinstance(value, dict) != isinstance(base[key], dict) or (isinstance(value, dict) and base[key]):
            # a mapping becoming a scalar (or empty), or the reverse: Hydra would merge the two, so replace
            out += [f"~{path}", *_added(path, value)]
        elif value != base[key] or type(value) is not type(base[key]):
            out.append(f"{path}={hydra_value(value, path)}")
    return out


def _added(path: str, value: Any) -> list[str]:
    if isinstance(value, dict) and value:
        return [o for k, v in value.items() for o in _added(f"{path}.{_key(k, path + '.' + str(k))}", v)]
    return [f"+{path}={hydra_value(value, path)}"]


def apply_with_dvc(params_file: Path, overrides: list[str]) -> dict[str, Any]:
    """The params mapping DVC's ``-S`` handling makes of ``params_file`` and ``overrides`` (on a scratch copy)."""
    from dvc.exceptions import InvalidArgumentError
    from dvc.utils.hydra import apply_overrides

    with tempfile.TemporaryDirectory(prefix="remot-overrides-") as tmp:
        scratch = Path(tmp) / "params.yaml"
        shutil.copyfile(params_file, scratch)
        try:
            apply_overrides(scratch, overrides)
        except InvalidArgumentError as exc:
            raise RemotError(f"`dvc exp run -S` would refuse the overrides for {params_file}: {exc} "
                             f"({exc.__cause__})") from None
        return yaml.safe_load(scratch.read_text()) or {}


def _differences(got: Any, want: Any, path: str = "") -> list[str]:
    if isinstance(got, dict) and isinstance(want, dict):
        return [d for k in sorted(set(got) | set(want), key=str)
                for d in _differences(got.get(k, "<missing>"), want.get(k, "<missing>"), f"{path}{k}.")]
    if got != want or type(got) is not type(want):
        return [f"{path.rstrip('.')}: DVC would write {got!r}, the profile means {want!r}"]
    return []


def check_overrides(params_file: Path, overrides: list[str], expected: dict[str, Any], label: str) -> None:
    """Fail unless DVC applying ``overrides`` to ``params_file`` gives exactly ``expected`` (as PyYAML reads it)."""
    got = apply_with_dvc(params_file, overrides)
    wrong = _differences(got, expected)
    if wrong:
        raise RemotError(f"{label}: `dvc exp run -S` would not reproduce these values:\n  " + "\n  ".join(wrong)
                         + "\nDVC writes params.yaml with ruamel, and PyYAML reads some of its forms back otherwise "
                         "(a float below 1e-4 comes back as a string): choose another value in "
                         f"pipeline/profiles/, or set it in params.yaml itself")
