"""``foresight bench logparse``: the template miner on Loghub-2.0-layout folders, scored as Loghub-2.0
scores parsers, beside simple baselines; the leave-one-system-out choice of its settings; its speed.

Layout: ``DATA/<S>/<S>_2k.log`` (the raw lines) and, for scoring only,
``DATA/<S>/<S>_2k.log_structured_corrected.csv`` (LineId, EventTemplate, ...). The truth is read
after parsing, never to parse. Writes ``OUT/<S>.csv`` with ``LineId,EventId,EventTemplate`` (each
line's cluster and that cluster's template at the end of the file, as Loghub's parsers report).
"""

from __future__ import annotations

import csv
import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from bench.logparse_formats import LOG_FORMATS, split_contents
from bench.logparse_metrics import ParseScores, score
from features.logs.masking import mask
from features.logs.miner import MinerSettings, TemplateMiner

# A parser: the lines' contents -> each line's (group id, template).
Parser = Callable[[Sequence[str]], list[tuple[str, str]]]


@dataclass(frozen=True)
class SystemLog:
    name: str
    contents: list[str]
    misfits: int  # lines that did not fit the system's header format (whole line kept as content)
    truth_path: Path


@dataclass(frozen=True)
class SystemResult:
    system: str
    parser: str
    scores: ParseScores | None  # None when the system has no truth file
    lines_per_second: float
    templates: int


def find_systems(data: Path) -> list[str]:
    """Names of the Loghub-layout systems under ``data`` (folders holding ``<S>_2k.log``)."""
    names = sorted(p.name for p in data.iterdir() if p.is_dir() and (p / f"{p.name}_2k.log").is_file())
    if not names:
        raise ValueError(f"no <S>/<S>_2k.log folders under {data}")
    return names


def read_system(data: Path, name: str, log_format: str | None = None) -> SystemLog:
    """One system's contents, the header split by ``log_format``, else its protocol format, else a guess."""
    folder = data / name
    lines = (folder / f"{name}_2k.log").read_text(encoding="utf-8", errors="replace").splitlines()
    contents, misfits = split_contents(lines, log_format or LOG_FORMATS.get(name))
    return SystemLog(name, contents, misfits, folder / f"{name}_2k.log_structured_corrected.csv")


def read_truth(system: SystemLog) -> list[str] | None:
    """The true template of every line, or ``None`` when the system has no truth file."""
    if not system.truth_path.is_file():
        return None
    truth = pd.read_csv(system.truth_path, dtype=str, keep_default_na=False)
    if len(truth) != len(system.contents):
        raise ValueError(f"{system.truth_path} has {len(truth)} rows for {len(system.contents)} log lines")
    return truth["EventTemplate"].tolist()


# -- parsers ------------------------------------------------------------------------------------
def miner_parser(settings: MinerSettings) -> Parser:
    def parse(contents: Sequence[str]) -> list[tuple[str, str]]:
        miner = TemplateMiner(settings)
        ids = [miner.add(line).template_id for line in contents]
        final = miner.templates()
        return [(cid, final[cid]) for cid in ids]

    return parse


def masked_line_parser(contents: Sequence[str]) -> list[tuple[str, str]]:
    """Baseline: one template per distinct masked line."""
    return [(template, template) for template in (mask(line) for line in contents)]


def first_tokens_parser(n: int) -> Parser:
    """Baseline: group by token count and the first ``n`` masked tokens; a group's template keeps
    the positions on which all its lines agree."""

    def parse(contents: Sequence[str]) -> list[tuple[str, str]]:
        tokens = [mask(line).split() for line in contents]
        keys = [f"{len(t)}|{' '.join(t[:n])}" for t in tokens]
        merged: dict[str, list[str]] = {}
        for key, toks in zip(keys, tokens, strict=True):
            have = merged.setdefault(key, list(toks))
            for i, tok in enumerate(toks):
                if have[i] != tok:
                    have[i] = "<*>"
        return [(key, " ".join(merged[key])) for key in keys]

    return parse


DRAIN_PLAIN = MinerSettings(depth=4, similarity=0.5)


def default_parsers(settings: MinerSettings) -> dict[str, Parser]:
    return {
        "foresight": miner_parser(settings),
        "drain (depth 4, sim 0.5)": miner_parser(DRAIN_PLAIN),
        "first 3 tokens": first_tokens_parser(3),
        "masked line": masked_line_parser,
    }


# -- running ------------------------------------------------------------------------------------
def run_system(
    system: SystemLog, parser_name: str, parser: Parser, truth: list[str] | None
) -> tuple[SystemResult, list[tuple[str, str]]]:
    start = time.perf_counter()
    parsed = parser(system.contents)
    seconds = time.perf_counter() - start
    scores = None if truth is None else score(truth, [template for _, template in parsed])
    rate = len(parsed) / seconds if seconds > 0 else float("inf")
    return SystemResult(system.name, parser_name, scores, rate, len({t for _, t in parsed})), parsed


def write_parsed(out: Path, name: str, parsed: list[tuple[str, str]]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["LineId", "EventId", "EventTemplate"])
        writer.writerows((i, cid, template) for i, (cid, template) in enumerate(parsed, start=1))
    return path


def run(
    data: Path,
    out: Path,
    settings: MinerSettings | None = None,
    log_format: str | None = None,
    systems: Sequence[str] | None = None,
) -> list[SystemResult]:
    """Every parser on every system; the miner's output written to ``out``; results per system."""
    settings = settings or MinerSettings()
    results = []
    for name in systems or find_systems(data):
        system = read_system(data, name, log_format)
        truth = read_truth(system)
        for parser_name, parser in default_parsers(settings).items():
            result, parsed = run_system(system, parser_name, parser, truth)
            if parser_name == "foresight":
                write_parsed(out, name, parsed)
            results.append(result)
    return results


# -- leave one system out -----------------------------------------------------------------------
SETTINGS_GRID: dict[str, Sequence[Any]] = {
    "depth": (3, 4, 5, 6),
    "similarity": (0.4, 0.5, 0.6, 0.7, 0.8),
    "count_wildcards": (False, True),
}


def objective(scores: ParseScores) -> float:
    """What the choice maximises: the mean of GA and PA (the two figures with goals)."""
    return (scores.ga + scores.pa) / 2


@dataclass(frozen=True)
class HeldOut:
    system: str
    chosen: MinerSettings
    scores: ParseScores


def leave_one_system_out(
    data: Path, base: MinerSettings | None = None, systems: Sequence[str] | None = None
) -> tuple[list[HeldOut], MinerSettings]:
    """For each system: the grid setting best on the others (mean objective), scored on it. Also the
    setting best on all systems (the default to fix)."""
    base = base or MinerSettings()
    names = list(systems or find_systems(data))
    logs = {n: read_system(data, n) for n in names}
    truths = {n: read_truth(logs[n]) for n in names}
    keys = list(SETTINGS_GRID)
    grid = [
        replace(base, **dict(zip(keys, values, strict=True)))
        for values in itertools.product(*SETTINGS_GRID.values())
    ]
    table: dict[MinerSettings, dict[str, ParseScores]] = {}
    for candidate in grid:
        parse = miner_parser(candidate)
        table[candidate] = {}
        for n in names:
            truth = truths[n]
            if truth is None:
                raise ValueError(f"{n} has no truth file: cannot choose settings on it")
            table[candidate][n] = score(truth, [t for _, t in parse(logs[n].contents)])

    def best(on: Sequence[str]) -> MinerSettings:
        # ties go to the earlier grid point, so the choice does not depend on float noise
        return max(grid, key=lambda c: round(sum(objective(table[c][n]) for n in on) / len(on), 6))

    held = [HeldOut(n, chosen := best([m for m in names if m != n]), table[chosen][n]) for n in names]
    return held, best(names)


# -- speed --------------------------------------------------------------------------------------
def throughput(
    data: Path, settings: MinerSettings | None = None, min_lines: int = 100_000
) -> tuple[int, float, float]:
    """Lines, lines/s and lines per CPU-second of ``TemplateMiner.add`` over every system's
    contents, looped until ``min_lines``; each loop after the first rotates every digit (0->1,
    ...), so repeated lines carry new values as real streams do rather than hitting the miner's
    memo verbatim. (CPU time is the fairer figure on a shared machine.)"""
    contents = [line for n in find_systems(data) for line in read_system(data, n).contents]
    miner = TemplateMiner(settings or MinerSettings())
    loops = -(-min_lines // len(contents))
    batches = [
        [line.translate(str.maketrans("0123456789", _rotated(k))) for line in contents] for k in range(loops)
    ]
    start, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        for line in batch:
            miner.add(line)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    total = loops * len(contents)
    return total, total / seconds, total / cpu_seconds


def _rotated(k: int) -> str:
    digits = "0123456789"
    return digits[k % 10 :] + digits[: k % 10]
