"""Forecast-start sanity check: does a forecast start where its series is?

Pure. A forecast whose first step lands far from the last actual (a model that missed a level
shift, or a last value caught in an incident) draws a plan from the wrong place, and a narrow
band hides it. Per series: ``start_jump`` = first ``yhat`` minus the last actual, ``start_noise``
= the median absolute step over the last ``window`` steps of history (robust to the spike it
checks), and a ``start_warning`` when |jump| exceeds ``k`` times that noise *and* the step-1
band does not reach the last actual's neighbourhood (the last actual +- one step noise). Both,
because either alone flags healthy forecasts: a
slowly moving series (memory) has a tiny step noise, so a seasonal model's first step can be
many "noises" away while its band honestly holds the last value; and a narrow band can miss a
last value that is only a normal step away. (On the demo, the jump rule alone flagged six
memory series, five of them with the last actual inside the band.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from foresight.schemas import ID_COL, TARGET_COL, TIME_COL, require_columns

START_COLUMNS: tuple[str, ...] = (ID_COL, "start_jump", "start_noise", "start_warning")
# Noise below this share of the series' level is read as this share: a flat series moving by a
# hair is not "jumping" when its forecast starts a hair away.
_NOISE_FLOOR = 1e-3


def forecast_start_checks(
    forecasts: pd.DataFrame, history: pd.DataFrame, *, k: float = 5.0, window: int = 48
) -> pd.DataFrame:
    """``START_COLUMNS`` per series with both a forecast and at least two actuals.

    ``forecasts``: unique_id, ds, yhat, yhat_lower, yhat_upper; ``history``: unique_id, ds, y.
    """
    require_columns(forecasts, (ID_COL, TIME_COL, "yhat", "yhat_lower", "yhat_upper"), "forecast start forecasts")
    require_columns(history, (ID_COL, TIME_COL, TARGET_COL), "forecast start history")
    if not k > 0:
        raise ValueError(f"k must be positive, got {k}")
    if window < 2:
        raise ValueError(f"window must be at least 2 steps, got {window}")
    first = forecasts.sort_values([ID_COL, TIME_COL], kind="stable").groupby(ID_COL, observed=True).head(1)
    first = first.set_index(ID_COL)[["yhat", "yhat_lower", "yhat_upper"]]
    recent = history.dropna(subset=[TARGET_COL]).sort_values([ID_COL, TIME_COL], kind="stable")
    recent = recent[recent[ID_COL].isin(first.index)].groupby(ID_COL, observed=True).tail(window + 1)
    grouped = recent.groupby(ID_COL, observed=True)[TARGET_COL]
    last = grouped.last()
    steps = recent[TARGET_COL].diff().abs().where(recent[ID_COL].eq(recent[ID_COL].shift()))
    noise = steps.groupby(recent[ID_COL], observed=True).median().dropna()
    ids = first.index.intersection(noise.index)
    out = pd.DataFrame(index=ids)
    out["start_jump"] = first.loc[ids, "yhat"] - last.loc[ids]
    floor = _NOISE_FLOOR * last.loc[ids].abs().clip(lower=1.0)
    out["start_noise"] = np.maximum(noise.loc[ids], floor)
    out["start_warning"] = [
        _warning(out.at[uid, "start_jump"], out.at[uid, "start_noise"], float(last.loc[uid]),
                 float(first.at[uid, "yhat_lower"]), float(first.at[uid, "yhat_upper"]), k)
        for uid in ids
    ]
    return out.rename_axis(ID_COL).reset_index()[list(START_COLUMNS)]


def _warning(jump: float, noise: float, last: float, lower: float, upper: float, k: float) -> str | None:
    if abs(jump) <= k * noise or lower - noise <= last <= upper + noise:
        return None
    direction = "above" if jump > 0 else "below"
    return (f"forecast starts {abs(jump):.1f} {direction} the last actual {last:.1f} "
            f"({abs(jump) / noise:.0f}x the recent step noise {noise:.2f}); "
            f"its step-1 band [{lower:.1f}, {upper:.1f}] does not reach it within that noise")
