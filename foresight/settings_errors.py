"""Settings validation errors as one line per problem: where the value came from, the dotted key,
what is wrong, and the nearest valid key for a typo.

``settings.yaml: forecast.horizn: unknown key (did you mean horizon?)``
``FORESIGHT_FORECAST__LEVEL: forecast.level: 150 is above the maximum 99``

Values under secret-looking keys are never echoed, and URLs are shown with their password
masked (:mod:`foresight.redact`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from foresight.errors import ConfigError
from foresight.redact import is_secret_key, redact_url

ENV_PREFIX = "FORESIGHT_"
ENV_DELIMITER = "__"
HINT = "fix these keys; `foresight settings` prints the settings as they resolve"
MAX_SHOWN = 60  # characters of an echoed value


class InvalidSettingsError(ConfigError):
    """The settings do not validate; ``.problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems), hint=HINT)


class Origins:
    """Where a settings value came from, in precedence order: keyword arguments, ``FORESIGHT_*``
    environment variables, the YAML file."""

    def __init__(self, *, arguments: Mapping[str, Any], file_name: str | None, file_data: Mapping[str, Any],
                 environ: Mapping[str, str] | None = None) -> None:
        self.arguments, self.file_name, self.file_data = arguments, file_name, file_data
        env = os.environ if environ is None else environ
        self.env = {name.upper(): name for name in env if name.upper().startswith(ENV_PREFIX)}

    def of(self, loc: Sequence[str | int]) -> str:
        """The source holding the longest part of ``loc``; ties go to the higher precedence."""
        best, depth = "defaults", 0
        for label, matched in (
            ("arguments", _depth(self.arguments, loc)),
            *self._env_match(loc),
            (self.file_name or "config file", _depth(self.file_data, loc)),
        ):
            if matched > depth:
                best, depth = label, matched
        return best

    def _env_match(self, loc: Sequence[str | int]) -> list[tuple[str, int]]:
        for size in range(len(loc), 0, -1):
            name = ENV_PREFIX + ENV_DELIMITER.join(str(part) for part in loc[:size]).upper()
            if name in self.env:
                return [(self.env[name], size)]
        return []


def explain(error: ValidationError, model: type[BaseModel], origins: Origins) -> InvalidSettingsError:
    """One :class:`InvalidSettingsError` for every problem pydantic found, each on its own line."""
    lines = []
    for item in error.errors(include_url=False):
        loc = _field_loc(item["loc"], model)
        lines.append(f"{origins.of(loc)}: {dotted(loc) or '(top level)'}: {_problem(item, loc, model)}")
    return InvalidSettingsError(list(dict.fromkeys(lines)))


def explain_problems(problems: Sequence[tuple[Sequence[str | int], str]], origins: Origins) -> InvalidSettingsError:
    """One :class:`InvalidSettingsError` for problems found beyond the schema (``(key path,
    what is wrong)``, e.g. by a settings check), in the same one-line form."""
    return InvalidSettingsError(list(dict.fromkeys(f"{origins.of(loc)}: {dotted(loc)}: {what}" for loc, what in problems)))


def problems_of(error: ValidationError, model: type[BaseModel], *, unknown: str = "unknown key",
                choices: bool = False) -> list[tuple[tuple[str | int, ...], str]]:
    """pydantic's problems with ``model`` as ``(key path, what is wrong)`` in this module's wording;
    an unknown key reads ``unknown`` (with the nearest valid key) and, with ``choices``, lists the
    valid ones: how a plug-in's settings report (:meth:`foresight.plugins.Registry.settings_for`)."""
    problems = []
    for item in error.errors(include_url=False):
        loc = _field_loc(item["loc"], model)
        what = _problem(item, loc, model)
        if item["type"] == "extra_forbidden":
            what = what.replace("unknown key", unknown, 1)
            known = _keys_at(model, loc[:-1])
            what += f"; choose from: {', '.join(known) or '(none)'}" if choices else ""
        problems.append((loc, what))
    return list(dict.fromkeys(problems))


def dotted(loc: Sequence[str | int]) -> str:
    """``('sources', 0, 'kind')`` -> ``sources[0].kind``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problem(item: Mapping[str, Any], loc: Sequence[str | int], model: type[BaseModel]) -> str:
    kind, ctx = item["type"], item.get("ctx") or {}
    secret = any(is_secret_key(part) for part in loc)
    value = "the value" if secret else _shown(item.get("input"))
    if kind == "extra_forbidden":
        known = _keys_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
        return "unknown key" + (f" (did you mean {close[0]}?)" if close else "")
    if kind == "missing":
        return "required, not set"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = _bound(next(iter(ctx.values())))
        return {
            "greater_than_equal": f"{value} is below the minimum {bound}",
            "greater_than": f"{value} must be greater than {bound}",
            "less_than_equal": f"{value} is above the maximum {bound}",
            "less_than": f"{value} must be less than {bound}",
        }[kind]
    if kind == "finite_number":
        return f"{value} is not a finite number"
    if kind in ("value_error", "assertion_error"):
        return redact_url(str(ctx.get("error", item["msg"])))
    message = item["msg"][0].lower() + item["msg"][1:] if item["msg"] else kind
    return f"{value}: {message}" if not secret else message


def _shown(value: Any) -> str:
    if isinstance(value, timedelta):
        text = _duration(value)
    elif isinstance(value, str):
        text = repr(redact_url(value))
    elif isinstance(value, (Mapping, list, tuple)):
        text = "a mapping" if isinstance(value, Mapping) else "a list"
    else:
        text = str(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _bound(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)  # pydantic gives a duration bound as text ("0 seconds")


def _duration(value: timedelta) -> str:
    return f"-{-value}" if value < timedelta(0) else str(value)


def _field_loc(loc: Sequence[str | int], model: type[BaseModel]) -> tuple[str | int, ...]:
    """``loc`` without pydantic's own steps (validator and union tags) between field names."""
    kept: list[str | int] = []
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            kept.append(part)
            continue
        fields = _model_fields(current)
        if fields is not None:
            if part in fields:
                kept.append(part)
                current = fields[part]
            elif _is_tag(part):
                continue
            else:
                kept.append(part)  # an unknown key
                current = None
        else:
            if _is_tag(part):
                continue
            kept.append(part)
            current = _value_model(current)
    return tuple(kept)


def _keys_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    current: Any = model
    for part in loc:
        fields = _model_fields(current)
        if fields is not None and isinstance(part, str) and part in fields:
            current = fields[part]
        elif isinstance(part, int) or fields is None:
            current = _value_model(current)
        else:
            return []
    fields = _model_fields(current)
    return sorted(fields) if fields else []


def _model_fields(annotation: Any) -> dict[str, Any] | None:
    """The fields (name -> annotation) of the model ``annotation`` is or wraps, else None."""
    model = _find_model(annotation)
    return None if model is None else {name: f.annotation for name, f in model.model_fields.items()}


def _value_model(annotation: Any) -> Any:
    """For ``list[M]`` / ``dict[str, M]`` (optionally ``| None``): ``M``; else None."""
    for arg in get_args(annotation):
        if _find_model(arg) is not None:
            return arg
        inner = _value_model(arg)
        if inner is not None:
            return inner
    return None


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) is not None and get_origin(annotation) not in (list, dict, tuple, set):
        for arg in get_args(annotation):  # Optional[M], Annotated[M, ...]
            found = _find_model(arg)
            if found is not None:
                return found
    return None


def _is_tag(part: str) -> bool:
    """pydantic's loc steps that are not keys: ``function-after[...]``, ``int``, ``list[...]``."""
    return "[" in part or part in {"int", "float", "str", "bool", "none", "dict", "list", "timedelta",
                                   "datetime", "path", "is-instance", "lax-or-strict"}


def _depth(data: Any, loc: Sequence[str | int]) -> int:
    """How many leading steps of ``loc`` exist in nested mappings / lists ``data``."""
    depth = 0
    for part in loc:
        if isinstance(data, BaseModel):
            data = data.__dict__
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, (list, tuple)) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            break
        depth += 1
    return depth
