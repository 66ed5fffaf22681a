"""``foresight bench logparse`` on a small generated Loghub-layout folder: output files and printed figures."""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from bench.logparse_formats import format_regex, guess_content, split_contents
from foresight.cli import app


def _system(root: Path, name: str, rows: list[tuple[str, str, str]]) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / f"{name}_2k.log").write_text("".join(f"{header} {content}\n" for header, content, _ in rows))
    with (folder / f"{name}_2k.log_structured_corrected.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["LineId", "Content", "EventId", "EventTemplate"])
        templates = sorted({t for _, _, t in rows})
        writer.writerows((i, c, f"E{templates.index(t) + 1}", t) for i, (_, c, t) in enumerate(rows, start=1))


def test_bench_logparse_writes_csvs_and_prints_scores(tmp_path: Path) -> None:
    rows = []
    for i in range(40):
        rows.append(
            (
                f"2024-01-0{i % 9 + 1} 10:00:{i:02d} INFO svc:",
                f"request {i} served in {i * 7} ms",
                "request <*> served in <*> ms",
            )
        )
        rows.append(
            (
                f"2024-01-0{i % 9 + 1} 10:01:{i:02d} WARN svc:",
                f"disk /dev/sd{chr(97 + i % 3)} is {50 + i}% full",
                "disk <*> is <*> full",
            )
        )
    _system(tmp_path / "data", "Toy", rows)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["bench", "logparse", "--data", str(tmp_path / "data"), "--out", str(out), "--speed-lines", "1000"],
    )
    assert result.exit_code == 0, result.output
    with (out / "Toy.csv").open() as handle:
        parsed = list(csv.DictReader(handle))
    assert list(parsed[0]) == ["LineId", "EventId", "EventTemplate"] and len(parsed) == 80
    assert {p["EventTemplate"] for p in parsed} == {"request <*> served in <*> ms", "disk <*> is <*> full"}
    toy_row = next(line for line in result.output.splitlines() if line.startswith("│ Toy"))
    assert "1.000" in toy_row and "masked line" in result.output and "lines/s" in result.output


def test_header_formats_and_guess() -> None:
    regex = format_regex(r"<Date> <Time> <Pid> <Level> <Component>: <Content>")
    match = regex.match("081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 terminating")
    assert match is not None and match.group("Content") == "PacketResponder 1 terminating"
    contents, misfits = split_contents(["no header here", "a b c d e: x"], r"<A> <B> <C> <D> <E>: <Content>")
    assert contents == ["no header here", "x"] and misfits == 1
    assert guess_content("2024-01-01 10:00:00,123 INFO Worker: job 7 done") == "job 7 done"
    assert (
        guess_content("20171223-22:15:29:606|Step_LSC|30002312|onStandStepChanged 3579")
        == "onStandStepChanged 3579"
    )
    assert guess_content("plain message without header") == "plain message without header"
