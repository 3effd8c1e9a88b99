"""Crossed-design (seed x query) paired t-test and the one-method t-interval (docs/statistics.md 2 and 4)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

LEVEL = 0.95
ZERO_TOL = 1e-12  # relative to max(1, max |y|): smaller differences and standard errors count as 0


@dataclass(frozen=True)
class SeedQueryParts:
    """Section 2.2 quantities of one entity; arrays carry the metrics' trailing shape P."""

    n_seeds: int
    n_units: int
    per_seed: np.ndarray  # M[s]: per-seed metric, [S, *P]
    unit_mean: np.ndarray  # ybar[q]: seed-averaged per-unit value, [N, *P]
    value: np.ndarray  # th: entity value, [*P]
    seed_var: np.ndarray  # V_m: seed component of Var(th), [*P]
    scale: float  # max(1, max |y|), for the zero tolerance

    def metric(self, index: int) -> SeedQueryParts:
        """The parts of one metric (trailing index)."""
        return SeedQueryParts(self.n_seeds, self.n_units, self.per_seed[:, index], self.unit_mean[:, index],
                              self.value[index], self.seed_var[index], self.scale)


def seed_query_parts(y: np.ndarray) -> SeedQueryParts:
    """Two-way (seed x query) decomposition of per-unit values y [S, N, *P] of one entity."""
    y = np.asarray(y, dtype=np.float64)
    s, n = y.shape[:2]
    if n < 2:
        raise ValueError("at least 2 queries are needed")
    per_seed = y.mean(axis=1)
    unit_mean = y.mean(axis=0)
    value = per_seed.mean(axis=0)
    if s < 2:
        seed_var = np.zeros_like(value)
    else:
        ms_seed = n * ((per_seed - value) ** 2).sum(axis=0) / (s - 1)
        resid = y - per_seed[:, None] - unit_mean[None] + value
        ms_res = (resid**2).sum(axis=(0, 1)) / ((s - 1) * (n - 1))
        seed_var = np.maximum(0.0, (ms_seed - ms_res) / n) / s
    scale = max(1.0, float(np.abs(y).max(initial=0.0)))
    return SeedQueryParts(s, n, per_seed, unit_mean, value, seed_var, scale)


@dataclass(frozen=True)
class TTest:
    """Result of the crossed-design test (arrays over comparisons and metrics)."""

    delta: np.ndarray
    se: np.ndarray
    t: np.ndarray
    nu: np.ndarray
    p: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    share_queries: np.ndarray  # V_Q / V
    share_seeds: np.ndarray  # (V_A + V_B) / V
    degenerate: np.ndarray  # V = 0: "no variation"


def _satterthwaite(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """nu = V^2 / sum(V_i^2 / df_i) over (variance, df) terms, terms with zero variance dropped."""
    total = sum(v for v, _ in parts)
    denom = sum(np.where(v > 0, v**2 / np.maximum(df, 1), 0.0) for v, df in parts)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, total**2 / np.where(denom > 0, denom, 1.0), np.inf)


def _crossed_parts(
    ref: SeedQueryParts, others_mean: np.ndarray, v_o: np.ndarray, df_o: np.ndarray, tol: float
) -> tuple[np.ndarray, ...]:
    """(delta, v_q, v_a, v, nu, degenerate, zero, t) of `ref` minus each row of others_mean [m, N, *P]."""
    n = ref.n_units
    d = ref.unit_mean[None] - others_mean
    delta = d.mean(axis=1)
    v_q = d.var(axis=1, ddof=1) / n
    v_a = np.broadcast_to(ref.seed_var, v_q.shape)
    v = v_q + v_a + v_o
    degenerate = v <= tol**2
    nu = _satterthwaite([(v_q, np.float64(n - 1)), (v_a, np.float64(ref.n_seeds - 1)), (v_o, df_o)])
    se = np.sqrt(np.where(degenerate, 0.0, v))
    zero = np.abs(delta) <= tol
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(degenerate, np.where(zero, 0.0, np.sign(delta) * np.inf), delta / np.where(degenerate, 1, se))
    return delta, v_q, v_a, v, nu, degenerate, zero, t


def _p_value(t: np.ndarray, nu: np.ndarray, degenerate: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """Two-sided p of the t statistics (1 for a degenerate zero difference, 0 for a degenerate nonzero one)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(degenerate, np.where(zero, 1.0, 0.0), 2 * sps.t.sf(np.abs(t), nu))


def _others(others: Sequence[SeedQueryParts]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit means [m, N, *P], seed variances [m, *P], seed degrees of freedom [m, 1...]) of the compared entities."""
    v_o = np.stack([o.seed_var for o in others])
    trail = (1,) * (v_o.ndim - 1)
    df_o = np.array([o.n_seeds - 1 for o in others], dtype=np.float64).reshape(-1, *trail)
    return np.stack([o.unit_mean for o in others]), v_o, df_o


def crossed_t_tests(ref: SeedQueryParts, others: Sequence[SeedQueryParts], level: float = LEVEL) -> TTest:
    """Paired crossed-design t-test of `ref` minus each of `others` (leading axis), vectorised."""
    ybar_o, v_o, df_o = _others(others)
    tol = ZERO_TOL * max(ref.scale, *(o.scale for o in others))
    delta, v_q, v_a, v, nu, degenerate, zero, t = _crossed_parts(ref, ybar_o, v_o, df_o, tol)
    se = np.sqrt(np.where(degenerate, 0.0, v))
    p = _p_value(t, nu, degenerate, zero)
    with np.errstate(divide="ignore", invalid="ignore"):
        half = np.where(degenerate, 0.0, sps.t.ppf(0.5 + level / 2, nu) * se)
        share_q = np.where(degenerate, np.nan, v_q / v)
        share_s = np.where(degenerate, np.nan, (v_a + v_o) / v)
    delta = np.where(degenerate & zero, 0.0, delta)
    return TTest(delta, se, t, nu, p, delta - half, delta + half, share_q, share_s, degenerate)


def pairwise_p(parts: Sequence[SeedQueryParts]) -> np.ndarray:
    """Symmetric [k, k, *P] p-values of `crossed_t_tests(parts[i], parts[i + 1:])` for every i (diagonal 1).

    The same numbers as calling `crossed_t_tests` row by row (its zero tolerance included: row i uses the
    largest scale of parts[i:]), with the entities stacked once and one t-distribution call for all pairs.
    """
    k = len(parts)
    p = np.ones((k, k, *np.shape(parts[0].value)))
    if k < 2:
        return p
    ybar, v_all, df_all = _others(parts)
    scales = np.maximum.accumulate(np.array([q.scale for q in parts])[::-1])[::-1]  # max of scale[i:]
    rows = [_crossed_parts(parts[i], ybar[i + 1:], v_all[i + 1:], df_all[i + 1:], ZERO_TOL * float(scales[i]))
            for i in range(k - 1)]
    nu, degenerate, zero, t = (np.concatenate([r[j] for r in rows]) for j in (4, 5, 6, 7))
    flat = _p_value(t, nu, degenerate, zero)
    i, j = np.triu_indices(k, 1)
    p[i, j] = p[j, i] = flat
    return p


def crossed_t_test(a: SeedQueryParts, b: SeedQueryParts, level: float = LEVEL) -> TTest:
    """Paired crossed-design t-test of A minus B (docs/statistics.md 2.2)."""
    res = crossed_t_tests(a, [b], level)
    return TTest(*(getattr(res, f)[0] for f in TTest.__dataclass_fields__))


@dataclass(frozen=True)
class Interval:
    """A point estimate with a symmetric t-interval."""

    value: np.ndarray
    half_width: np.ndarray
    nu: np.ndarray


def mean_interval(parts: SeedQueryParts, level: float = LEVEL) -> Interval:
    """One method's value -/+ t(nu_1) sqrt(V_1), V_1 = var(ybar)/N + V_m (docs/statistics.md 4)."""
    v_q = parts.unit_mean.var(axis=0, ddof=1) / parts.n_units
    v = v_q + parts.seed_var
    nu = _satterthwaite([(v_q, np.float64(parts.n_units - 1)), (parts.seed_var, np.float64(parts.n_seeds - 1))])
    with np.errstate(invalid="ignore"):
        half = np.where(v > (ZERO_TOL * parts.scale) ** 2, sps.t.ppf(0.5 + level / 2, nu) * np.sqrt(v), 0.0)
    return Interval(parts.value, half, nu)


def query_only_interval(d: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """delta -/+ t(N-1) sd(D)/sqrt(N) from seed-averaged differences D (one-seed case, docs/statistics.md 2.5)."""
    d = np.asarray(d, dtype=np.float64)
    n = d.shape[0]
    delta = float(d.mean())
    half = float(sps.t.ppf(0.5 + level / 2, n - 1) * d.std(ddof=1) / np.sqrt(n))
    return delta, delta - half, delta + half
