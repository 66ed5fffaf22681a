"""Find pluggable parts (sources, forecasters, detectors, predictors, incident builders) by name.

Each kind keeps one :class:`Registry`: a name -> factory map that knows the modules holding its
built-in plug-ins (by module name, so a lower layer can list a higher one's plug-ins without
importing it) and imports them the first time it is read. An unknown name raises
:class:`UnknownPluginError` listing the choices; a parameter a plug-in does not take,
:class:`UnknownParameterError` listing the ones it does.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import threading
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from foresight.errors import ConfigError
from foresight.settings_errors import dotted, problems_of

T = TypeVar("T")


class UnknownPluginError(ConfigError, KeyError):
    """No plugin of this kind has the name asked for; ``.choices`` lists the ones that exist.
    A configuration problem (a name in the settings), so never retried and printed as one line."""

    def __init__(self, kind: str, name: str, choices: list[str]) -> None:
        self.kind, self.name, self.choices = kind, name, choices
        super().__init__(f"unknown {kind} {name!r}; choose one of: {', '.join(choices) or '(none registered)'}")

    def __str__(self) -> str:  # KeyError would quote the message
        return ConfigError.__str__(self)


class UnknownParameterError(ConfigError):
    """A plug-in was given parameters it does not take; ``.unknown`` names them, ``.choices``
    lists the ones it does."""

    def __init__(self, kind: str, name: str, unknown: list[str], choices: list[str]) -> None:
        self.kind, self.name, self.unknown, self.choices = kind, name, unknown, choices
        super().__init__(f"{kind} {name!r} takes no parameter {', '.join(map(repr, unknown))}; "
                         f"choose from: {', '.join(choices) or '(none)'}")


Problem = tuple[tuple[str | int, ...], str]  # (key path within the plug-in's settings, what is wrong)


class InvalidPluginSettingsError(ConfigError):
    """A plug-in's settings do not validate; ``.problems`` holds ``(key path, what is wrong)``
    for each bad key (an unknown one lists the keys the plug-in takes)."""

    def __init__(self, kind: str, name: str, problems: list[Problem]) -> None:
        self.kind, self.name, self.problems = kind, name, problems
        super().__init__("\n".join(f"{kind} {name!r}: {dotted(loc) or '(settings)'}: {what}" for loc, what in problems))


class PluginSettings(BaseModel):
    """Base of a plug-in's typed settings: an unknown key is an error, numbers are finite, and
    values are taken as given (strict: ``"9"`` is not 9), because the plug-in is built from the
    raw mapping these settings checked."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)

    def given(self) -> dict[str, Any]:
        """The keys that were set, as validated (what the plug-in is built with)."""
        return self.model_dump(exclude_unset=True)


def dataclass_fields(cls: type, *, prefix: str = "", defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fields of dataclass ``cls`` as :func:`pydantic.create_model` field definitions, each
    named ``prefix + name`` with its type and default (``defaults`` overriding): for plug-ins whose
    parameters spread over the dataclasses of their parts."""
    hints = typing.get_type_hints(cls)
    overrides = defaults or {}
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in overrides:
            default = overrides[f.name]
        elif f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = ...  # required
        out[prefix + f.name] = (hints[f.name], default)
    return out


@functools.cache
def signature_settings(factory: Any, supplied: tuple[str, ...] = ()) -> type[BaseModel]:
    """Settings of a plug-in that declares none: its constructor's named parameters (less the
    ``supplied`` ones its registry passes itself), typed by their annotations where those resolve."""
    target = factory.__init__ if isinstance(factory, type) else factory  # type: ignore[misc]
    try:
        hints = typing.get_type_hints(target)
    except (NameError, TypeError):  # an annotation only a type checker can see
        hints = {}
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    fields: dict[str, Any] = {
        p.name: (hints.get(p.name, Any), ... if p.default is inspect.Parameter.empty else p.default)
        for p in inspect.signature(factory).parameters.values()
        if p.kind in named and p.name not in supplied
    }
    config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=True)
    return create_model(f"{getattr(factory, '__name__', 'Plugin')}Settings", __config__=config, **fields)


def declared_settings(factory: Any) -> type[BaseModel] | None:
    """The pydantic model ``factory`` declares as its ``Settings``, if any."""
    declared = getattr(factory, "Settings", None)
    return declared if isinstance(declared, type) and issubclass(declared, BaseModel) else None


def parameter_names(factory: Any) -> list[str]:
    """The keyword parameters ``factory`` takes: the fields of its declared ``Settings``, else its
    own ``parameter_names()`` when it declares them (a plug-in taking ``**params`` and checking
    them itself), else the named parameters of its signature."""
    settings = declared_settings(factory)
    if settings is not None:
        return sorted(settings.model_fields)
    declared = getattr(factory, "parameter_names", None)
    if callable(declared):
        return sorted(declared())
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return sorted(p.name for p in inspect.signature(factory).parameters.values() if p.kind in named)


class Registry(Generic[T]):
    """A name -> factory map for one kind of plugin.

    ``builtins`` names the modules that register the built-in plug-ins on import; they are
    imported on the first read (:meth:`get`, :meth:`names`, ``in``), so no caller needs a loader
    of its own. A plug-in outside them registers when its own module is imported.
    """

    def __init__(self, kind: str, builtins: Iterable[str] = (), *, supplied: Iterable[str] = (),
                 noun: str = "parameter") -> None:
        self.kind = kind
        self.builtins: tuple[str, ...] = tuple(builtins)
        # Parameters the registry's caller passes itself (a source's ``name``), not settings.
        self.supplied: tuple[str, ...] = tuple(supplied)
        self.noun = noun  # what one setting is called in messages ("option" for sources)
        self._items: dict[str, T] = {}
        self._loaded = not self.builtins
        self._loading = threading.RLock()  # two threads' first reads import the built-ins once

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(item: T) -> T:
            if name in self._items and self._items[name] is not item:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return decorate

    def get(self, name: str) -> T:
        self._load_builtins()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownPluginError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._items

    def check_params(self, name: str, params: Mapping[str, Any]) -> None:
        """Raise :class:`UnknownPluginError` for an unknown ``name``, :class:`UnknownParameterError`
        for keys of ``params`` the plug-in does not take (values are the plug-in's to check)."""
        choices = parameter_names(self.get(name))
        unknown = sorted(set(params) - set(choices))
        if unknown:
            raise UnknownParameterError(self.kind, name, unknown, choices)

    def settings_model(self, name: str) -> type[BaseModel]:
        """The plug-in's declared ``Settings``, else a model of its constructor's signature."""
        factory = self.get(name)
        return declared_settings(factory) or signature_settings(factory, self.supplied)

    def settings_for(self, name: str, raw: Mapping[str, Any]) -> BaseModel:
        """``raw`` (a config file's mapping) validated into the plug-in's settings.

        Raises :class:`UnknownPluginError` for an unknown ``name`` and
        :class:`InvalidPluginSettingsError` naming each bad key: an unknown one with the keys the
        plug-in takes, a mistyped or out-of-range one with its problem.
        """
        model = self.settings_model(name)
        try:
            return model.model_validate(dict(raw))
        except ValidationError as exc:
            unknown = f"not {'an' if self.noun[0] in 'aeiou' else 'a'} {self.noun} of {self.kind} {name!r}"
            raise InvalidPluginSettingsError(self.kind, name, problems_of(exc, model, unknown=unknown, choices=True)) from None

    def _load_builtins(self) -> None:
        if self._loaded:
            return
        with self._loading:
            if self._loaded:
                return
            for module in self.builtins:
                importlib.import_module(module)
            self._loaded = True


def settings_problems(registry: Registry[Any], name: str, raw: Mapping[str, Any], *,
                      name_key: tuple[str | int, ...], settings_key: tuple[str | int, ...]) -> list[Problem]:
    """What is wrong with a plug-in named in the settings (at ``name_key``) and its raw settings
    (at ``settings_key``), as ``(key path, what is wrong)``: for a check an entry point passes to
    :func:`foresight.settings.load_settings`, so each reads like any bad key of the settings."""
    try:
        registry.settings_for(name, raw)
    except UnknownPluginError as exc:
        return [(name_key, str(exc))]
    except InvalidPluginSettingsError as exc:
        return [((*settings_key, *loc), what) for loc, what in exc.problems]
    return []


def declares(settings: type[BaseModel]) -> Callable[[T], T]:
    """Give a plug-in factory that is a function (not a class with a ``Settings`` attribute) its settings model."""

    def decorate(factory: T) -> T:
        setattr(factory, "Settings", settings)  # noqa: B010 - a function has no declared attribute
        return factory

    return decorate
