"""``foresight bench`` for detection: NAB, scoring latency, incidents on recorded or generated data,
the dev corpora side by side, failure prediction, simulated incident detection and fault types."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich import box
from rich.table import Table

from foresight.cli.runtime import console

commands = typer.Typer()  # joined into ``foresight bench`` (foresight.cli.bench)
# Each command imports its benchmark inside its body, so ``--help`` need not wait for it.


@commands.command("nab")
def bench_nab(
    data: Path = typer.Option(..., "--data", help="A NAB-layout folder: data/<category>/<name>.csv and labels/."),
    out: Path = typer.Option(..., "--out", help="Where RESULTS/<category>/<detector>_<name>.csv are written."),
    detector: str = typer.Option(None, help="Anomaly detector (registry name; default: the detect flow's)."),
    threshold: float = typer.Option(None, help="Production threshold (default: the detect flow's)."),
    refit_every: str = typer.Option("1d", help="How often a detector that needs fit is refitted on the rows so far "
                                               "(the train flow's schedule); 'never': fitted once on the probation."),
) -> None:
    """Run a detector over the NAB corpus as streams and print its NAB scores per profile."""
    import pandas as pd  # lazy: keeps `foresight --help` fast

    from bench.nab import run as run_nab  # lazy: keeps `foresight --help` fast

    try:
        # pandas 3 spells days "D" (a lower-case "d" warns it will go); people write "1d".
        days = refit_every[:-1] + "D" if refit_every.endswith("d") else refit_every
        refit = None if refit_every == "never" else pd.Timedelta(days)
    except ValueError as exc:
        raise typer.BadParameter(f"--refit-every: {refit_every!r} is not a duration like 1d or 12h ({exc})") from exc
    result = run_nab(data, out, detector=detector, production_threshold=threshold, refit_every=refit)
    table = Table(title=f"NAB: {result.detector} on {result.files} files ({result.rows:,} rows)")
    for column in ("profile", "threshold from", "score", "threshold", "hit", "missed", "FP"):
        table.add_column(column, justify="left" if column in ("profile", "threshold from") else "right")
    short = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}
    for row in result.table():
        table.add_row(short.get(row["profile"], row["profile"]), row["threshold_from"], f"{row['score']:.1f}",
                      f"{row['threshold']:.6f}", str(row["hit"]), str(row["missed"]), str(row["false_positives"]))
    console.print(table)
    console.print(f"detector {result.detect_seconds:.1f} s, total {result.total_seconds:.1f} s; results in {out}")


@commands.command("score-latency")
def bench_score_latency(
    series: int = typer.Option(10_000, min=1, help="Series scored at once."),
    repeats: int = typer.Option(20, min=1, help="Timed updates (median and worst are reported)."),
    detector: str = typer.Option("streaming", help="Streaming state timed: streaming, streaming_knn, streaming_ensemble or incident_stream (the detect flow's default incident builder)."),
    warm_steps: int = typer.Option(300, min=0, help="Untimed updates before the timed ones."),
) -> None:
    """Time scoring the newest sample of many series with a streaming detector (goal: < 0.2 s)."""
    from bench.score_latency import TIMED_DETECTORS  # lazy: keeps `foresight --help` fast
    from bench.score_latency import run as run_latency  # lazy: keeps `foresight --help` fast

    if detector not in TIMED_DETECTORS:
        raise typer.BadParameter(f"{detector!r}; choose one of: {', '.join(TIMED_DETECTORS)}", param_hint="--detector")
    fig = run_latency(series=series, repeats=repeats, warm_steps=warm_steps, detector=detector)
    blocks = f", {fig.block_ends} of them at a coarse block's end" if fig.detector == "streaming_knn" else ""
    console.print(f"{fig.detector}: latest point of {fig.series:,} series scored in {fig.median_seconds * 1e3:.2f} ms "
                  f"(median of {fig.repeats}{blocks}; worst {fig.max_seconds * 1e3:.2f} ms; "
                  f"{fig.per_series_us:.2f} us per series; state {fig.state_mib:.1f} MiB); goal: under 0.2 s")


@commands.command("incidents")
def bench_incidents(
    data: Path = typer.Option(..., "--data", help="A folder in the plain layout (telemetry.csv.gz: unique_id,ds,y "
                              "with ISO 8601 UTC times; catalogue.csv: unique_id,service,metric; faults.csv: "
                              "inject_time,service,inject_type; optional call_graph.csv: source,target), a Nezha "
                              "day folder (<day>/metric/...), or a folder of such folders. See docs/incidents.md."),
    out: Path = typer.Option(..., "--out", help="CSV written with one row per incident raised."),
    pipeline: str = typer.Option("stream", "--pipeline", help="stream: the streaming incident pipeline; "
                                 "flow: the detect flow's roll-up builder (default detector, then the roll-up builder)."),
    window_min: float = typer.Option(5.0, "--window-min",
                                     help="Detection window: a fault counts as detected by an incident opened "
                                          "within this many minutes after it."),
    stream_params: str = typer.Option("{}", "--stream-params",
                                      help='The stream pipeline\'s settings as JSON, e.g. \'{"page_budget_per_day": null}\'.'),
) -> None:
    """Replay incident data (plain or Nezha layout) as a stream; score detection, RCA and fault type."""
    import pandas as pd  # lazy: keeps `foresight --help` fast

    from bench.incidents import PIPELINES, fault_type_confusion  # lazy: keeps `foresight --help` fast
    from bench.incidents import run as run_incidents  # lazy: keeps `foresight --help` fast
    from models.incidents.settings import StreamSettings  # lazy: keeps `foresight --help` fast

    if pipeline not in PIPELINES:
        raise typer.BadParameter(f"{pipeline!r}; choose one of: {', '.join(PIPELINES)}", param_hint="--pipeline")
    if not window_min > 0:
        raise typer.BadParameter(f"{window_min:g}; the detection window must be positive", param_hint="--window-min")
    try:
        settings = StreamSettings.from_params(json.loads(stream_params))
    except (ValueError, TypeError, AttributeError) as exc:  # bad JSON, not an object, or an unknown setting
        raise typer.BadParameter(str(exc), param_hint="--stream-params") from None
    figures, incidents, matches = run_incidents(data, out, settings, pipeline=pipeline,
                                          window=pd.Timedelta(minutes=window_min))

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    table = Table(title=f"Incidents on {data}, {pipeline} pipeline ({figures.faults} faults, "
                        f"{figures.days:.2f} days of data)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row(f"detected within {window_min:g} min",
                  f"{figures.detected}/{figures.faults} ({pct(figures.detection_rate)})")
    table.add_row("incidents raised", str(figures.incidents))
    fa_day = figures.false_alarms_per_day
    table.add_row("false alarms", f"{figures.false_alarms} ({'n/a' if fa_day is None else f'{fa_day:.2f}'} per day)")
    fa_free = figures.false_alarms_per_fault_free_day
    table.add_row("  in fault hours", str(figures.false_alarms_in_fault_hours))
    table.add_row("  in fault-free hours", f"{figures.false_alarms_outside_fault_hours} "
                  f"({'n/a' if fa_free is None else f'{fa_free:.2f}'} per fault-free day)")
    delay = figures.median_delay_seconds
    table.add_row("median delay", "n/a" if delay is None else f"{delay:.0f} s")
    table.add_row("AC@1", pct(figures.ac_at_1))
    table.add_row("AC@3", pct(figures.ac_at_3))
    table.add_row("fault-type accuracy", pct(figures.fault_type_accuracy))
    table.add_row("coarse category accuracy", pct(figures.coarse_category_accuracy))
    console.print(table)
    confusion = fault_type_confusion(matches)
    if not confusion.empty:  # plain text: a rich table would cut the type names at 80 columns
        console.print("Detected faults by injected type (rows) and the type named (columns):")
        console.print(confusion.to_string(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"{len(incidents)} incidents written to {out}")


@commands.command("detection")
def bench_detection(
    data: Path = typer.Option(None, "--data", help="The data root holding nab-dev/ and nezha-dev/ "
                              "(default: the shared/data folder beside the checkout)."),
    corpora: list[str] = typer.Option([], "--corpus", help="A corpus to run (repeatable; default: every one)."),
    out: Path = typer.Option(None, "--out", file_okay=False, help="Folder for detection.csv and detection.json."),
    budget: float = typer.Option(2.0, "--budget", min=0.01, help="False alarms per day the incident objective "
                                 "allows before it discounts recall."),
    stream_grid: str = typer.Option(None, "--stream-grid", help="Settings of the streaming incident pipeline to "
                                    "choose from leave-one-corpus-out, as a JSON list, e.g. "
                                    '\'[{"open_threshold": 6}, {"open_threshold": 8}]\' (default: the shipped '
                                    "settings only)."),
    scenario_systems: int = typer.Option(2, "--scenario-systems", min=0, help="Generated systems per scenario "
                                         "family, each family a corpus (0: no generated corpora)."),
    scenario_seed: int = typer.Option(0, "--scenario-seed", help="Seed of the generated systems."),
) -> None:
    """Every dev corpus and scenario family, worst first: Foresight beside the robust z baselines
    (thresholds leave-one-corpus-out)."""
    from bench.detection import DEFAULT_DATA, default_corpora  # lazy: keeps `foresight --help` fast
    from bench.detection import run as run_detection  # lazy: keeps `foresight --help` fast
    from bench.detection_table import render_detection  # lazy: keeps `foresight --help` fast
    from bench.scenarios import scenario_corpora  # lazy: keeps `foresight --help` fast

    registry = default_corpora()
    for corpus in scenario_corpora(systems=scenario_systems, seed=scenario_seed) if scenario_systems else []:
        registry.register(corpus.name)(corpus)
    unknown = [c for c in corpora if c not in registry]
    if unknown:
        raise typer.BadParameter(f"{', '.join(map(repr, unknown))}; choose from: {', '.join(registry.names())}",
                                 param_hint="--corpus")
    grid = None
    if stream_grid is not None:
        from models.incidents.settings import StreamSettings  # lazy: keeps `foresight --help` fast

        try:
            grid = json.loads(stream_grid)
            if not isinstance(grid, list) or not grid or not all(isinstance(g, dict) for g in grid):
                raise ValueError("expected a non-empty JSON list of objects")
            for params in grid:
                StreamSettings.from_params(params)
        except (ValueError, TypeError) as exc:  # bad JSON, wrong shape, an unknown or invalid setting
            raise typer.BadParameter(str(exc), param_hint="--stream-grid") from None
    started = time.perf_counter()
    result = run_detection(data or DEFAULT_DATA, corpora or None, corpora=registry, budget=budget,
                           stream_grid=grid)
    render_detection(console, result, budget)
    if out is not None:
        csv_path, json_path = result.write(out)
        console.print(f"written: {csv_path}, {json_path}")
    console.print(f"wall time: {time.perf_counter() - started:.1f} s")


@commands.command("failure")
def bench_failure(
    seeds: list[int] = typer.Option([1, 2, 3], "--seed", help="Simulator seeds (repeat the option for several)."),
    days: int = typer.Option(28, min=7, help="Simulated days per seed (about 0.6 incidents a day)."),
    origins: int = typer.Option(3, min=1, help="Rolling-origin test blocks per seed."),
) -> None:
    """Failure prediction on simulated fleets: LightGBM vs the utilisation rule, event-wise, rolling origin."""
    from bench.failure import run as run_failure  # lazy: keeps `foresight --help` fast

    started = time.perf_counter()
    figures = run_failure(seeds, days, origins)
    table = Table(title=f"Failure prediction: {days} simulated days per seed, {origins} rolling-origin blocks "
                        "after the first 60 %")
    for column in ("seed", "model", "recall", "precision", "F1", "lead min", "found", "false", "s"):
        table.add_column(column, justify="left" if column in ("seed", "model") else "right")
    for f in figures:
        lead = "-" if f.median_lead_minutes != f.median_lead_minutes else f"{f.median_lead_minutes:.0f}"
        table.add_row("mean" if f.seed is None else str(f.seed), f.model, f"{f.recall:.2f}", f"{f.precision:.2f}",
                      f"{f.f1:.2f}", lead, f"{f.detected}/{f.incidents}", str(f.false_alarms), f"{f.seconds:.1f}")
    console.print(table)
    console.print("lead min: median minutes from the first alarm to the incident's start; found: incidents "
                  "detected; false: alarm episodes matching no incident; s: wall seconds per evaluation")
    console.print(f"wall time: {time.perf_counter() - started:.1f} s")


@commands.command("detect")
def bench_detect(
    seeds: list[int] = typer.Option([3, 5, 7, 11, 13, 17, 19], "--seed",
                                    help="Simulator seeds (repeat the option for several)."),
    days: int = typer.Option(21, min=2, help="Simulated days per seed (about 0.6 incidents a day)."),
    builders: list[str] = typer.Option(["rollup:streaming", "stream"], "--builder",
                                       help="The train flow's gate on an incident pipeline: "
                                            "rollup:<detector> (that detector's scores rolled up) or stream "
                                            "(the streaming pipeline, calibrated before the split); or "
                                            "stream:windows (the stream replayed in the detect flow's "
                                            "windows); repeatable."),
    stream_params: str = typer.Option("{}", "--stream-params",
                                      help='The stream builder\'s settings as JSON, e.g. \'{"error_material": 5}\'.'),
) -> None:
    """Incident detection on simulated fleets: event F1 of each builder's incidents after the 60 % split."""
    from bench.detect import run as run_detect  # lazy: keeps `foresight --help` fast
    from bench.detect import unknown_builders  # lazy: keeps `foresight --help` fast
    from foresight.settings import DetectConfig  # lazy: keeps `foresight --help` fast
    from models.incidents.settings import StreamSettings  # lazy: keeps `foresight --help` fast

    unknown = unknown_builders(builders)
    if unknown:
        raise typer.BadParameter(unknown, param_hint="--builder")
    try:
        cfg = DetectConfig(stream_params=json.loads(stream_params))
        StreamSettings.from_params(cfg.stream_params)
    except (ValueError, TypeError) as exc:  # bad JSON, not an object, or an unknown setting
        raise typer.BadParameter(str(exc), param_hint="--stream-params") from None
    started = time.perf_counter()
    figures = run_detect(seeds, days, builders, cfg)
    # Unboxed and unpadded, so the longest builder's row fits 80 columns (a log, a pipe) uncut.
    table = Table(title=f"Simulated incident detection: {days} days per seed", box=box.SIMPLE_HEAD, padding=0)
    for column in ("seed", "builder", "F1", "recall", "precision", "raised", "false", "found", "s"):
        table.add_column(column, justify="left" if column in ("seed", "builder") else "right", no_wrap=True)
    for f in figures:
        count = "{:.0f}" if f.seed is not None else "{:.1f}"
        table.add_row("mean" if f.seed is None else str(f.seed), f.builder, f"{f.f1:.2f}", f"{f.recall:.2f}",
                      f"{f.precision:.2f}", count.format(f.raised), count.format(f.false_alarms),
                      f"{count.format(f.detected)}/{count.format(f.incidents)}", f"{f.seconds:.1f}")
    console.print(table)
    console.print(f"Only incidents after the {100 * cfg.train_fraction:.0f} % split count. raised: incidents "
                  "opened after it; false: raised ones matching no incident; found: incidents detected; "
                  "mean rows: per seed; s: wall seconds per evaluation")
    console.print(f"wall time: {time.perf_counter() - started:.1f} s")


@commands.command("scenarios")
def bench_scenarios(
    families: list[str] = typer.Option([], "--family", help="A scenario family (repeatable; default: all). "
                                       "Families: simulator.scenario_families.FAMILIES."),
    systems: int = typer.Option(4, min=1, help="Generated systems per family."),
    seed: int = typer.Option(0, help="Seed of the generated systems."),
    days: int = typer.Option(1, min=1, help="Days per system."),
    step_minutes: int = typer.Option(1, "--step-minutes", min=1, help="Sampling interval of the generated data."),
    stream_params: str = typer.Option("{}", "--stream-params",
                                      help='The stream pipeline\'s settings as JSON, e.g. \'{"open_threshold": 8}\'.'),
    out: Path | None = typer.Option(None, "--out", help="CSV written with one row per family."),
) -> None:
    """Incident detection on generated systems: per family, the incident protocol's figures and event F1."""
    from bench.scenarios import DEFAULT_FAMILIES, write_figures  # lazy: keeps `foresight --help` fast
    from bench.scenarios import run as run_scenarios  # lazy: keeps `foresight --help` fast
    from models.incidents.settings import StreamSettings  # lazy: keeps `foresight --help` fast
    from simulator.scenario_families import FAMILIES  # lazy: keeps `foresight --help` fast

    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise typer.BadParameter(f"{unknown}; choose from: {', '.join(FAMILIES)}", param_hint="--family")
    try:
        settings = StreamSettings.from_params(json.loads(stream_params))
    except (ValueError, TypeError) as exc:  # bad JSON, not an object, or an unknown setting
        raise typer.BadParameter(str(exc), param_hint="--stream-params") from None
    started = time.perf_counter()
    rows = run_scenarios(families or DEFAULT_FAMILIES, systems, seed, days, step_minutes, settings)

    def num(value: float | None, spec: str = ".2f") -> str:
        return "n/a" if value is None else format(value, spec)

    # Unboxed and unpadded, so a row fits 80 columns (a log, a pipe) uncut.
    table = Table(title=f"Generated systems: {systems} per family, {days} day(s) each, seed {seed}",
                  box=box.SIMPLE_HEAD, padding=0)
    for column in ("family", "svc", "graph", "found", "FA/d", "AC@1", "AC@3", "type", "cat", "P", "R", "F1"):
        table.add_column(column, justify="left" if column == "family" else "right", no_wrap=True)
    for r in rows:
        f = r.figures
        table.add_row(r.family, r.services, f"{r.with_graph}/{r.systems}", f"{f.detected}/{f.faults}",
                      num(f.false_alarms_per_day), num(f.ac_at_1), num(f.ac_at_3), num(r.type_accuracy),
                      num(r.coarse_accuracy), num(r.precision), num(r.recall), num(r.f1))
    console.print(table)
    console.print("svc: services per system; graph: systems with a known call graph; found: faults with an "
                  "incident within 5 min after injection; FA/d: incidents matching no fault per system-day; "
                  "P: incidents matching a fault / incidents; R: found / faults; type: the incident names the "
                  "fault type; cat: its coarse category is the type's")
    if out is not None:
        write_figures(rows, out)
        console.print(f"{len(rows)} rows written to {out}")
    console.print(f"wall time: {time.perf_counter() - started:.1f} s")


@commands.command("fault-types")
def bench_fault_types(
    seeds: list[int] = typer.Option([3, 5, 7, 11, 13, 17, 19], "--seed",
                                    help="Simulator seeds (repeat the option for several)."),
    days: int = typer.Option(21, min=2, help="Simulated days per seed (about 0.6 incidents a day)."),
) -> None:
    """Fault types on simulated fleets: the type the stream names against the one injected, per seed."""
    import pandas as pd  # lazy: keeps `foresight --help` fast

    from bench.fault_types import (  # lazy: keeps `foresight --help` fast
        fault_type_accuracy,
        simulated_fault_types,
    )

    matches = simulated_fault_types(seeds, days)

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}%"

    table = Table(title=f"Simulated fault types: {days} days per seed", box=box.SIMPLE_HEAD, padding=(0, 1))
    for column in ("seed", "incidents", "detected", "type accuracy"):
        table.add_column(column, justify="right", no_wrap=True)
    for seed, group in [*matches.groupby("seed"), ("all", matches)]:
        table.add_row(str(seed), str(len(group)), str(int(group["detected"].sum())), pct(fault_type_accuracy(group)))
    console.print(table)
    detected = matches[matches["detected"]]
    if len(detected):
        confusion = pd.crosstab(detected["injected"], detected["named"])
        console.print("Detected incidents by injected type (rows) and the type named (columns):")
        console.print(confusion.to_string(), markup=False, highlight=False, soft_wrap=True)
