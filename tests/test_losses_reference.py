"""Every objective against hand-checked reference values on a written-out batch (docs/protocol.md, Reference values; float64)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pmrl_bench.registry import get_method
from pmrl_bench.train.losses import (
    directional_cross_entropy,
    gram_volume,
    leading_spectrum,
    pmrl_terms,
    symmetric_info_nce,
    unit,
)

TVA = ["text", "vision", "audio"]
TVAS = ["text", "vision", "audio", "subtitle"]

# Section 7.1: B = 3 instances, d = 4; rows are normalised by the methods themselves.
RAW = {
    "text": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1]],
    "vision": [[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 2, 0]],
    "audio": [[1, 0, 1, 0], [0, 2, 0, 1], [1, 0, 1, 1]],
    "subtitle": [[0, 1, 0, 1], [1, 1, 0, 0], [0, 1, 0, 1]],
}

SIGMA = [
    [1.5102239590, 0.7071067812, 0.4682131925],
    [1.5795656037, 0.6374445012, 0.3140652982],
    [1.5764037139, 0.6081950467, 0.3808544550],
]
SIGMA4 = [
    [1.53061163, 1.08048692, 0.60360154, 0.35417683],
    [1.74700414, 0.70710678, 0.59658907, 0.30341062],
    [1.63131405, 1.00713878, 0.45006267, 0.34918412],
]
U_CANONICAL = [
    [0.929410, 0.260956, 0.260956, 0.0],
    [0.0, 0.956428, 0.239703, 0.166696],
    [0.379374, 0.0, 0.793015, 0.476658],
]
VOL = [
    [0.5000000000, 0.7745966692, 0.5163977795],
    [0.5000000000, 0.3162277660, 0.6324555320],
    [0.7071067812, 0.6708203932, 0.3651483717],
]
VOL4 = [[0.3535534, 0.2236068, 0.3651484], [0.3535534, 0.2236068, 0.1825742], [0.0, 0.4743416, 0.2581989]]


def batch(names: list[str] = TVA) -> dict[str, torch.Tensor]:
    """The section 7.1 inputs (raw, float64) for the named modalities."""
    return {m: torch.tensor(RAW[m], dtype=torch.float64) for m in names}


def make(name: str, modalities: list[str] = TVA, **params: object):
    """A registered method built for these modalities."""
    return get_method(name)(modalities, **params)


def spectrum(z: dict[str, torch.Tensor], names: list[str] = TVA, sign_fix: bool = True):
    """(sigma, u_1) of the stacked unit vectors, text first."""
    return leading_spectrum(torch.stack([unit(z[m]) for m in names], 1), sign_fix, 0)


def close(actual: torch.Tensor | float, expected: object, rtol: float = 1e-9, atol: float = 0.0) -> None:
    """assert_close against a float64 reference."""
    actual = torch.as_tensor(actual, dtype=torch.float64)
    expected = torch.as_tensor(expected, dtype=torch.float64).detach().reshape(actual.shape)
    torch.testing.assert_close(actual.detach(), expected, rtol=rtol, atol=atol)


# ------------------------------------------------------------------------------------------ 7.1 inputs


def test_inputs_cosines_match_section_7_1():
    z = {m: unit(v) for m, v in batch().items()}
    close(
        z["text"] @ z["vision"].T,
        [[0.707107, 0, 0.447214], [0.707107, 0.707107, 0], [0, 0.5, 0.632456]],
        atol=1e-6,
    )
    close(
        z["vision"] @ z["audio"].T,
        [[0.5, 0.632456, 0.408248], [0.5, 0.632456, 0.408248], [0.948683, 0, 0.774597]],
        atol=1e-6,
    )


# ------------------------------------------------------------------------------------------ 7.2 PMRL


def test_pmrl_singular_values_and_identities():
    sigma, _ = spectrum(batch())
    close(sigma, SIGMA, rtol=1e-9)
    close((sigma**2).sum(1), [3.0, 3.0, 3.0], rtol=1e-12)
    close(sigma.prod(1), [0.5, 0.3162277660, 0.3651483717], rtol=1e-9)


@pytest.mark.parametrize(
    ("tau1", "mean", "rows"),
    [
        (1.0, 0.5407611812, [0.5881616989, 0.5139596739, 0.5201621708]),
        (0.5, 0.2337982777, [0.2814657024, 0.2082520296, 0.2116771010]),
        (0.1, 1.693064e-04, [3.549306e-04, 8.417589e-05, 6.881266e-05]),
        (0.05, 3.9042109e-08, [1.0662318e-07, 6.5692229e-09, 3.9339250e-09]),
    ],
)
def test_pmrl_intra_term(tau1, mean, rows):
    loss = make("pmrl", tau1=tau1, lambda_inter=0.0).loss(batch())
    sigma, u1 = spectrum(batch())
    per_row = [pmrl_terms(sigma[i : i + 1], u1[i : i + 1], tau1, 0.1)[0] for i in range(3)]
    rtol = 1e-9 if mean > 1e-3 else 2e-6  # the small references are given to 7-8 digits
    close(loss, mean, rtol=rtol, atol=1e-12 if mean < 1e-6 else 0.0)
    close(torch.stack(per_row), rows, rtol=rtol, atol=1e-12 if mean < 1e-6 else 0.0)


def test_pmrl_intra_term_underflows_at_tau1_0_01():
    loss = make("pmrl", tau1=0.01, lambda_inter=0.0).loss(batch())
    assert 0.0 <= float(loss) < 1e-30  # true value about 4e-36 (a cross-entropy evaluation gives exactly 0)


def test_pmrl_canonical_leading_vectors():
    z = batch()
    _, u1 = spectrum(z)
    close(u1, U_CANONICAL, atol=1e-6)
    total = sum(unit(v) for v in z.values())
    close((u1 * total).sum(1), [2.612843, 2.732225, 2.728827], atol=1e-6)
    gram = u1 @ u1.T
    close(torch.stack([gram[0, 1], gram[0, 2], gram[1, 2]]), [0.31213820, 0.55953646, 0.26954491], atol=1e-8)


@pytest.mark.parametrize(
    ("tau2", "value", "rtol"),
    [
        (1.0, 0.7343484586, 1e-9),
        (0.5, 0.4682881828, 1e-9),
        (0.1, 9.2247762e-03, 1e-7),
        (0.05, 1.005621e-04, 1e-6),
    ],
)
def test_pmrl_inter_term_canonical(tau2, value, rtol):
    sigma, u1 = spectrum(batch())
    close(pmrl_terms(sigma, u1, 1.0, tau2)[1], value, rtol=rtol)


def test_pmrl_inter_term_rows_at_tau2_1():
    _, u1 = spectrum(batch())
    rows = F.cross_entropy(u1 @ u1.T, torch.arange(3), reduction="none")
    close(rows, [0.7637862626, 0.6852860687, 0.7539730444], rtol=1e-9)


@pytest.mark.parametrize(
    ("signs", "value", "rtol"),
    [
        ((1, 1, 1), 0.009225, 1e-3),
        ((-1, -1, -1), 0.009225, 1e-3),
        ((1, 1, -1), 0.000688, 1e-3),
        ((1, -1, 1), 0.008101, 1e-3),
        ((1, -1, -1), 4.4961021e-04, 1e-7),
        ((-1, 1, 1), 4.4961021e-04, 1e-7),
    ],
)
def test_pmrl_inter_term_depends_on_signs(signs, value, rtol):
    sigma, u1 = spectrum(batch())
    flipped = u1 * torch.tensor(signs, dtype=torch.float64)[:, None]
    close(pmrl_terms(sigma, flipped, 1.0, 0.1)[1], value, rtol=rtol)


def test_pmrl_total_at_defaults_and_diagnostics():
    method = make("pmrl")
    close(method.loss(batch()), 9.22482e-03, rtol=1e-5)
    assert method.diagnostics()["sigma1"] == pytest.approx(1.5553977589, rel=1e-9)


# ------------------------------------------------------------------------------------------ 7.3 Gram route


def test_gram_route_equals_svd_and_solver_sign():
    z = batch()
    stacked = torch.stack([unit(z[m]) for m in TVA], 1)
    close(
        leading_spectrum(stacked)[0],
        torch.linalg.svdvals(stacked.transpose(1, 2)).tolist(),
        rtol=0,
        atol=1e-14,
    )
    # Raw eigen-solver sign (LAPACK on CPU): opposite to the SVD's for instance 0, equal for 1 and 2.
    _, raw = spectrum(z, sign_fix=False)
    close(
        raw,
        [
            [-0.929410, -0.260956, -0.260956, 0],
            [0, -0.956428, -0.239703, -0.166696],
            [-0.379374, 0, -0.793015, -0.476658],
        ],
        atol=1e-6,
    )


# ------------------------------------------------------------------------------------------ 7.4 GRAM


def test_gram_volumes():
    z = {m: unit(v) for m, v in batch().items()}
    vol = gram_volume(z["text"], [z["vision"], z["audio"]])
    close(vol, VOL, rtol=1e-9)
    assert float(vol[0, 0]) == pytest.approx(float(vol[1, 0]), abs=1e-15)  # the exact tie of column 0
    assert torch.equal(vol.argsort(1), torch.tensor([[0, 2, 1], [1, 0, 2], [2, 1, 0]]))


@pytest.mark.parametrize(
    ("temperature", "smoothing", "value"),
    [
        (0.07, 0.1, 0.4865169880),
        (0.07, 0.0, 0.2581638325),
        (0.5, 0.1, 0.8502605893),
        (0.5, 0.0, 0.8182911475),
        (1.0, 0.1, 0.9645461551),
        (1.0, 0.0, 0.9485614342),
    ],
)
def test_gram_loss(temperature, smoothing, value):
    method = make("gram", temperature=temperature, label_smoothing=smoothing, eps=0.0)
    close(method.loss(batch()), value, rtol=1e-9)


def test_gram_loss_directions_and_default_eps():
    z = {m: unit(v) for m, v in batch().items()}
    logits = -gram_volume(z["text"], [z["vision"], z["audio"]]) / 0.07
    y = torch.arange(3)
    close(F.cross_entropy(logits, y, label_smoothing=0.1), 0.4596664716, rtol=1e-9)
    close(F.cross_entropy(logits.T, y, label_smoothing=0.1), 0.5133675045, rtol=1e-9)
    close(make("gram").loss(batch()), 0.4865169880, rtol=1e-6)  # eps = 1e-8 moves the volumes by < 1e-7


# ------------------------------------------------------------------------------------------ 7.5 InfoNCE


@pytest.mark.parametrize(
    ("tau", "pair", "value"),
    [
        (0.07, (0, 1), 0.2783742805),
        (0.07, (0, 2), 0.0400620935),
        (0.07, (1, 2), 1.9876913785),
        (1.0, (0, 1), 0.8696384660),
        (1.0, (0, 2), 0.7706954110),
        (1.0, (1, 2), 1.0242427627),
        (0.05, (0, 1), 0.2500353195),
        (0.05, (0, 2), 0.0163198998),
        (0.05, (1, 2), 2.6645232916),
    ],
)
def test_symmetric_info_nce_pairs(tau, pair, value):
    stacked = torch.stack([unit(v) for v in batch().values()])
    scale = torch.tensor(1.0 / tau, dtype=torch.float64)
    close(symmetric_info_nce(stacked, [pair], scale)[0], value, rtol=1e-9, atol=5e-11)  # 10 decimals given


def test_info_nce_label_smoothing():
    method = make("clip", ["text", "vision"], label_smoothing=0.1)
    close(method.loss(batch(["text", "vision"])), 0.6655199649, rtol=1e-9)


@pytest.mark.parametrize(
    ("name", "params", "tau", "value"),
    [
        ("clip", {}, 0.07, 0.7687092508),
        ("clip", {"pairs": "anchored"}, 0.07, 0.1592181870),
        ("imagebind", {}, 0.07, 1.1330328295),
        ("imagebind", {"anchor": "text"}, 0.07, 0.1592181870),
        ("clip", {}, 1.0, 0.8881922132),
        ("clip", {"pairs": "anchored"}, 1.0, 1.6403338770 / 2),
        ("imagebind", {}, 1.0, 1.8938812287 / 2),
    ],
)
def test_info_nce_aggregates(name, params, tau, value):
    close(make(name, temperature=tau, **params).loss(batch()), value, rtol=1e-9)


# ------------------------------------------------------------------------------------------ 7.7 invariances, special cases


def test_flipping_one_vector_changes_info_nce_only():
    z = batch()
    z["vision"][0] = -z["vision"][0]
    close(spectrum(z)[0], SIGMA, rtol=1e-9)
    close(make("pmrl", lambda_inter=0.0).loss(z), 3.9042109e-08, rtol=2e-6)
    vol = gram_volume(unit(z["text"]), [unit(z["vision"]), unit(z["audio"])])
    close(vol.diagonal(), [0.5, 0.3162277660, 0.3651483717], rtol=1e-9)
    close(make("clip", ["text", "vision"]).loss(z), 4.4755619907, rtol=1e-9)


def test_permuting_modalities_changes_nothing():
    order = ["audio", "text", "vision"]
    sigma, u1 = spectrum(batch(), order)
    close(sigma, SIGMA, rtol=1e-9)
    close(u1, U_CANONICAL, atol=1e-6)  # the canonical sign does not depend on the order
    pmrl = make("pmrl", order, tau1=0.5)
    close(pmrl.loss(batch()), make("pmrl", tau1=0.5).loss(batch()), rtol=1e-12)
    close(make("gram", order, eps=0.0).loss(batch()), 0.4865169880, rtol=1e-9)  # the anchor stays text


def special(vectors: list[list[float]]) -> dict[str, torch.Tensor]:
    """One instance whose modalities are the given raw vectors (text, vision, audio, ...)."""
    return {m: torch.tensor([v], dtype=torch.float64) for m, v in zip(TVAS, vectors, strict=False)}


@pytest.mark.parametrize(
    ("vectors", "sigma", "intra", "vol"),
    [
        ([[1, 0], [0.6, 0.8]], [math.sqrt(1.6), math.sqrt(0.4)], {0.05: 3.2104089e-06}, 0.8),
        (
            [[1, 0, 0], [1, 0, 0], [1, 0, 0]],
            [math.sqrt(3), 0, 0],
            {0.05: 1.8056e-15, 0.5: 0.0607208, 1.0: 0.3029468},
            0.0,
        ),
        (
            [[1, 0, 0], [-1, 0, 0], [1, 0, 0]],
            [math.sqrt(3), 0, 0],
            {0.05: 1.8056e-15, 0.5: 0.0607208, 1.0: 0.3029468},
            0.0,
        ),
        (
            [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
            [1, 1, 1],
            {0.05: math.log(3), 0.5: math.log(3), 1.0: math.log(3)},
            1.0,
        ),
        (
            [[1, 0, 0], [1, 0, 0], [0, 1, 0]],
            [math.sqrt(2), 1, 0],
            {0.05: 2.524247e-04, 0.5: 0.4026889, 1.0: 0.6439446},
            0.0,
        ),
    ],
    ids=["k2-cos0.6", "aligned", "anti-aligned", "orthonormal", "partial"],
)
def test_special_cases(vectors, sigma, intra, vol):
    z = special(vectors)
    names = TVAS[: len(vectors)]
    close(spectrum(z, names)[0][0], sigma, rtol=1e-9, atol=1e-12)
    for tau1, value in intra.items():
        close(make("pmrl", names, tau1=tau1, lambda_inter=0.0).loss(z), value, rtol=2e-5, atol=1e-20)
    units = [unit(z[m]) for m in names]
    close(gram_volume(units[0], units[1:])[0, 0], vol, rtol=1e-9, atol=1e-7)


def test_four_modalities():
    z = batch(TVAS)
    close(spectrum(z, TVAS)[0], SIGMA4, rtol=1e-7)
    for tau1, value in [(0.05, 4.22978e-05), (0.5, 0.3768034), (1.0, 0.7491141)]:
        close(make("pmrl", TVAS, tau1=tau1, lambda_inter=0.0).loss(z), value, rtol=1e-5)
    sigma, u1 = spectrum(z, TVAS)
    close(pmrl_terms(sigma, u1, 1.0, 0.1)[1], 0.0220781, rtol=1e-5)
    units = [unit(z[m]) for m in TVAS]
    close(gram_volume(units[0], units[1:]), VOL4, rtol=1e-6, atol=1e-7)
    close(make("gram", TVAS, eps=0.0).loss(z), 2.3392991, rtol=1e-6)


# ------------------------------------------------------------------------------------------ 7.8 rankings


def test_rankings_section_7_8():
    z = batch()
    t2a = make("clip").similarity({"text": z["text"]}, {"audio": z["audio"]})
    assert t2a.argmax(1).tolist() == [0, 1, 2]
    t2va = make("gram").similarity({"text": z["text"]}, {"vision": z["vision"], "audio": z["audio"]})
    assert t2va.argmax(1).tolist() == [0, 1, 2]
    t2v = make("clip").similarity({"text": z["text"]}, {"vision": z["vision"]})
    close(t2v[1, :2], [0.7071067812, 0.7071067812], rtol=1e-9)  # caption 1 ties items 0 and 1


# ------------------------------------------------------------------------------------------ 7.9 gradients


def test_sigma1_gradient_is_u1_v1():
    z = batch()
    stacked = torch.stack([unit(z[m]) for m in TVA], 1)[:1].clone().requires_grad_()
    sigma, u1 = leading_spectrum(stacked)
    (grad,) = torch.autograd.grad(sigma[0, 0], stacked)
    v1 = torch.tensor(
        [0.615412, 0.557345, 0.557345], dtype=torch.float64
    )  # canonical (SVD's first right vector)
    close(grad[0], torch.outer(v1, u1[0].detach()).tolist(), atol=1e-6)
    assert float(grad.norm()) == pytest.approx(1.0, abs=1e-12)


def power_iteration_u1(stacked: torch.Tensor, steps: int = 50) -> torch.Tensor:
    """u_1 by power iteration on G = Z Z^T, differentiable by plain autograd (the section 7.9 reference)."""
    gram = stacked @ stacked.transpose(1, 2)
    v = torch.ones(stacked.shape[:2], dtype=stacked.dtype)
    for _ in range(steps):
        v = F.normalize((gram @ v.unsqueeze(-1)).squeeze(-1), dim=-1)
    return F.normalize((v.unsqueeze(1) @ stacked).squeeze(1), dim=-1)


def equal_cosines(cos: float, k: int = 3, dim: int = 4) -> torch.Tensor:
    """k unit vectors in R^dim with all pairwise cosines equal to `cos`."""
    gram = torch.full((k, k), cos, dtype=torch.float64) + (1 - cos) * torch.eye(k, dtype=torch.float64)
    rows = torch.linalg.cholesky(gram)
    return torch.cat([rows, torch.zeros(k, dim - k, dtype=torch.float64)], 1)


@pytest.mark.parametrize(
    "vectors",
    [
        equal_cosines(0.5),
        torch.tensor([[1.0, 0, 0, 0], [0.6, 0.8, 0, 0], [0.6, 0.8, 0, 0]], dtype=torch.float64),
    ],
    ids=["trailing-tie", "duplicated-modality"],
)
def test_u1_gradient_finite_and_equal_to_power_iteration(vectors):
    weights = torch.tensor([0.3, -1.2, 0.7, 2.0], dtype=torch.float64)
    ours = vectors[None].clone().requires_grad_()
    (g_ours,) = torch.autograd.grad((leading_spectrum(ours)[1] * weights).sum(), ours)
    ref = vectors[None].clone().requires_grad_()
    (g_ref,) = torch.autograd.grad((power_iteration_u1(ref) * weights).sum(), ref)
    assert torch.isfinite(g_ours).all()
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-7, atol=1e-9)


def near_degenerate(eps: float) -> torch.Tensor:
    """Z [1, 3, 4] with singular values (1 + eps/2, 1, 1 - eps/2) and generic singular vectors."""
    q1, _ = torch.linalg.qr(
        torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    )
    q2, _ = torch.linalg.qr(
        torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    )
    return (q2 @ torch.diag(torch.tensor([1 + eps / 2, 1, 1 - eps / 2], dtype=torch.float64)) @ q1.T)[None]


def test_near_degenerate_gradients():
    weights = torch.tensor([0.3, -1.2, 0.7, 2.0], dtype=torch.float64)
    norms = {}
    for eps in (1e-1, 1e-3, 1e-5):
        z = near_degenerate(eps).requires_grad_()
        sigma, u1 = leading_spectrum(z, gap_eps=1e-12)
        assert float(torch.autograd.grad(sigma[0, 0], z, retain_graph=True)[0].norm()) == pytest.approx(
            1.0, abs=1e-9
        )
        (g,) = torch.autograd.grad((u1 * weights).sum(), z)
        ref = z.detach().clone().requires_grad_()
        u, _, _ = torch.linalg.svd(ref.transpose(1, 2), full_matrices=False)
        u_ref = u[..., 0] * torch.sign((u[..., 0] * ref.sum(1)).sum(-1, keepdim=True))
        (g_ref,) = torch.autograd.grad((u_ref * weights).sum(), ref)
        torch.testing.assert_close(g, g_ref, rtol=1e-6, atol=1e-9)
        norms[eps] = float(g.norm())
        # the default guard bounds the gradient once the gap falls below gap_eps = 1e-4
        (g_guarded,) = torch.autograd.grad((leading_spectrum(z)[1] * weights).sum(), z)
        assert float(g_guarded.norm()) <= norms[eps] * (1 + 1e-9) + 1e-12
    assert norms[1e-3] / norms[1e-1] == pytest.approx(100, rel=0.1)  # grows like 1/eps through u_1
    assert norms[1e-5] / norms[1e-3] == pytest.approx(100, rel=0.1)


def test_gram_volume_of_identical_vectors():
    t = torch.tensor([[0.6, 0.8, 0.0]], dtype=torch.float64, requires_grad=True)
    v = t.detach().clone().requires_grad_()
    a = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    assert float(gram_volume(t, [v, a]).detach()) == pytest.approx(0.0, abs=1e-7)
    grads = torch.autograd.grad(gram_volume(t, [v, a], eps=1e-8).sum(), (t, v, a))
    assert all(torch.isfinite(g).all() for g in grads)


def _info_nce_transposed_view(z, pairs, logit_scale, label_smoothing):
    """The formulation before issue 12: one product per pair, the column loss on its transposed view."""
    left, right = torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])
    logits = logit_scale.to(z.dtype) * torch.matmul(z[left], z[right].transpose(-1, -2))
    n_pairs, b = logits.shape[0], logits.shape[-1]
    target = torch.arange(b).repeat(n_pairs)
    rows = F.cross_entropy(logits.reshape(-1, b), target, reduction="none", label_smoothing=label_smoothing)
    cols = F.cross_entropy(logits.transpose(-1, -2).reshape(-1, b), target, reduction="none",
                           label_smoothing=label_smoothing)
    return 0.5 * (rows.view(n_pairs, b).mean(-1) + cols.view(n_pairs, b).mean(-1))


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("dtype, rtol", [(torch.float64, 1e-13), (torch.float32, 1e-5)])
def test_info_nce_losses_and_gradients_equal_the_transposed_view_formulation(dtype, rtol, smoothing):
    g = torch.Generator().manual_seed(0)
    raw = torch.randn(3, 96, 16, generator=g, dtype=dtype)
    pairs = [(0, 1), (0, 2), (1, 2)]
    out = []
    for fn in (symmetric_info_nce, _info_nce_transposed_view):
        z = raw.clone().requires_grad_()
        scale = torch.tensor(14.3, dtype=torch.float64, requires_grad=True)
        loss = fn(F.normalize(z, dim=-1), pairs, scale, smoothing)
        loss.sum().backward()
        out.append((loss.detach(), z.grad, scale.grad))
    for ours, old in zip(out[0], out[1], strict=True):
        torch.testing.assert_close(ours, old, rtol=rtol, atol=rtol * float(old.abs().max()))



@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_directional_cross_entropy_values_and_gradients_equal_f_cross_entropy(smoothing):
    # two directions weighted differently, so a gradient that mixed them up would differ
    g = torch.Generator().manual_seed(1)
    raw = 5 * torch.randn(2, 7, 7, generator=g, dtype=torch.float64)
    target = torch.arange(7)
    ours, ref = raw.clone().requires_grad_(), raw.clone().requires_grad_()
    rows, cols = directional_cross_entropy(ours, smoothing)
    want = [torch.stack([F.cross_entropy(m, target, label_smoothing=smoothing) for m in mats])
            for mats in (ref, ref.transpose(-1, -2))]
    torch.testing.assert_close(rows, want[0], rtol=1e-13, atol=0)
    torch.testing.assert_close(cols, want[1], rtol=1e-13, atol=0)
    (0.3 * rows + 0.7 * cols).sum().backward()
    (0.3 * want[0] + 0.7 * want[1]).sum().backward()
    torch.testing.assert_close(ours.grad, ref.grad, rtol=1e-13, atol=1e-16)

# Section 7.6: TRIANGLE (area score, no square root) and Symile (O(n^2) negatives).
TRIANGLE_AREA = [
    [0.1678932188, 0.6675444680, 0.1859954462],
    [0.2714466094, 0.0613650483, 0.4254033308],
    [0.5, 0.3506583510, 0.0818691445],
]


def test_triangle_area_similarity_and_loss_match_section_7_6():
    z = batch()
    method = make("triangle")
    area = -method.similarity({"text": z["text"]}, {"vision": z["vision"], "audio": z["audio"]})
    torch.testing.assert_close(area, torch.tensor(TRIANGLE_AREA, dtype=torch.float64), rtol=0, atol=1e-9)
    assert method.loss(z).item() == pytest.approx(0.4637197032, abs=1e-9)
    plain = make("triangle", temperature=1.0, label_smoothing=0.0)
    assert plain.loss(z).item() == pytest.approx(0.9178607057, abs=1e-9)
    # the transposed call (tuple query, text candidates) gives the transposed matrix
    back = method.similarity({"vision": z["vision"], "audio": z["audio"]}, {"text": z["text"]})
    torch.testing.assert_close(back, -area.T)


def test_symile_mip_and_loss_match_section_7_6():
    z = batch()
    method = make("symile")
    mip = method.similarity({"text": z["text"]}, {"vision": z["vision"], "audio": z["audio"]})
    torch.testing.assert_close(mip.diagonal(), torch.tensor([0.5, 0.6324555, 0.3651484], dtype=torch.float64),
                               rtol=0, atol=1e-7)
    assert method.loss(z).item() == pytest.approx(0.9827432362, abs=1e-9)
    # the positives' MIP is symmetric in the modalities: any anchor gives the same diagonal
    other = method.similarity({"vision": z["vision"]}, {"text": z["text"], "audio": z["audio"]})
    torch.testing.assert_close(other.diagonal(), mip.diagonal())


@pytest.mark.parametrize("name", ["triangle", "symile"])
def test_three_modality_methods_refuse_two_or_four(name):
    from pmrl_bench.errors import BenchError

    for names in (TVA[:2], TVAS):
        with pytest.raises(BenchError, match="needs 3 modalities"):
            make(name, names)
