"""sigma_1 to the float (issue 13 part 2): float64 results agree with a float64 eigensolver to 1e-12 relative;
float32 ones are its value rounded, eager or compiled (issue 12 part 4)."""

import logging
import math
import os

import numpy as np
import pytest
import torch

import pmrl_bench.train.losses as losses
from pmrl_bench import runtime
from pmrl_bench.runtime import COMPILE_ENV
from pmrl_bench.train.losses import top_singular_value, unit

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")


def eig_sigma1(anchor: torch.Tensor, parts: list[torch.Tensor]) -> torch.Tensor:
    """Reference: sqrt of the largest eigenvalue of every [Nq, Nc] k x k Gram matrix, torch.linalg.eigvalsh in float64."""
    n_q, n_c = anchor.shape[0], parts[0].shape[0]
    stacked = torch.stack([anchor[:, None].expand(n_q, n_c, -1), *[p[None].expand(n_q, n_c, -1) for p in parts]], -2)
    return torch.linalg.eigvalsh(stacked @ stacked.transpose(-1, -2))[..., -1].sqrt()


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b).abs() / b.abs()).max())


def test_eigenvalues_symmetric_about_their_mean_give_sqrt_1_6():
    # the claims issue's example: eigenvalues 1.6, 1.3, 0.7, 0.4 around 1; the closed form alone gave 1.2649110661498524
    t = torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64)
    v = torch.tensor([[0.6, 0.8, 0, 0]], dtype=torch.float64)
    a = torch.tensor([[0.0, 0, 1, 0]], dtype=torch.float64)
    s = torch.tensor([[0.0, 0, 0.3, math.sqrt(0.91)]], dtype=torch.float64)
    got = float(top_singular_value(t, [v, a, s]))
    assert abs(got - math.sqrt(1.6)) <= 1e-12 * math.sqrt(1.6), got


def test_exact_leading_double_root_k3():
    # three unit vectors at 120 degrees in a plane: G has eigenvalues 1.5, 1.5, 0
    t = torch.tensor([[1.0, 0, 0]], dtype=torch.float64)
    v = torch.tensor([[-0.5, math.sqrt(3) / 2, 0]], dtype=torch.float64)
    a = torch.tensor([[-0.5, -math.sqrt(3) / 2, 0]], dtype=torch.float64)
    got = float(top_singular_value(t, [v, a]))
    assert abs(got - math.sqrt(1.5)) <= 1e-12 * math.sqrt(1.5), got
    assert rel_err(top_singular_value(t, [v, a]), eig_sigma1(t, [v, a])) <= 1e-12


def test_the_closed_form_alone_misses_both_examples():
    # guards the tests above: without polishing the same inputs are off by more than 1e-12
    t, v, a = (torch.tensor([x], dtype=torch.float64) for x in ([1.0, 0, 0], [-0.5, math.sqrt(3) / 2, 0],
                                                                 [-0.5, -math.sqrt(3) / 2, 0]))
    entry = losses._entries(losses._tuple_gram(t, torch.cat([v, a]), losses._candidate_gram([v, a])))
    rough = float(losses._largest_eigenvalue(entry, 3, exact=False).sqrt())
    assert abs(rough - math.sqrt(1.5)) > 1e-12 * math.sqrt(1.5)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_random_and_near_degenerate_tuples_agree_with_eigvalsh(k):
    g = torch.Generator().manual_seed(k)
    anchor = unit(torch.randn(40, 8, generator=g, dtype=torch.float64))
    parts = [unit(torch.randn(30, 8, generator=g, dtype=torch.float64)) for _ in range(k - 1)]
    for m, p in enumerate(parts):  # near-coincident eigenvalues: candidates close to the anchors or each other
        p[:5] = unit(anchor[:5] + 1e-7 * m * torch.randn(5, 8, generator=g, dtype=torch.float64))
        p[5:10] = unit(-anchor[5:10]) if m % 2 else p[5:10]
    assert rel_err(top_singular_value(anchor, parts), eig_sigma1(anchor, parts)) <= 1e-12


def test_float32_results_unchanged_by_polishing():
    g = torch.Generator().manual_seed(0)
    anchor = unit(torch.randn(20, 16, generator=g))
    parts = [unit(torch.randn(25, 16, generator=g)) for _ in range(2)]
    entry = losses._entries(losses._tuple_gram(anchor, torch.cat(parts), losses._candidate_gram(parts)))
    rough = losses._largest_eigenvalue(entry, 3, exact=False).clamp_min(0).sqrt().float()
    assert torch.equal(top_singular_value(anchor, parts), rough)


def test_root_polynomial_is_the_chebyshev_interpolant_of_the_trigonometric_root():
    # d(h) / h, d(h) = 2 cos(pi/3 - 2 asin(h)/3) - 1 written without cancellation, interpolated at 13 Chebyshev points
    def ratio(h: np.ndarray) -> np.ndarray:
        x = 2 * np.arcsin(h) / 3
        d = np.sqrt(3) * np.sin(x) - 2 * np.sin(x / 2) ** 2
        return np.where(h > 0, d / np.where(h > 0, h, 1), 2 / np.sqrt(3))

    cheb = np.polynomial.Chebyshev.interpolate(ratio, len(losses._ROOT_POLY) - 1, domain=[0, 1])
    h = np.linspace(0, 1, 200_001)[1:]
    ours = np.polynomial.polynomial.polyval(h, losses._ROOT_POLY)
    assert np.abs(ours - cheb(h)).max() <= 1e-13  # the same polynomial (its monomial coefficients to ~1e-9)
    assert np.abs(ours / ratio(h) - 1).max() <= 3e-12


def test_cubic_largest_root_against_known_roots():
    # y^3 + p y + q with roots y1 >= y2 >= y3 summing to 0: well separated, leading double, trailing double, triple
    g = torch.Generator().manual_seed(0)
    y1 = torch.rand(2000, generator=g, dtype=torch.float64) * 2
    y2 = y1 * (torch.rand(2000, generator=g, dtype=torch.float64) * 1.5 - 0.5)
    y2[:100], y2[100:200] = y1[:100], -y1[100:200] / 2  # leading double root; y2 = y3 (trailing double)
    y1[200:210] = y2[200:210] = 0  # triple root at 0
    y3 = -y1 - y2
    root = losses._cubic_largest(y1 * y2 + y1 * y3 + y2 * y3, -y1 * y2 * y3)
    scale = y1.abs().clamp_min(1e-300)
    separated = torch.ones(2000, dtype=torch.bool)
    separated[:100] = False
    assert float(((root - y1).abs() / scale)[separated & (y1 > 0)].max()) <= 1e-11
    assert float(((root - y1).abs() / scale)[:100].max()) <= 1e-7  # a double root: the coefficients' sqrt(eps)
    assert torch.equal(root[200:210], torch.zeros(10, dtype=torch.float64))


def test_float32_scores_are_float64_eigvalsh_rounded():
    # the closed form before rounding agrees with eigvalsh of the same Gram entries to 1e-11 relative, near-degenerate
    # tuples included, so nearly every float32 score is the correctly rounded value
    g = torch.Generator().manual_seed(5)
    anchor = unit(torch.randn(60, 16, generator=g))
    parts = [unit(torch.randn(80, 16, generator=g)) for _ in range(2)]
    parts[0][:10] = unit(anchor[:10] + 1e-4 * torch.randn(10, 16, generator=g))
    parts[1][:10] = unit(anchor[:10] + 1e-3 * torch.randn(10, 16, generator=g))
    parts[1][10:20] = -parts[0][10:20]
    parts[0][20:30] = unit(parts[1][20:30] + 1e-6 * torch.randn(10, 16, generator=g))
    table = losses._tuple_gram(anchor, torch.cat(parts), losses._candidate_gram(parts))
    entry = losses._entries(table)
    gram = losses._full_matrix(entry, 3)
    ref = torch.linalg.eigvalsh(gram)[..., -1].sqrt()
    assert rel_err(losses._top_singular_of_gram(table, 3, torch.float64), ref) <= 1e-11
    assert int((top_singular_value(anchor, parts) != ref.float()).sum()) <= 1


def compiled_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(COMPILE_ENV, "1")
    monkeypatch.setattr(runtime, "_COMPILED", {})


def test_compiled_sigma1_agrees_with_eager(monkeypatch):
    g = torch.Generator().manual_seed(6)
    anchor = unit(torch.randn(300, 32, generator=g))
    parts = [unit(torch.randn(700, 32, generator=g)) for _ in range(2)]
    parts[0][:50] = unit(anchor[:50] + 1e-4 * torch.randn(50, 32, generator=g))
    eager = top_singular_value(anchor, parts)
    compiled_scores(monkeypatch)
    monkeypatch.setattr(losses, "PAIR_BUDGET", 1 << 16)  # several chunks of varying size: dynamic shapes
    with torch.no_grad():
        fast = top_singular_value(anchor, parts)
    kernel = runtime._COMPILED[losses._top_singular_of_gram]
    if kernel is losses._top_singular_of_gram and os.environ.get("CI") != "true":
        pytest.skip("torch.compile cannot build kernels here (no C++ compiler); the fallback is tested below")
    assert kernel is not losses._top_singular_of_gram, "torch.compile fell back to eager"
    assert float(((fast - eager).abs() / eager).max()) <= 1.2e-7  # float rounding: at most one float32 ulp
    assert int((fast != eager).sum()) <= 2


def test_compile_failure_falls_back_to_eager_with_one_warning(monkeypatch, caplog):
    def broken(fn, **kwargs):
        def call(*args):
            raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\nmore detail")
        return call

    compiled_scores(monkeypatch)
    monkeypatch.setattr(torch, "compile", broken)
    g = torch.Generator().manual_seed(7)
    anchor, parts = unit(torch.randn(5, 8, generator=g)), [unit(torch.randn(6, 8, generator=g)) for _ in range(2)]
    monkeypatch.setattr(runtime.LOG, "propagate", True)
    with caplog.at_level(logging.WARNING, logger="pmrl_bench"), torch.no_grad():
        first, second = top_singular_value(anchor, parts), top_singular_value(anchor, parts)
    monkeypatch.delenv(COMPILE_ENV)
    assert torch.equal(first, top_singular_value(anchor, parts)) and torch.equal(second, first)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "PMRL_BENCH_COMPILE=1 but torch.compile cannot build _top_singular_of_gram" in warnings[0]
    assert "No working C++ compiler found" in warnings[0] and "more detail" not in warnings[0]


def test_gradients_never_take_the_compiled_path(monkeypatch):
    compiled_scores(monkeypatch)
    g = torch.Generator().manual_seed(8)
    anchor = unit(torch.randn(4, 8, generator=g)).requires_grad_()
    parts = [unit(torch.randn(5, 8, generator=g)) for _ in range(2)]
    top_singular_value(anchor, parts).sum().backward()
    assert anchor.grad is not None and runtime._COMPILED == {}
