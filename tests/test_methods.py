"""Properties of the four objectives and of the shared math in pmrl_bench.train.losses (beyond section 7's numbers)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pmrl_bench.errors import BenchError
from pmrl_bench.registry import get_method
from pmrl_bench.train import losses
from pmrl_bench.train.losses import (
    canonical_sign,
    cosine_mean,
    gram_volume,
    leading_spectrum,
    pmrl_terms,
    top_singular_value,
    unit,
)

TVA = ["text", "vision", "audio"]
NAMES = ["text", "vision", "audio", "subtitle", "depth"]


def make(name: str, modalities: list[str] = TVA, **params: object):
    """A registered method built for these modalities."""
    return get_method(name)(modalities, **params)


def randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Seeded standard normal tensor."""
    return torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))


def svd_reference(stacked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sigma, u_1) by a plain reduced SVD of Z^T, u_1 oriented so that u_1 . sum_m z^m > 0 (else u_1 . z^text > 0)."""
    u, s, _ = torch.linalg.svd(stacked.transpose(1, 2), full_matrices=False)
    u1 = u[..., 0]
    consensus, text = (u1 * stacked.sum(1)).sum(-1, keepdim=True), (u1 * stacked[:, 0]).sum(-1, keepdim=True)
    return s, u1 * torch.where(consensus.abs() > 1e-3, consensus.sign(), text.sign())


def stacked_svdvals(anchor: torch.Tensor, parts: list[torch.Tensor]) -> torch.Tensor:
    """[Nq, Nc, k] singular values of every stacked pair, the direct (slow) way."""
    nq, nc = anchor.shape[0], parts[0].shape[0]
    cols = [anchor[:, None].expand(nq, nc, -1)] + [p[None].expand(nq, nc, -1) for p in parts]
    return torch.linalg.svdvals(torch.stack(cols, -1))


# ------------------------------------------------------------------------------ Gram route vs SVD


@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("k", [2, 3, 4])
def test_gram_route_matches_svd(dtype, tol, k):
    z = unit(randn(16, k, 32, seed=k, dtype=dtype))
    sigma, u1 = leading_spectrum(z)
    s_ref, u_ref = svd_reference(z)
    assert sigma.dtype == dtype and u1.dtype == dtype
    torch.testing.assert_close(sigma, s_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(u1, u_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(
        pmrl_terms(sigma, u1, 0.5, 0.1), pmrl_terms(s_ref, u_ref, 0.5, 0.1), rtol=tol, atol=tol
    )


@pytest.mark.parametrize("k", [2, 3, 4])
def test_gram_route_loss_gradient_matches_svd(k):
    z = unit(randn(12, k, 24, seed=10 + k))
    ours = z.clone().requires_grad_()
    (g,) = torch.autograd.grad(sum(pmrl_terms(*leading_spectrum(ours, gap_eps=1e-10), 0.5, 0.1)), ours)
    ref = z.clone().requires_grad_()
    (g_ref,) = torch.autograd.grad(sum(pmrl_terms(*svd_reference(ref), 0.5, 0.1)), ref)
    torch.testing.assert_close(g, g_ref, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("sign_fix", [True, False])
def test_leading_spectrum_gradcheck(sign_fix):
    z = unit(randn(3, 3, 5, seed=3)).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: leading_spectrum(x, sign_fix, 0, 1e-12), (z,))


@pytest.mark.parametrize(
    "rows",
    [
        [[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]],  # orthogonal: sigma_1 = sigma_2, u_1 undefined
        [[0.6, 0.8, 0, 0]] * 3,  # identical: sigma_2 = sigma_3 = 0
        [[1.0, 0, 0, 0], [-1.0, 0, 0, 0], [0, 1.0, 0, 0]],  # anti-parallel pair + orthogonal third
        [[0.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0]],  # a zero head output
    ],
    ids=["orthogonal", "identical", "antiparallel", "zero-row"],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pmrl_backward_finite_on_degenerate_inputs(rows, dtype):
    z = {m: torch.tensor([r] * 4, dtype=dtype, requires_grad=True) for m, r in zip(TVA, rows, strict=True)}
    for tau1 in (0.05, 1.0):
        loss = make("pmrl", tau1=tau1).loss(z)
        grads = torch.autograd.grad(loss, list(z.values()))
        assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)
        assert max(float(g.abs().max()) for g in grads) < 1e4


# ------------------------------------------------------------------------------ canonical sign


def test_sign_rule_k2_negative_cosine_tie():
    t = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    v = torch.tensor([[-0.6, 0.8, 0.0]], dtype=torch.float64)
    for dtype in (torch.float64, torch.float32):
        z = torch.stack([t, v], 1).to(dtype)
        _, u1 = leading_spectrum(z)
        # u . (t + v) = 0 exactly, so the text decides: u . t > 0, u = (t - v)/||t - v||.
        expected = F.normalize((t - v).to(dtype), dim=-1)
        torch.testing.assert_close(u1, expected)
        assert float((u1 * t.to(dtype)).sum()) > 0


def test_sign_rule_k2_positive_cosine_is_consensus():
    t = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    v = torch.tensor([[0.6, 0.8]], dtype=torch.float64)
    _, u1 = leading_spectrum(torch.stack([t, v], 1))
    torch.testing.assert_close(u1, F.normalize(t + v, dim=-1))


def test_sign_rule_second_tie_uses_first_nonzero_coordinate():
    # t orthogonal to v and a = -v: v_1 = (0, 1, -1)/sqrt 2 gives u . sum = 0 and u . t = 0; u = +-e2.
    z = torch.tensor([[[1.0, 0, 0], [0, -1.0, 0], [0, 1.0, 0]]], dtype=torch.float64)
    _, u1 = leading_spectrum(z)
    torch.testing.assert_close(u1, torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64))
    _, raw = leading_spectrum(z, sign_fix=False)
    assert abs(float(raw[0, 1])) == pytest.approx(1.0)


def test_canonical_sign_text_index():
    v1 = torch.tensor([[0.5, -0.5, 0.5, -0.5], [-0.5, 0.5, 0.5, -0.5]], dtype=torch.float64)
    y1 = torch.ones(2, 3, dtype=torch.float64)
    assert canonical_sign(v1, y1, text_index=0).tolist() == [1.0, -1.0]
    assert canonical_sign(v1, y1, text_index=2).tolist() == [1.0, 1.0]


def test_sign_fix_false_keeps_l_intra_and_abs_u():
    z = {m: randn(8, 16, seed=i) for i, m in enumerate(TVA)}
    fixed, raw = make("pmrl", sign_fix=True), make("pmrl", sign_fix=False)
    fixed.loss(z), raw.loss(z)
    assert float(fixed.last_terms["L_intra"]) == pytest.approx(float(raw.last_terms["L_intra"]), rel=1e-12)
    stacked = torch.stack([unit(z[m]) for m in TVA], 1)
    torch.testing.assert_close(
        leading_spectrum(stacked)[1].abs(), leading_spectrum(stacked, sign_fix=False)[1].abs()
    )


# ------------------------------------------------------------------------------ properties of the losses


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("tau1", [0.5, 1.0])
def test_pmrl_intra_minimal_when_modalities_coincide(k, tau1):
    base = randn(6, 8, seed=1)
    aligned = {m: base for m in NAMES[:k]}
    method = make("pmrl", NAMES[:k], tau1=tau1, lambda_inter=0.0)
    at_optimum = float(method.loss(aligned))
    assert at_optimum == pytest.approx(math.log(1 + (k - 1) * math.exp(-math.sqrt(k) / tau1)), rel=1e-9)
    for seed in range(5):
        perturbed = {m: base + 0.3 * randn(6, 8, seed=100 * seed + i) for i, m in enumerate(NAMES[:k])}
        assert float(method.loss(perturbed)) > at_optimum


def test_gram_volume_identical_and_orthonormal():
    e = torch.eye(4, dtype=torch.float64)
    assert float(gram_volume(e[:1], [e[1:2], e[2:3], e[3:4]])) == pytest.approx(1.0, abs=1e-15)
    x = unit(randn(1, 4))
    assert float(gram_volume(x, [x, x])) == pytest.approx(0.0, abs=1e-7)
    assert float(gram_volume(x, [-x])) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_gram_volume_and_top_singular_value_match_svd(k):
    anchor = unit(randn(7, 6, seed=k))
    parts = [unit(randn(9, 6, seed=10 * k + m)) for m in range(k - 1)]
    parts[0][0] = anchor[0]  # an exactly rank-deficient pair
    if k > 2:
        parts[1][1] = -parts[0][1]  # a candidate with an anti-parallel pair inside
    s = stacked_svdvals(anchor, parts)
    torch.testing.assert_close(gram_volume(anchor, parts), s.prod(-1), rtol=1e-9, atol=1e-7)
    torch.testing.assert_close(top_singular_value(anchor, parts), s[..., 0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_gram_volume_float64_agrees_with_det_to_1e_12(k):
    # issue 12 part 4: float64 volumes equal sqrt(det) of a float64 determinant of the Gram matrix to 1e-12 relative
    anchor = unit(randn(30, 8, seed=k))
    parts = [unit(randn(20, 8, seed=10 * k + m)) for m in range(k - 1)]
    stacked = torch.stack([anchor[:, None].expand(30, 20, -1), *[p[None].expand(30, 20, -1) for p in parts]], -2)
    ref = torch.linalg.det(stacked @ stacked.transpose(-1, -2)).sqrt()
    assert float(((gram_volume(anchor, parts) - ref).abs() / ref).max()) <= 1e-12
    eps = 1e-8  # with eps: sqrt(det + eps)
    assert float(((gram_volume(anchor, parts, eps) - (ref**2 + eps).sqrt()).abs() / ref).max()) <= 1e-12


@pytest.mark.parametrize("k", [2, 3, 4])
def test_gram_volume_gradient_matches_finite_differences(k):
    # the quadratic form's backward is written out (losses._QuadraticForm): checked against finite differences
    xs = [unit(randn(4 if m == 0 else 5, 6, seed=20 * k + m)).requires_grad_() for m in range(k)]
    assert torch.autograd.gradcheck(lambda *x: gram_volume(x[0], list(x[1:]), 1e-8), tuple(xs))


@pytest.mark.parametrize("k", [2, 3, 4])
def test_top_singular_value_degenerate_tuples(k):
    e = torch.eye(6, dtype=torch.float64)
    anchor = torch.stack([e[0], e[0], (e[0] + e[1]) / math.sqrt(2)])
    parts = [
        torch.stack([e[m + 1], e[0], -e[0]]) for m in range(k - 1)
    ]  # orthonormal / aligned / anti-aligned
    expected = torch.tensor([1.0, math.sqrt(k), math.sqrt(k)], dtype=torch.float64)
    torch.testing.assert_close(
        top_singular_value(anchor, parts).diagonal()[:2], expected[:2], rtol=1e-7, atol=1e-7
    )
    torch.testing.assert_close(
        top_singular_value(anchor, parts), stacked_svdvals(anchor, parts)[..., 0], rtol=1e-7, atol=1e-7
    )


def test_pairwise_closed_forms_float32_close_to_float64():
    anchor, parts = unit(randn(20, 64, seed=1)), [unit(randn(30, 64, seed=2)), unit(randn(30, 64, seed=3))]
    for fn in (gram_volume, top_singular_value, cosine_mean):
        out32 = fn(anchor.float(), [p.float() for p in parts])
        assert out32.dtype == torch.float32
        torch.testing.assert_close(out32.double(), fn(anchor, parts), rtol=1e-5, atol=1e-6)


def test_pairwise_closed_forms_chunked(monkeypatch):
    anchor, parts = unit(randn(11, 8, seed=1)), [unit(randn(13, 8, seed=2)), unit(randn(13, 8, seed=3))]
    full = [gram_volume(anchor, parts), top_singular_value(anchor, parts)]
    monkeypatch.setattr(losses, "PAIR_BUDGET", 40)  # 3 query rows per chunk
    torch.testing.assert_close(gram_volume(anchor, parts), full[0], rtol=0, atol=1e-15)
    torch.testing.assert_close(top_singular_value(anchor, parts), full[1], rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["clip", "imagebind", "gram"])
def test_info_nce_family_is_log_b_for_constant_embeddings(name):
    b = 16
    z = {m: randn(1, 8, seed=i).expand(b, 8) for i, m in enumerate(TVA)}
    assert float(make(name).loss(z).detach()) == pytest.approx(math.log(b), rel=1e-12)


def test_pmrl_inter_is_log_b_for_constant_embeddings():
    b = 16
    z = {m: randn(1, 8, seed=i).expand(b, 8) for i, m in enumerate(TVA)}
    method = make("pmrl")
    method.loss(z)
    assert float(method.last_terms["L_inter"]) == pytest.approx(math.log(b), rel=1e-12)


def test_logit_scale_cap_and_temperature_floor():
    clip = make("clip", temperature=0.001)
    assert float(clip.logit_scale().detach()) == pytest.approx(100.0)
    assert clip.diagnostics()["temperature"] == pytest.approx(0.01)
    fixed = make("imagebind", learn_temperature=False)
    assert not fixed.logit_scale.log_scale.requires_grad
    gram = make("gram")
    with torch.no_grad():
        gram.temperature.fill_(-1.0)
    gram.loss({m: randn(4, 5, seed=i) for i, m in enumerate(TVA)})
    assert float(gram.temperature.detach()) == pytest.approx(0.01)


# ------------------------------------------------------------------------------ similarity


@pytest.mark.parametrize("name", ["pmrl", "clip", "imagebind", "gram"])
def test_similarity_transposed_when_the_query_is_a_tuple(name):
    method = make(name)
    t, v, a = randn(5, 8, seed=1), randn(7, 8, seed=2), randn(7, 8, seed=3)
    forward = method.similarity({"text": t}, {"vision": v, "audio": a})
    backward = method.similarity({"vision": v, "audio": a}, {"text": t})
    torch.testing.assert_close(backward, forward.T)


def test_similarity_scores():
    t, v, a = randn(5, 8, seed=1), randn(7, 8, seed=2), randn(7, 8, seed=3)
    ut, uv, ua = unit(t), unit(v), unit(a)
    cos = (ut @ uv.T + ut @ ua.T) / 2
    for name in ("clip", "imagebind"):
        torch.testing.assert_close(make(name).similarity({"text": t}, {"vision": v, "audio": a}), cos)
    torch.testing.assert_close(
        make("pmrl", score="cosine_mean").similarity({"text": t}, {"vision": v, "audio": a}), cos
    )
    s = stacked_svdvals(ut, [uv, ua])
    torch.testing.assert_close(make("pmrl").similarity({"text": t}, {"vision": v, "audio": a}), s[..., 0])
    torch.testing.assert_close(
        make("gram").similarity({"text": t}, {"vision": v, "audio": a}), -(s.prod(-1) ** 2 + 1e-8).sqrt()
    )


# ------------------------------------------------------------------------------ errors and protocol


@pytest.mark.parametrize(
    ("name", "modalities", "params"),
    [
        ("pmrl", TVA, {"score": "sigma"}),
        ("pmrl", TVA, {"tau1": 0.0}),
        ("pmrl", TVA, {"unknown": 1}),
        ("clip", TVA, {"pairs": "anchor"}),
        ("clip", ["vision", "audio"], {"pairs": "anchored"}),
        ("imagebind", ["text", "audio"], {}),
        ("gram", ["vision", "audio"], {}),
        ("gram", TVA, {"label_smoothing": 1.5}),
    ],
)
def test_bad_parameters_are_bench_errors(name, modalities, params):
    with pytest.raises(BenchError):
        make(name, modalities, **params)


def test_similarity_needs_one_modality_on_one_side():
    x = randn(3, 4)
    with pytest.raises(BenchError, match="one modality"):
        make("pmrl").similarity({"text": x, "audio": x}, {"vision": x, "depth": x})


def test_loss_needs_two_modalities():
    with pytest.raises(BenchError, match="at least two"):
        make("clip").loss({"text": randn(3, 4)})


def test_protocols_record_the_choices():
    assert make("pmrl").protocol()["sign"] == "canonical"
    assert make("pmrl", sign_fix=False).protocol()["sign"] == "solver"
    assert make("pmrl", score="cosine_mean").protocol()["score"] == "cosine_mean"
    assert make("clip", pairs="anchored").protocol()["anchor"] == "text"
    assert make("imagebind", anchor="text").protocol()["anchor"] == "text"
    assert make("gram").protocol()["label_smoothing"] == 0.1


def test_singular_value_gradient_near_rank_deficiency():
    # sigma_3 = 1e-6: d sigma_3 / dZ = u_3 v_3^T stays exact up to the Gram route's eps / sigma_3 (about 1e-10).
    q1, _ = torch.linalg.qr(randn(6, 3, seed=4))
    q2, _ = torch.linalg.qr(randn(3, 3, seed=5))
    z = (q2 @ torch.diag(torch.tensor([1.5, 0.8, 1e-6], dtype=torch.float64)) @ q1.T)[None]
    weights = torch.tensor([0.4, -0.9, 1.3], dtype=torch.float64)
    ours = z.clone().requires_grad_()
    (g,) = torch.autograd.grad((leading_spectrum(ours)[0] * weights).sum(), ours)
    ref = z.clone().requires_grad_()
    (g_ref,) = torch.autograd.grad((torch.linalg.svdvals(ref.transpose(1, 2)) * weights).sum(), ref)
    torch.testing.assert_close(g, g_ref, rtol=0, atol=1e-8)
