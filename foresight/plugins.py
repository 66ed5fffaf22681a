"""Find pluggable parts (sources, forecasters, detectors, predictors, incident builders) by name.

Each kind keeps one :class:`Registry`: a name -> factory map that knows the modules holding its
built-in plug-ins (by module name, so a lower layer can list a higher one's plug-ins without
importing it) and imports them the first time it is read. An unknown name raises
:class:`UnknownPluginError` listing the choices; a parameter a plug-in does not take,
:class:`UnknownParameterError` listing the ones it does.
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from foresight.errors import ConfigError

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


def parameter_names(factory: Any) -> list[str]:
    """The keyword parameters ``factory`` takes: its own ``parameter_names()`` when it declares
    them (a plug-in taking ``**params`` and checking them itself), else the named parameters of
    its signature."""
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

    def __init__(self, kind: str, builtins: Iterable[str] = ()) -> None:
        self.kind = kind
        self.builtins: tuple[str, ...] = tuple(builtins)
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

    def _load_builtins(self) -> None:
        if self._loaded:
            return
        with self._loading:
            if self._loaded:
                return
            for module in self.builtins:
                importlib.import_module(module)
            self._loaded = True
