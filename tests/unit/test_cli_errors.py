"""Every CLI failure is an ``error:`` line and a ``hint:`` line with a non-zero exit; tracebacks
only with ``--debug``; no credentials on screen. In-process (CliRunner): no flow runs here."""

from __future__ import annotations

import io
import logging
import signal
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from foresight.cli import app
from foresight.cli.errors import ConsoleLogFilter, Terminated, exit_cleanly_on_termination
from foresight.errors import ConfigError

PASSWORD = "s3cretpw"


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


@pytest.fixture
def unknown_key_config(tmp_path: Path) -> Path:
    path = tmp_path / "foresight.yaml"
    path.write_text("forecast:\n  horizon: 24\nhorizn: 5\n")
    return path


@pytest.mark.parametrize("command", [["settings"], ["run", "ingest"]], ids=["settings", "run"])
def test_an_unknown_config_key_is_two_lines_and_a_non_zero_exit(
    foresight_home: Path, unknown_key_config: Path, command: list[str]
) -> None:
    result = CliRunner().invoke(app, [*command, "--config", str(unknown_key_config)])
    assert result.exit_code not in (0, None), result.output
    lines = _lines(result.output)
    assert len(lines) <= 2 and lines[0].startswith("error: ") and "horizn" in lines[0], result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", [["settings"], ["run", "train"]], ids=["settings", "run"])
def test_a_plugin_setting_no_plugin_takes_fails_before_anything_runs(
    foresight_home: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("FORESIGHT_DETECT__DETECTOR_PARAMS", '{"supress": true}')
    result = CliRunner().invoke(app, command)
    assert result.exit_code not in (0, None), result.output
    first = _lines(result.output)[0]
    assert first.startswith("error: ") and "supress" in first and "did you mean suppress" in first, result.output


def test_any_other_error_is_its_type_and_first_line_with_credentials_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    def unreachable(config: object = None, **_: object) -> None:
        raise ConnectionError(f"cannot reach postgresql://app:{PASSWORD}@db:5432/forecasts\nsecond line\nthird")

    monkeypatch.setattr("foresight.settings.load_settings", unreachable)
    result = CliRunner().invoke(app, ["settings"])
    assert result.exit_code == 1
    assert _lines(result.output) == [
        "error: ConnectionError: cannot reach postgresql://app:***@db:5432/forecasts",
        "hint: check that the server or database is up and that its URL in the config is right; "
        "run with --debug for the traceback",
    ]


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(config: object = None, **_: object) -> None:
        raise KeyError("uid")

    monkeypatch.setattr("foresight.settings.load_settings", broken)
    quiet = CliRunner().invoke(app, ["settings"])
    loud = CliRunner().invoke(app, ["--debug", "settings"])
    assert "Traceback" not in quiet.output and _lines(quiet.output)[0] == "error: KeyError: 'uid'"
    assert "Traceback (most recent call last)" in loud.output and loud.exit_code == 1
    assert _lines(loud.output)[-1] == "error: KeyError: 'uid'", "with --debug there is no hint to use --debug"


def test_a_foresight_error_prints_its_message_and_hint_with_its_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    def bad(config: object = None, **_: object) -> None:
        raise ConfigError("foresight.yaml: forecast.horizon: -5 is below 1", hint="set forecast.horizon to 1 or more")

    monkeypatch.setattr("foresight.settings.load_settings", bad)
    result = CliRunner().invoke(app, ["settings"])
    assert (result.exit_code, _lines(result.output)) == (2, [
        "error: foresight.yaml: forecast.horizon: -5 is below 1", "hint: set forecast.horizon to 1 or more"])


def test_a_yaml_syntax_error_names_line_and_column(foresight_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "foresight.yaml"
    path.write_text("forecast: [1, 2\n")
    result = CliRunner().invoke(app, ["settings", "--config", str(path)])
    assert result.exit_code != 0 and len(_lines(result.output)) <= 2, result.output
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert f"{path}:2:1" in result.output, "a YAML syntax error says where it is (file:line:column)"


def test_a_usage_error_is_two_lines(foresight_home: Path) -> None:
    result = CliRunner().invoke(app, ["run", "nosuchflow"])
    assert result.exit_code == 2
    lines = _lines(result.output)
    assert len(lines) == 2 and lines[0].startswith("error: Invalid value: unknown flow 'nosuchflow'; choose one of")
    assert lines[1].startswith("hint: ") and "--help" in lines[1]


# -- console logs ------------------------------------------------------------------------------

def _record(message: str, *, pathname: str = "/app/flows/ingest.py", level: int = logging.ERROR,
            exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("prefect.task_runs", level, pathname, 1, message, None, exc_info)


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:  # noqa: BLE001 - a real traceback to format
        return caught


def _console(debug: bool) -> tuple[logging.Handler, io.StringIO, ConsoleLogFilter]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log_filter = ConsoleLogFilter(handler, debug)
    handler.addFilter(log_filter)
    return handler, stream, log_filter


def test_console_logs_lose_tracebacks_and_credentials_but_other_handlers_keep_them() -> None:
    handler, stream, _ = _console(debug=False)
    other = logging.StreamHandler(io.StringIO())
    record = _record(f"lake write to s3://key:{PASSWORD}@bucket failed", exc=_raised(ValueError("boom")))
    handler.handle(record)
    other.handle(record)
    assert stream.getvalue() == "ERROR lake write to s3://key:***@bucket failed\n"
    assert "Traceback" in other.stream.getvalue(), "the record itself is untouched (Prefect's API handler)"


def test_debug_console_logs_keep_tracebacks() -> None:
    handler, stream, _ = _console(debug=True)
    handler.handle(_record("failed", exc=_raised(ValueError("boom"))))
    assert "Traceback (most recent call last)" in stream.getvalue()


def test_prefect_engine_reports_of_the_error_the_cli_prints_are_not_repeated() -> None:
    handler, stream, log_filter = _console(debug=False)
    error = _raised(RuntimeError("store down"))
    engine = "/venv/lib/python3.11/site-packages/prefect"
    handler.handle(_record("Task run failed with exception: RuntimeError('store down')",
                           pathname=f"{engine}/task_engine.py", exc=error))
    handler.handle(_record("Finished in state Failed('...')", pathname=f"{engine}/task_engine.py"))
    handler.handle(_record("Encountered exception during execution", pathname=f"{engine}/flow_engine.py", exc=error))
    handler.handle(_record("a warning stays", pathname=f"{engine}/flow_engine.py", level=logging.WARNING))
    log_filter.release(failed_with=error)
    assert stream.getvalue() == "WARNING a warning stays\n"


def test_a_task_failure_the_flow_carried_on_past_is_still_printed_once() -> None:
    handler, stream, log_filter = _console(debug=False)
    handler.handle(_record("Task run failed with exception: ConnectError('grafana')",
                           pathname="/venv/prefect/task_engine.py", exc=_raised(ConnectionError("grafana"))))
    assert stream.getvalue() == "", "held until the command ends"
    log_filter.release(failed_with=None)
    assert stream.getvalue() == "ERROR Task run failed with exception: ConnectError('grafana')\n"


# -- signals -----------------------------------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigterm_exits_like_an_exception_so_cleanup_runs() -> None:
    before = signal.getsignal(signal.SIGTERM)
    cleaned = []
    with pytest.raises(Terminated) as caught, exit_cleanly_on_termination():
        assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None)
        try:
            signal.raise_signal(signal.SIGTERM)
        finally:
            cleaned.append(True)
    assert caught.value.code == 128 + signal.SIGTERM and cleaned == [True]
    assert signal.getsignal(signal.SIGTERM) is before, "the previous handler is back"


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
def test_an_ignored_sighup_stays_ignored_as_under_nohup() -> None:
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with exit_cleanly_on_termination():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            signal.raise_signal(signal.SIGHUP)  # ignored: the block carries on
    finally:
        signal.signal(signal.SIGHUP, before)


def test_the_demo_carries_on_past_a_failed_source_then_exits_non_zero(
    foresight_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other sources still go through every stage; the summary shows them; the exit code says a
    source failed (as ``foresight run`` does)."""
    import flows.summary
    from foresight import cli
    from foresight.source_holds import SourceContractFailedError

    ran: list[str] = []

    def stage(name: str):  # type: ignore[no-untyped-def]
        def run(**kwargs):  # type: ignore[no-untyped-def]
            ran.append(name)
            if name in ("ingest", "detect"):
                raise SourceContractFailedError(f"{name}: backfill failed its contract", sources=["backfill"],
                                                result={"stage": name})
            return {"stage": name}
        return run

    summaries: list[dict] = []
    monkeypatch.setattr(cli, "_flow", stage)
    monkeypatch.setattr(flows.summary, "render_summary", lambda console, results, *a, **k: summaries.append(results))
    result = CliRunner().invoke(app, ["demo"])
    assert ran == list(cli.FLOWS)
    assert result.exit_code == 1, result.output
    assert summaries and summaries[0]["ingest"] == {"stage": "ingest"} and summaries[0]["detect"] == {"stage": "detect"}


def test_each_config_problem_is_its_own_error_line(foresight_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "foresight.yaml"
    path.write_text("forecast:\n  horizn: 24\n  level: 150\nsinks:\n  pagerduty_routing_kye: abc\n")
    result = CliRunner().invoke(app, ["settings", "--config", str(path)])
    lines = _lines(result.output)
    assert result.exit_code == 2, result.output
    assert [line.split(": ", 2)[-1].split(":")[0] for line in lines[:-1]] == [
        "forecast.level", "forecast.horizn", "sinks.pagerduty_routing_kye"], result.output
    assert all(line.startswith(f"error: {path}: ") for line in lines[:-1]) and lines[-1].startswith("hint: ")
