"""Find pluggable parts (models, detectors, sources, sinks) by name.

Each kind keeps its own :class:`Registry`; an unknown name raises an error listing the choices.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

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


class Registry(Generic[T]):
    """A name -> factory map for one kind of plugin."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(item: T) -> T:
            if name in self._items and self._items[name] is not item:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return decorate

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownPluginError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items
