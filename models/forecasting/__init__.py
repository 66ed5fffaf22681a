"""Capacity forecasters; importing the package registers them in ``models.base.FORECASTERS``.

Heavy libraries (prophet, lightgbm) are imported only when a model is fitted.
"""

# Importing each model module runs its @FORECASTERS.register decorator.
from models.forecasting.lgbm_global import LGBMGlobalForecaster
from models.forecasting.prophet_model import ProphetForecaster
from models.forecasting.seasonal_naive import SeasonalNaive

__all__ = ["LGBMGlobalForecaster", "ProphetForecaster", "SeasonalNaive"]
