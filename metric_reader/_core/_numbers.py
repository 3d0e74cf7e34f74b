"""Numbers that JSON can hold: NaN and the infinities as Prometheus writes them."""

from __future__ import annotations

import math


def json_number(value: float | None) -> float | str | None:
    """``value`` itself when finite (or None), else ``"NaN"``, ``"+Inf"`` or ``"-Inf"``:
    JSON has no NaN or Inf."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
