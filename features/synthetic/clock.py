"""The synthetic shop's calendar: the seasonal intensity of shop activity and the clock built on it.

Shop activity follows a seasonal intensity: a daily rhythm (quiet at night, peaking in the evening,
UTC), a weekly rhythm (Sunday and Monday busiest, Saturday quietest) and a yearly one (a summer dip
around late July, a build-up through October and November, a Black Friday to Cyber Monday spike, a
December gift peak that collapses over Christmas, and January and early-July sales). Every purchase,
acquisition and browsing time is drawn from this intensity: the process runs in "shop time" (the
integral of the intensity), which is mapped back to the clock. The shop has been trading for two years
before ``start`` (the warm-up, when the existing customer base was acquired), and new customers arrive
at a rate growing by about 35 % a year on top of the seasonal intensity.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa

_DAY = 86_400  # seconds
_HOUR = 3_600
_US = 1_000_000

# --------------------------------------------------------------------------------------------------
# Knobs of the calendar
# --------------------------------------------------------------------------------------------------

_ACQUISITION_GROWTH_PER_YEAR = 1.35  # arrival rate multiplies by this each year
_WARMUP_DAYS = 730  # the shop already trades this long before the period: its customers are the base
# Monday .. Sunday
_WEEKLY = np.array([1.12, 1.05, 1.0, 0.98, 0.9, 0.8, 1.1])
# hour of day, UTC
_DIURNAL = np.array([0.15, 0.1, 0.07, 0.06, 0.07, 0.12, 0.25, 0.45, 0.7, 0.9, 1.0, 1.05,
                     1.15, 1.1, 1.05, 1.05, 1.1, 1.2, 1.35, 1.5, 1.55, 1.35, 0.9, 0.45])


def _black_fridays(years: np.ndarray) -> list[pd.Timestamp]:
    """The day after the fourth Thursday of November, for each year."""
    out = []
    for y in years:
        nov1 = pd.Timestamp(year=int(y), month=11, day=1)
        first_thu = 1 + (3 - nov1.dayofweek) % 7
        out.append(pd.Timestamp(year=int(y), month=11, day=first_thu + 21 + 1))
    return out


def _yearly_factor(days: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Yearly seasonality (unnormalised) and the sale-period flag for calendar days (naive dates)."""
    doy = days.dayofyear.to_numpy().astype(float)
    month = days.month.to_numpy()
    dom = days.day.to_numpy()
    f = 1.0 - 0.22 * np.exp(-0.5 * ((doy - 205.0) / 28.0) ** 2)  # summer dip, late July
    f += 0.25 * np.clip((doy - 274.0) / 60.0, 0.0, 1.0)  # build-up from October into December
    dec = month == 12
    f += np.where(dec & (dom <= 21), 0.55, 0.0)  # gift season
    f *= np.where(dec & (dom >= 24) & (dom <= 26), 0.45, 1.0)  # Christmas
    f *= np.where(dec & (dom >= 27), 0.85, 1.0)
    january_sale = (month == 1) & (dom <= 14)
    summer_sale = (month == 7) & (dom <= 14)
    f += np.where(january_sale, 0.2, 0.0) + np.where(summer_sale, 0.1, 0.0)
    promo = january_sale | summer_sale
    for bf in _black_fridays(np.unique(days.year.to_numpy())):  # Black Friday .. Cyber Monday
        cyber = (days >= bf) & (days <= bf + pd.Timedelta(days=3))
        f = np.where(cyber, f * 1.9, f)
        promo = promo | cyber
    return f, promo


_REF_DAYS = pd.date_range("2023-01-01", "2023-12-31", freq="D")
_YEARLY_MEAN = float(_yearly_factor(_REF_DAYS)[0].mean())
_WEEKLY_N = _WEEKLY / _WEEKLY.mean()
_DIURNAL_N = _DIURNAL / _DIURNAL.mean()


class _Clock:
    """The warm-up year and the period on an hourly grid, with the seasonal intensity and its integral
    ("shop time"; one shop-day is one calendar day of average intensity).

    Times are whole (or float) seconds since the origin, one warm-up year before ``start``; the period
    is ``[first_sec, last_sec]``.
    """

    def __init__(self, start: pd.Timestamp, end: pd.Timestamp) -> None:
        origin = start - pd.Timedelta(days=_WARMUP_DAYS)
        self.origin_us = origin.value // 1000
        span_us = end.value // 1000 - self.origin_us
        self.first_sec = _WARMUP_DAYS * _DAY  # start of the period
        self.last_sec = (span_us - 1) // _US  # the last whole second before ``end``
        span_s = span_us / _US
        n_hours = max(1, math.ceil(span_s / _HOUR))
        self.edges = np.minimum(np.arange(n_hours + 1) * float(_HOUR), span_s)
        hour_starts = origin.tz_localize(None) + pd.to_timedelta(self.edges[:-1], unit="s")
        uniq_days, day_idx = np.unique(hour_starts.normalize().to_numpy(), return_inverse=True)
        yearly, promo = _yearly_factor(pd.DatetimeIndex(uniq_days))
        self.intensity = (yearly[day_idx] / _YEARLY_MEAN * _WEEKLY_N[hour_starts.dayofweek.to_numpy()]
                          * _DIURNAL_N[hour_starts.hour.to_numpy()])
        self.promo = promo[day_idx]
        dur_days = np.diff(self.edges) / _DAY
        self.cum = np.concatenate([[0.0], np.cumsum(self.intensity * dur_days)])
        years = ((self.edges[:-1] + self.edges[1:]) / 2 - self.first_sec) / (365.25 * _DAY)
        growth = _ACQUISITION_GROWTH_PER_YEAR ** years
        self.cum_growth = np.concatenate([[0.0], np.cumsum(self.intensity * growth * dur_days)])

    def to_seconds(self, shop_time: np.ndarray, *, growth: bool = False) -> np.ndarray:
        """Map shop time (or growth-weighted shop time) to whole seconds, clipped to before ``end``."""
        cum = self.cum_growth if growth else self.cum
        sec = np.floor(np.interp(shop_time, cum, self.edges)).astype(np.int64)
        return np.clip(sec, 0, self.last_sec)

    def to_shop_time(self, sec: np.ndarray) -> np.ndarray:
        """Map seconds to shop time (the integral of the intensity since the origin)."""
        return np.interp(np.asarray(sec, dtype=float), self.edges, self.cum)

    def draw_seconds(self, rng: np.random.Generator, n: int, *, warmup: bool = False) -> np.ndarray:
        """``n`` sorted times following the growth-weighted intensity, over the period (and warm-up)."""
        lo = 0.0 if warmup else float(np.interp(self.first_sec, self.edges, self.cum_growth))
        sec = self.to_seconds(lo + rng.random(n) * (self.cum_growth[-1] - lo), growth=True)
        return np.sort(sec if warmup else np.maximum(sec, self.first_sec))

    def is_promo(self, sec: np.ndarray) -> np.ndarray:
        """Whether each second falls in a sale period."""
        return self.promo[np.minimum(sec // _HOUR, len(self.promo) - 1)]

    def timestamps(self, sec: np.ndarray) -> pa.Array:
        """Whole seconds since the origin as UTC microsecond timestamps (Arrow)."""
        return pa.array(self.origin_us + np.asarray(sec, dtype=np.int64) * _US, type=pa.timestamp("us", tz="UTC"))
