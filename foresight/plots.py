"""Matplotlib figures logged to MLflow and embedded in the HTML report (Agg backend, no screen)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def backtest_figure(forecasts: pd.DataFrame, history: pd.DataFrame, *, max_series: int = 6) -> plt.Figure:
    """Actuals against each backtest window's forecast band, for the worst-scored series first."""
    ids = list(dict.fromkeys(forecasts["unique_id"]))[:max_series]
    fig, axes = plt.subplots(len(ids), 1, figsize=(10, 2.2 * len(ids)), squeeze=False, sharex=False)
    for ax, uid in zip(axes[:, 0], ids, strict=True):
        hist = history[history["unique_id"] == uid]
        fc = forecasts[forecasts["unique_id"] == uid]
        start = fc["ds"].min() - (fc["ds"].max() - fc["ds"].min())
        hist = hist[hist["ds"] >= start]
        ax.plot(hist["ds"], hist["y"], color="black", lw=0.8, label="actual")
        for _, window in fc.groupby("cutoff") if "cutoff" in fc else [(None, fc)]:
            ax.fill_between(window["ds"], window["yhat_lower"], window["yhat_upper"], color="tab:blue", alpha=0.2)
            ax.plot(window["ds"], window["yhat"], color="tab:blue", lw=1)
        ax.set_title(uid, fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def forecast_figure(history: pd.DataFrame, forecasts: pd.DataFrame, *, ids: list[str],
                    thresholds: dict[str, float] | None = None) -> plt.Figure:
    """Recent history, the forecast and its interval; the threshold line where one applies."""
    fig, axes = plt.subplots(len(ids), 1, figsize=(10, 2.2 * len(ids)), squeeze=False)
    for ax, uid in zip(axes[:, 0], ids, strict=True):
        hist = history[history["unique_id"] == uid].tail(24 * 7)
        fc = forecasts[forecasts["unique_id"] == uid]
        ax.plot(hist["ds"], hist["y"], color="black", lw=0.8)
        ax.fill_between(fc["ds"], fc["yhat_lower"], fc["yhat_upper"], color="tab:orange", alpha=0.25)
        ax.plot(fc["ds"], fc["yhat"], color="tab:orange", lw=1)
        metric = uid.rsplit("/", 1)[-1]
        if thresholds and metric in thresholds:
            ax.axhline(thresholds[metric], color="tab:red", lw=0.8, ls="--")
        ax.set_title(uid, fontsize=8, loc="left")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def importance_figure(importance: pd.Series, *, top: int = 20) -> plt.Figure:
    """Horizontal bar chart of the largest feature importances."""
    top_items = importance.sort_values(ascending=True).tail(top)
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top_items) + 1))
    ax.barh(top_items.index.astype(str), top_items.to_numpy(), color="tab:green")
    ax.tick_params(labelsize=7)
    ax.set_title("feature importance (gain)", fontsize=9)
    fig.tight_layout()
    return fig


def save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
