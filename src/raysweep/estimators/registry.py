"""The model families a `family` hyperparameter chooses among: one module each, one line here."""

from raysweep.estimators import lightgbm_boosting, logistic_regression, random_forest, xgboost_boosting
from raysweep.estimators.contract import Family

FAMILIES: dict[str, Family] = {
    "logistic_regression": logistic_regression,
    "random_forest": random_forest,
    "lightgbm": lightgbm_boosting,
    "xgboost": xgboost_boosting,
}
