"""Rightsizing: the cheapest allowed instance type that keeps the forecast's upper quantile under target.

Pure. Per service, the forecast upper bound (``yhat_upper``: the upper end of the central
``level`` % interval, the (50 + level/2)th percentile) of CPU and memory utilisation on the type
the service runs today is turned into demand in vCPU and GiB per instance (the busiest instance
at the busiest step). A type fits when that demand stays at or under ``target_utilisation`` % of
its vCPUs and ``memory_target_utilisation`` % of its memory (memory defaults to the same target;
it usually runs hotter, as it does not burst the way CPU does); the cheapest fitting type of the
allowed families (or the current type) is recommended; with ``prefer_same_family`` the cheapest
fitting type of the current family and generation (c6i stays c6i) wins over other families, which
are only looked at when none of it fits. Sizing on the forecast, not on a percentile of the past, is the point: a service
whose load is rising gets the capacity it will need, where a history p95 (what Compute Optimizer
or krr look at) still sees the smaller past.

The probability of exceeding capacity reads the interval as a Normal band around ``yhat``
(sigma = upper half-width / z), the upper side being what matters; per instance and step it is
P(utilisation > 100 % of the type), and the largest over the horizon is reported, for the
recommended type and for the current one (the risk of changing nothing).

A proposed change can be held by a :class:`~models.capacity.rightsizing_tolerance.Tolerance`
(action ``hold``: the service keeps its type, ``sized_instance_type`` names the type the sizing
alone picked, the reason says why). ``monthly_cost_change`` is signed: recommended minus current,
negative for a saving, positive for an increase; ``monthly_savings`` is its negation.
vCPUs are compared as equals across families (no per-generation speed factor), and burstable
types are taken at their full vCPU count, so they are only candidates when their family is
allowed explicitly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TIME_COL, require_columns
from models.capacity.rightsizing_tolerance import Tolerance, hold_reason

HOURS_PER_MONTH = 730.0  # AWS's convention for monthly on-demand cost
# Column -> dtype of a recommendation frame, in order.
RIGHTSIZING_DTYPES: dict[str, str] = {
    "service": "object",
    "instance_count": "int64",
    "current_instance_type": "object",
    "recommended_instance_type": "object",
    "current_monthly_cost": "float64",
    "recommended_monthly_cost": "float64",
    "monthly_savings": "float64",
    "monthly_cost_change": "float64",
    "sized_instance_type": "object",
    "demand_vcpu": "float64",
    "demand_memory_gib": "float64",
    "peak_upper_utilisation": "float64",
    "exceed_probability": "float64",
    "current_exceed_probability": "float64",
    "action": "object",
    "reason": "object",
    "price_source": "object",
}
RIGHTSIZING_COLUMNS: tuple[str, ...] = tuple(RIGHTSIZING_DTYPES)
FLEET_COLUMNS: tuple[str, ...] = ("service", "instance_type", "instance_count")
INSTANCE_COLUMNS: tuple[str, ...] = ("instance_type", "family", "vcpu", "memory_gib", "usd_per_hour")
ACTIONS: tuple[str, ...] = ("keep", "hold", "downsize", "upsize", "none_fits", "unknown_type", "no_forecast")


@dataclass(frozen=True)
class Choice:
    """The instance type chosen for a demand, and why."""

    instance_type: str | None
    action: str  # one of ACTIONS
    current_fits: bool


def fleet_from_catalogue(
    series_catalogue: pd.DataFrame, overrides: Mapping[str, Mapping[str, object]] | None = None
) -> pd.DataFrame:
    """``FLEET_COLUMNS`` per service: the most common ``instance_type`` of its series and the count
    of its distinct resources, each replaced by ``overrides[service]["instance_type"/"instance_count"]``
    when set (services only in ``overrides`` are included when both are given)."""
    require_columns(series_catalogue, ("service", "resource_id", "instance_type"), "fleet catalogue")
    cat = series_catalogue.assign(instance_type=series_catalogue["instance_type"].astype("string").fillna(""))
    rows: dict[str, dict[str, object]] = {}
    for service, group in cat.groupby("service", sort=True, observed=True):
        typed = group[group["instance_type"] != ""]
        types = typed.drop_duplicates("resource_id")["instance_type"].value_counts()
        rows[str(service)] = {
            "instance_type": str(types.index[0]) if not types.empty else None,
            "instance_count": int(group["resource_id"].nunique()),
        }
    for service, override in (overrides or {}).items():
        row = rows.setdefault(service, {"instance_type": None, "instance_count": None})
        for key in ("instance_type", "instance_count"):
            if override.get(key) is not None:
                row[key] = override[key]
    fleet = pd.DataFrame(
        [{"service": s, **r} for s, r in rows.items() if r["instance_type"] and r["instance_count"]],
        columns=list(FLEET_COLUMNS),
    )
    if (fleet["instance_count"].astype(int) < 1).any():
        raise ValueError(
            f"instance_count must be at least 1: {fleet[fleet['instance_count'] < 1].to_dict('records')}"
        )
    return fleet.astype({"instance_count": "int64"}).reset_index(drop=True)


def choose_instance_type(
    demand_vcpu: float,
    demand_memory_gib: float,
    current_type: str,
    instances: pd.DataFrame,
    *,
    target_utilisation: float,
    allowed_families: Iterable[str],
    memory_target_utilisation: float | None = None,
    prefer_same_family: bool = False,
) -> Choice:
    """The cheapest priced type (allowed family, or the current type) whose vCPUs hold the demand
    at ``target_utilisation`` % and memory at ``memory_target_utilisation`` % (default: the same).
    A NaN memory demand means memory is not sized. With ``prefer_same_family``, only the current
    type's family is searched while one of its (allowed) types fits.

    Ties go to the current type (no change for nothing), then to more capacity, then by name.
    """
    mem_target = target_utilisation if memory_target_utilisation is None else memory_target_utilisation
    _check_target(target_utilisation)
    _check_target(mem_target)
    require_columns(instances, INSTANCE_COLUMNS, "instance catalogue")
    current = instances[instances["instance_type"] == current_type]
    fits = instances["vcpu"] * target_utilisation / 100.0 >= demand_vcpu - 1e-9
    if not math.isnan(demand_memory_gib):
        fits &= instances["memory_gib"] * mem_target / 100.0 >= demand_memory_gib - 1e-9
    current_fits = bool(fits[current.index].any()) if not current.empty else False
    allowed = instances["family"].isin(set(allowed_families)) | (instances["instance_type"] == current_type)
    candidates = instances[fits & allowed & instances["usd_per_hour"].notna()]
    if candidates.empty:
        return Choice(None, "none_fits", current_fits)
    if prefer_same_family and not current.empty:
        same = candidates[candidates["family"] == current["family"].iloc[0]]
        candidates = same if not same.empty else candidates
    ranked = candidates.assign(
        _not_current=candidates["instance_type"] != current_type,
        _capacity=-(candidates["vcpu"] + candidates["memory_gib"]),
    ).sort_values(["usd_per_hour", "_not_current", "_capacity", "instance_type"], kind="stable")
    best = str(ranked["instance_type"].iloc[0])
    if best == current_type:
        return Choice(best, "keep", current_fits)
    return Choice(best, "downsize" if current_fits else "upsize", current_fits)


def rightsize(
    forecasts: pd.DataFrame,
    series_catalogue: pd.DataFrame,
    fleet: pd.DataFrame,
    instances: pd.DataFrame,
    *,
    target_utilisation: float,
    level: int,
    allowed_families: Iterable[str],
    cpu_metric: str = "cpu_pct",
    memory_metric: str = "mem_pct",
    memory_target_utilisation: float | None = None,
    price_source: str = "",
    tolerance: Tolerance | None = None,
    prefer_same_family: bool = False,
) -> pd.DataFrame:
    """One recommendation per service of ``fleet`` (``RIGHTSIZING_COLUMNS``), largest saving first
    (increases, positive ``monthly_cost_change``, last).

    ``forecasts``: unique_id, ds, yhat, yhat_upper of percent-utilisation series (interval at
    ``level``); ``series_catalogue``: unique_id, service, metric; ``fleet``: service,
    instance_type, instance_count (see :func:`fleet_from_catalogue`); ``instances``: the
    instance catalogue (instance_type, family, vcpu, memory_gib, usd_per_hour).
    ``memory_target_utilisation`` defaults to ``target_utilisation``; ``tolerance`` (default:
    none) holds the changes not worth making; ``prefer_same_family``: see
    :func:`choose_instance_type`.
    """
    require_columns(forecasts, (ID_COL, TIME_COL, "yhat", "yhat_upper"), "rightsizing forecasts")
    require_columns(series_catalogue, (ID_COL, "service", "metric"), "rightsizing catalogue")
    require_columns(fleet, FLEET_COLUMNS, "rightsizing fleet")
    require_columns(instances, INSTANCE_COLUMNS, "instance catalogue")
    _check_target(target_utilisation)
    mem_target = target_utilisation if memory_target_utilisation is None else memory_target_utilisation
    _check_target(mem_target)
    if not 0 < level < 100:
        raise ValueError(f"level must be within (0, 100), got {level}")
    allowed = sorted(set(allowed_families))
    z = NormalDist().inv_cdf(0.5 + level / 200.0)
    series = series_catalogue[[ID_COL, "service", "metric"]].drop_duplicates(ID_COL)
    series = series[series["metric"].isin([cpu_metric, memory_metric])]
    fc = forecasts[[ID_COL, TIME_COL, "yhat", "yhat_upper"]].merge(series, on=ID_COL, how="inner")
    fc["yhat_upper"] = fc["yhat_upper"].fillna(fc["yhat"])  # a step without an interval: its point forecast
    by_type = instances.set_index("instance_type")
    rows = []
    for spec in fleet.itertuples(index=False):
        service, current_type, count = str(spec.service), str(spec.instance_type), int(spec.instance_count)
        own = fc[fc["service"] == service]
        cpu, mem = own[own["metric"] == cpu_metric], own[own["metric"] == memory_metric]
        row: dict[str, object] = dict.fromkeys(RIGHTSIZING_COLUMNS, np.nan)
        row.update(
            service=service,
            instance_count=count,
            current_instance_type=current_type,
            recommended_instance_type=None,
            price_source=price_source,
        )
        if current_type not in by_type.index:
            row.update(
                action="unknown_type",
                reason=f"{current_type} is not in the instance catalogue; cannot convert utilisation to demand",
            )
            rows.append(row)
            continue
        size = by_type.loc[current_type]
        row["current_monthly_cost"] = _monthly(size["usd_per_hour"], count)
        if cpu.empty:
            row.update(action="no_forecast", reason=f"no {cpu_metric} forecast for {service}")
            rows.append(row)
            continue
        demand_vcpu = float(cpu["yhat_upper"].max()) / 100.0 * float(size["vcpu"])
        demand_mem = (
            float(mem["yhat_upper"].max()) / 100.0 * float(size["memory_gib"]) if not mem.empty else math.nan
        )
        choice = choose_instance_type(
            demand_vcpu,
            demand_mem,
            current_type,
            instances,
            target_utilisation=target_utilisation,
            allowed_families=allowed,
            memory_target_utilisation=mem_target,
            prefer_same_family=prefer_same_family,
        )
        current_exceed = _type_exceed_probability(cpu, mem, size, size, z)
        row.update(
            demand_vcpu=demand_vcpu,
            demand_memory_gib=demand_mem,
            action=choice.action,
            sized_instance_type=choice.instance_type,
            current_exceed_probability=current_exceed,
        )
        need = (
            f"forecast p{50 + level / 2:g} peak needs {demand_vcpu:.2f} vCPU{_mem_text(demand_mem)} "
            f"per instance (targets: CPU {target_utilisation:g} %, memory {mem_target:g} %)"
        )
        if choice.instance_type is None:
            row["reason"] = f"{need}; no allowed type ({', '.join(allowed)}) holds it"
            rows.append(row)
            continue
        rec = by_type.loc[choice.instance_type]
        loads = _loads(demand_vcpu, demand_mem, rec, target_utilisation, mem_target)
        verdict = _verdict(
            choice, current_type, size, demand_vcpu, demand_mem, target_utilisation, mem_target, loads
        )
        exceed = _type_exceed_probability(cpu, mem, size, rec, z)
        current_cost = float(row["current_monthly_cost"])  # type: ignore[arg-type]
        held = None if tolerance is None else hold_reason(
            tolerance, action=choice.action, current_type=current_type, proposed_type=str(choice.instance_type),
            current_cost=current_cost, proposed_cost=_monthly(rec["usd_per_hour"], count),
            current_exceed=current_exceed, proposed_exceed=exceed,
            **_binding_load(_loads(demand_vcpu, demand_mem, size, target_utilisation, mem_target)),
        )
        if held is not None:
            rec, loads, exceed = size, _loads(demand_vcpu, demand_mem, size, target_utilisation, mem_target), current_exceed
            row["action"], verdict = "hold", f"{verdict}; held: {held}"
        recommended_cost = _monthly(rec["usd_per_hour"], count)
        row.update(
            recommended_instance_type=str(rec.name),
            recommended_monthly_cost=recommended_cost,
            monthly_cost_change=recommended_cost - current_cost,
            monthly_savings=current_cost - recommended_cost,
            peak_upper_utilisation=100.0 * max(ratio for ratio, _ in loads.values()),
            exceed_probability=exceed,
            reason=f"{need}; {verdict}",
        )
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(RIGHTSIZING_COLUMNS))
    out = out.astype({c: t for c, t in RIGHTSIZING_DTYPES.items() if t != "object"})
    out = out.sort_values(["monthly_cost_change", "service"], ascending=[True, True], na_position="last")
    return out.reset_index(drop=True)


def history_percentile_demand(history: pd.DataFrame, quantile: float = 0.95) -> float:
    """The ``quantile`` of past utilisation ``y`` over all rows: what history-based rightsizers
    (Compute Optimizer, krr) size on. For comparison with the forecast-based demand."""
    require_columns(history, ("y",), "history")
    return float(history["y"].quantile(quantile))


def _exceed_probability(rows: pd.DataFrame, capacity_pct: float, z: float) -> float:
    """Largest per-row P(utilisation > capacity_pct) under Normal(yhat, (yhat_upper - yhat) / z)."""
    mean = rows["yhat"].to_numpy(dtype="float64")
    sigma = np.clip(rows["yhat_upper"].to_numpy(dtype="float64") - mean, 0.0, None) / z
    with np.errstate(divide="ignore", invalid="ignore"):
        zscore = (capacity_pct - mean) / sigma
    tail = 0.5 * _erfc(zscore / math.sqrt(2.0))
    degenerate = ~np.isfinite(zscore)  # zero-width interval: exceed iff the point forecast does
    tail[degenerate] = (mean[degenerate] > capacity_pct).astype("float64")
    return float(tail.max()) if tail.size else math.nan


_erfc = np.vectorize(math.erfc, otypes=["float64"])


def _type_exceed_probability(
    cpu: pd.DataFrame, mem: pd.DataFrame, current: pd.Series, candidate: pd.Series, z: float
) -> float:
    """P(CPU or memory demand > 100 % of ``candidate``), the larger of the two, at the worst step."""
    risks = [_exceed_probability(cpu, 100.0 * float(candidate["vcpu"]) / float(current["vcpu"]), z)]
    if not mem.empty:
        risks.append(
            _exceed_probability(mem, 100.0 * float(candidate["memory_gib"]) / float(current["memory_gib"]), z)
        )
    return max(risks)


def _verdict(
    choice: Choice,
    current_type: str,
    current: pd.Series,
    vcpu: float,
    mem: float,
    cpu_target: float,
    mem_target: float,
    loads: Mapping[str, tuple[float, float]],
) -> str:
    """Why this type: what binds on the recommendation, or what the current type runs out of."""
    binding = max(loads, key=lambda k: loads[k][0] / loads[k][1])
    if choice.action == "keep":
        return f"{current_type} is already the cheapest allowed type that holds it ({binding} binds)"
    if choice.action == "downsize":
        return (
            f"{choice.instance_type} holds it for less ({binding} binds at {100 * loads[binding][0]:.0f} %)"
        )
    short = []
    if vcpu > float(current["vcpu"]) * cpu_target / 100.0 + 1e-9:
        short.append(f"CPU at {100 * vcpu / float(current['vcpu']):.0f} %")
    if not math.isnan(mem) and mem > float(current["memory_gib"]) * mem_target / 100.0 + 1e-9:
        short.append(f"memory at {100 * mem / float(current['memory_gib']):.0f} %")
    return (
        f"{current_type} would run {' and '.join(short)}; {choice.instance_type} is the cheapest allowed "
        f"type that holds it ({binding} binds)"
    )


def _loads(vcpu: float, mem: float, size: pd.Series, cpu_target: float,
           mem_target: float) -> dict[str, tuple[float, float]]:
    """Resource -> (peak demand as a share of ``size``, its target in percent); memory when sized."""
    loads = {"CPU": (vcpu / float(size["vcpu"]), cpu_target)}
    if not math.isnan(mem):
        loads["memory"] = (mem / float(size["memory_gib"]), mem_target)
    return loads


def _binding_load(loads: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """The resource closest to (or furthest past) its target: its load in percent and its target."""
    ratio, target = max(loads.values(), key=lambda item: item[0] * 100.0 / item[1])
    return {"current_load": 100.0 * ratio, "target": target}


def _mem_text(mem: float) -> str:
    return "" if math.isnan(mem) else f" and {mem:.1f} GiB"


def _monthly(usd_per_hour: float, count: int) -> float:
    return float(usd_per_hour) * HOURS_PER_MONTH * count


def _check_target(target_utilisation: float) -> None:
    if not 0 < target_utilisation <= 100:
        raise ValueError(f"target_utilisation must be within (0, 100] percent, got {target_utilisation}")
