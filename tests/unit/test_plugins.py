from __future__ import annotations

import pytest

from foresight.plugins import Registry, UnknownPluginError


def test_unknown_name_lists_the_choices() -> None:
    reg: Registry[type] = Registry("widget")
    reg.register("b")(int)
    reg.register("a")(float)
    with pytest.raises(UnknownPluginError) as err:
        reg.get("c")
    assert err.value.choices == ["a", "b"]
    assert str(err.value) == "unknown widget 'c'; choose one of: a, b"


def test_an_unknown_name_is_a_configuration_error_never_retried() -> None:
    from flows.retries import is_retryable
    from foresight.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        Registry("source kind").get("promethues")
    assert isinstance(err.value, KeyError) and not is_retryable(err.value)


def test_a_name_cannot_be_taken_twice() -> None:
    reg: Registry[type] = Registry("widget")
    reg.register("a")(int)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(float)
