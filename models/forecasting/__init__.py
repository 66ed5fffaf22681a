"""Capacity forecasters; importing the package registers them in ``models.forecasting.base.FORECASTERS``.

Heavy libraries (prophet, lightgbm) are imported only when a model is fitted.
"""

# Importing each model module runs its @FORECASTERS.register decorator.
from models.forecasting.ensemble import MeanEnsemble
from models.forecasting.lgbm_global import LGBMGlobalForecaster
from models.forecasting.prophet_model import ProphetForecaster
from models.forecasting.seasonal_naive import SeasonalNaive
from models.forecasting.selection import ChampionSelector
from models.forecasting.smoothing import DampedTrend, SeasonalSmoothing, SimpleExponentialSmoothing

__all__ = [
    "ChampionSelector",
    "DampedTrend",
    "LGBMGlobalForecaster",
    "MeanEnsemble",
    "ProphetForecaster",
    "SeasonalNaive",
    "SeasonalSmoothing",
    "SimpleExponentialSmoothing",
]
