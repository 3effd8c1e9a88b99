"""sigma_1 to the float (issue 13 part 2): float64 results agree with a float64 eigensolver to 1e-12 relative."""

import math

import pytest
import torch

import pmrl_bench.train.losses as losses
from pmrl_bench.train.losses import top_singular_value, unit


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
    entry = losses._tuple_gram(t, [v, a], losses._candidate_gram([v, a]))
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
    entry = losses._tuple_gram(anchor, parts, losses._candidate_gram(parts))
    rough = losses._largest_eigenvalue(entry, 3, exact=False).clamp_min(0).sqrt().float()
    assert torch.equal(top_singular_value(anchor, parts), rough)
