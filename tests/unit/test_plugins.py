from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from foresight.errors import ConfigError
from foresight.plugins import (
    InvalidPluginSettingsError,
    PluginSettings,
    Registry,
    UnknownParameterError,
    UnknownPluginError,
    declares,
    parameter_names,
    settings_problems,
)


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


@pytest.mark.parametrize("read", ["get", "in", "names"])
def test_a_registry_imports_its_built_ins_on_first_read_without_a_loader(
    read: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base, impl = f"plug_base_{read}", f"plug_impl_{read}"  # fresh modules for each way of reading
    (tmp_path / f"{base}.py").write_text(
        f"from foresight.plugins import Registry\nWIDGETS = Registry('widget', builtins=('{impl}',))\n"
    )
    (tmp_path / f"{impl}.py").write_text(f"from {base} import WIDGETS\nWIDGETS.register('a')(int)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = importlib.import_module(base).WIDGETS
    assert impl not in sys.modules  # naming a built-in does not import it
    assert {"get": lambda: registry.get("a") is int, "in": lambda: "a" in registry,
            "names": lambda: registry.names() == ["a"]}[read]()
    assert impl in sys.modules
    with pytest.raises(UnknownPluginError) as err:
        registry.get("b")
    assert err.value.choices == ["a"]


def test_a_parameter_a_plugin_does_not_take_is_named_with_the_ones_it_does() -> None:
    class Declared:
        def __init__(self, **params: object) -> None: ...

        @classmethod
        def parameter_names(cls) -> list[str]:
            return ["b", "a"]

    class Signed:
        def __init__(self, size: int = 1, *, colour: str = "red", **extra: object) -> None: ...

    reg: Registry[type] = Registry("widget")
    reg.register("declared")(Declared)
    reg.register("signed")(Signed)
    assert parameter_names(Declared) == ["a", "b"] and parameter_names(Signed) == ["colour", "size"]
    reg.check_params("signed", {"size": 2, "colour": "blue"})
    with pytest.raises(UnknownParameterError) as err:
        reg.check_params("signed", {"szie": 2, "extra": 1})
    assert err.value.unknown == ["extra", "szie"] and err.value.choices == ["colour", "size"]
    assert str(err.value) == "widget 'signed' takes no parameter 'extra', 'szie'; choose from: colour, size"
    assert isinstance(err.value, ConfigError)
    with pytest.raises(UnknownPluginError):
        reg.check_params("unsigned", {})


def test_settings_for_validates_a_raw_mapping_into_the_plugins_typed_settings() -> None:
    class Typed:
        class Settings(PluginSettings):
            size: int = Field(default=1, ge=1)
            colour: str = "red"

        def __init__(self, name: str, **options: object) -> None: ...

    class Signed:
        def __init__(self, name: str, size: int, colour: str = "red") -> None: ...

    def maker(name: str, depth: float = 1.0) -> object: ...

    reg: Registry[Any] = Registry("widget", supplied=("name",), noun="option")
    reg.register("typed")(Typed)
    reg.register("signed")(Signed)
    reg.register("made")(declares(Typed.Settings)(maker))
    assert reg.settings_for("typed", {"size": 3}).model_dump() == {"size": 3, "colour": "red"}
    with pytest.raises(InvalidPluginSettingsError) as err:
        reg.settings_for("typed", {"size": 0, "colur": "blue"})
    assert isinstance(err.value, ConfigError)
    assert err.value.problems == [(("size",), "0 is below the minimum 1"),
                                  (("colur",), "not an option of widget 'typed' (did you mean colour?); "
                                               "choose from: colour, size")]
    assert str(err.value).splitlines()[0] == "widget 'typed': size: 0 is below the minimum 1"
    # no declared Settings: typed by the signature, less what the registry supplies itself
    assert sorted(reg.settings_model("signed").model_fields) == ["colour", "size"]
    assert reg.settings_for("signed", {"size": 2}).model_dump() == {"size": 2, "colour": "red"}
    with pytest.raises(InvalidPluginSettingsError) as err:
        reg.settings_for("signed", {"size": "2"})  # taken as given: the plug-in gets the raw value
    assert err.value.problems == [(("size",), "'2': input should be a valid integer")]
    with pytest.raises(InvalidPluginSettingsError) as err:
        reg.settings_for("signed", {})
    assert err.value.problems == [(("size",), "required, not set")]
    assert reg.settings_model("made") is Typed.Settings and parameter_names(Typed) == ["colour", "size"]
    with pytest.raises(UnknownPluginError):
        reg.settings_for("untyped", {})
    assert settings_problems(reg, "typed", {"size": 0}, name_key=("kind",), settings_key=("options",)) == [
        (("options", "size"), "0 is below the minimum 1")]
    assert settings_problems(reg, "nope", {}, name_key=("kind",), settings_key=("options",))[0][0] == ("kind",)
