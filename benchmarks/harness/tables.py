"""How the tables show a figure over seeds: its mean, and ± its standard deviation."""

from __future__ import annotations

import math


def plus_minus(mean: float, std: float, fmt: str = "{:.3f}") -> str:
    """``mean ± std`` in ``fmt``; the mean alone where std is 0 or missing, '' where the
    mean is missing."""
    if mean is None or mean != mean:
        return ""
    spread = std if std is not None and not math.isnan(std) else 0.0
    return fmt.format(mean) + (f" ± {fmt.format(spread)}" if spread else "")


def mean_std(values, fmt: str = "{:.3f}") -> str:
    """``plus_minus`` of a pandas Series' mean and standard deviation, missing values
    left out ('' for none; one value has no spread)."""
    values = values.dropna()
    if values.empty:
        return ""
    return plus_minus(values.mean(), values.std() if len(values) > 1 else 0.0, fmt)
