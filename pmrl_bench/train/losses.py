"""Shared math of the alignment objectives: InfoNCE, Gram volumes and the PMRL spectrum of small Gram matrices.

Everything works on batches of L2-normalised vectors and never loops over instances or pairs: per
(query, candidate) quantities are closed-form polynomials of the k x k Gram entries, evaluated on
`[chunk, Nc]` tensors (`PAIR_BUDGET` pairs per chunk of queries).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pmrl_bench.errors import BenchError
from pmrl_bench.runtime import fused

PAIR_BUDGET = 1 << 18  # (query, candidate) pairs per chunk in the pairwise closed forms

Entry = Callable[[int, int], Tensor]


def work_dtype(x: Tensor) -> torch.dtype:
    """The dtype a method computes in: float32 at least, float64 when the input is float64."""
    return torch.promote_types(x.dtype, torch.float32)


def unit(x: Tensor) -> Tensor:
    """Rows L2-normalised, in `work_dtype`."""
    return F.normalize(x.to(work_dtype(x)), dim=-1)


def present_modalities(z: dict[str, Tensor], modalities: Sequence[str], method: str) -> list[str]:
    """The configured modalities found in a batch, in configured order (at least two)."""
    names = [m for m in modalities if m in z]
    if len(names) < 2:
        raise BenchError(f"method {method!r} needs at least two modalities in a batch, got {sorted(z)}")
    return names


def anchor_and_tuple(
    query: dict[str, Tensor], candidates: dict[str, Tensor]
) -> tuple[Tensor, list[Tensor], bool]:
    """(anchor rows, tuple modalities, transposed): the one-modality side is the anchor of each pair.

    A query of one modality against candidate tuples gives `transposed=False`; a query tuple against
    candidates of one modality is scored the other way round and `transposed=True` says to transpose.
    """
    if len(query) == 1 and candidates:
        return unit(next(iter(query.values()))), [unit(c) for c in candidates.values()], False
    if len(candidates) == 1 and query:
        return unit(next(iter(candidates.values()))), [unit(q) for q in query.values()], True
    raise BenchError(
        f"similarity needs one modality on one side, got query {sorted(query)} and candidates {sorted(candidates)}"
    )


# ---------------------------------------------------------------------------------------------- InfoNCE


def symmetric_info_nce(
    z: Tensor, pairs: Sequence[tuple[int, int]], logit_scale: Tensor, label_smoothing: float = 0.0
) -> Tensor:
    """`[P]` symmetric InfoNCE losses, one per modality pair (i, j) of the stacked unit vectors `z` [k, B, D].

    For pair (i, j): logits = s * z_i z_j^T, loss = 1/2 [CE(logits, arange) + CE(logits^T, arange)]
    with PyTorch's label-smoothing convention; the positive of row b is column b. One product per pair,
    with the scale applied to the [P, B, D] input rather than to the [P, B, B] logits, and both directions
    from `directional_cross_entropy` (row and column log-sum-exps of the same contiguous logits).
    """
    left = torch.tensor([p[0] for p in pairs], device=z.device)
    right = torch.tensor([p[1] for p in pairs], device=z.device)
    logits = torch.matmul(z[left] * logit_scale.to(z.dtype), z[right].transpose(-1, -2))
    rows, cols = directional_cross_entropy(logits, label_smoothing)
    return 0.5 * (rows + cols)


class _DirectionalCE(torch.autograd.Function):
    """(CE over rows, CE over columns) of square logits [..., B, B], diagonal positives, label smoothing ls.

    Per direction CE = mean_b [logsumexp - (1 - ls) L_bb - ls mean_j L_bj]; the column direction reduces
    the same contiguous tensor along dim -2, so no transposed copy is made. Only the two log-sum-exp
    vectors are kept for backward, where dCE/dL = (softmax - (1 - ls) I - ls / B) / B in each direction:
    the softmaxes are recomputed as exp(L - lse) in place, and one tensor of the logits' size is written.
    """

    @staticmethod
    def forward(ctx: Any, logits: Tensor, label_smoothing: float) -> tuple[Tensor, Tensor]:
        lse_rows, lse_cols = torch.logsumexp(logits, -1), torch.logsumexp(logits, -2)
        diag = logits.diagonal(dim1=-2, dim2=-1).mean(-1)
        rows, cols = lse_rows.mean(-1), lse_cols.mean(-1)
        if label_smoothing:
            rest = label_smoothing * logits.mean((-2, -1))
            rows, cols = rows - rest, cols - rest
        ctx.label_smoothing = label_smoothing
        ctx.save_for_backward(logits, lse_rows, lse_cols)
        return rows - (1 - label_smoothing) * diag, cols - (1 - label_smoothing) * diag

    @staticmethod
    def backward(ctx: Any, g_rows: Tensor, g_cols: Tensor) -> tuple[Tensor, None]:
        logits, lse_rows, lse_cols = ctx.saved_tensors
        ls, b = ctx.label_smoothing, logits.shape[-1]
        g_rows, g_cols = (g / b for g in (g_rows, g_cols))
        grad = torch.sub(logits, lse_rows.unsqueeze(-1)).exp_().mul_(g_rows[..., None, None])
        grad.addcmul_(torch.sub(logits, lse_cols.unsqueeze(-2)).exp_(), g_cols[..., None, None])
        both = g_rows + g_cols
        grad.diagonal(dim1=-2, dim2=-1).sub_((1 - ls) * both.unsqueeze(-1))
        if ls:
            grad.sub_((ls / b) * both[..., None, None])
        return grad, None


def directional_cross_entropy(logits: Tensor, label_smoothing: float = 0.0) -> tuple[Tensor, Tensor]:
    """(CE(logits), CE(logits^T)) for square `[..., B, B]` score matrices whose positive of row b is column b.

    PyTorch's `F.cross_entropy` convention for label smoothing, one value per leading index.
    """
    return _DirectionalCE.apply(logits, label_smoothing)


def symmetric_cross_entropy(logits: Tensor, label_smoothing: float = 0.0) -> Tensor:
    """1/2 [CE(logits) + CE(logits^T)] for a square `[B, B]` score matrix whose positive of row b is column b."""
    rows, cols = directional_cross_entropy(logits, label_smoothing)
    return 0.5 * (rows + cols)


class LogitScale(nn.Module):
    """CLIP's temperature: logit scale exp(theta), theta initialised at log(1/temperature), capped at max_scale.

    As in CLIP (which clips theta after every optimiser step), theta is clipped in place at
    log(max_scale) before each use, so the cap never blocks the gradient that would lower the scale.
    """

    def __init__(self, temperature: float, max_scale: float, learnable: bool) -> None:
        super().__init__()
        if not (0 < temperature < math.inf) or not max_scale > 0:
            raise BenchError(
                f"temperature and max_logit_scale must be > 0, got {temperature} and {max_scale}"
            )
        self.max_log = math.log(max_scale)
        # float64 so that the initial value is exact; cast to the compute dtype at use.
        self.log_scale = nn.Parameter(
            torch.tensor(math.log(1.0 / temperature), dtype=torch.float64), requires_grad=learnable
        )

    def forward(self) -> Tensor:
        """The current logit scale (a scalar tensor)."""
        with torch.no_grad():
            self.log_scale.clamp_(max=self.max_log)
        return self.log_scale.exp()

    def temperature(self) -> float:
        """1 / the logit scale that the next forward will use."""
        return math.exp(-min(float(self.log_scale), self.max_log))


# --------------------------------------------------------------------------------- small Gram matrices


def query_chunks(fn: Callable[[Tensor], Tensor], anchor: Tensor, n_cols: int) -> Tensor:
    """`fn` applied to chunks of anchor rows (at most PAIR_BUDGET (row, column) pairs each), concatenated."""
    rows = max(1, PAIR_BUDGET // max(1, n_cols))
    if anchor.shape[0] <= rows:
        return fn(anchor)
    return torch.cat([fn(anchor[s : s + rows]) for s in range(0, anchor.shape[0], rows)])


def _candidate_gram(parts: Sequence[Tensor]) -> dict[tuple[int, int], Tensor]:
    """Candidate-only Gram entries G[m][n] (m <= n, 1-based: index 0 is the anchor), float64, [1, Nc]."""
    return {
        (m, n): (parts[m - 1] * parts[n - 1]).sum(-1).double().unsqueeze(0)
        for m in range(1, len(parts) + 1)
        for n in range(m, len(parts) + 1)
    }


def _tuple_gram(
    anchor: Tensor, stacked: Tensor, candidate: dict[tuple[int, int], Tensor]
) -> dict[tuple[int, int], Tensor]:
    """Entries G[a][b] (a <= b) of the Gram matrix of (anchor_i, parts[0]_j, ...), broadcastable to [Nq, Nc].

    `stacked` is the parts one after another ([(k - 1) Nc, D]), so the mixed entries [Nq, Nc] come from one
    matrix product, in the anchor's dtype (`_entries` reads them in float64); anchor-only entries are [Nq, 1],
    candidate-only entries (`_candidate_gram`, computed once) [1, Nc].
    """
    table = dict(candidate)
    table[(0, 0)] = (anchor * anchor).sum(-1, keepdim=True).double()
    for m, mixed in enumerate((anchor @ stacked.T).split(candidate[(1, 1)].shape[1], dim=1), start=1):
        table[(0, m)] = mixed
    return table


def _entries(table: dict[tuple[int, int], Tensor]) -> Entry:
    """The symmetric matrix of a `_tuple_gram` table, entry-wise in float64."""
    wide = {key: value.double() for key, value in table.items()}
    return lambda a, b: wide[(a, b) if a <= b else (b, a)]


def _minor(entry: Entry, rows: tuple[int, ...], cols: tuple[int, ...], memo: dict[Any, Tensor]) -> Tensor:
    """Determinant of the sub-matrix (rows, cols) by Laplace expansion along its first row (memoised)."""
    if len(rows) == 1:
        return entry(rows[0], cols[0])
    key = (rows, cols)
    if key not in memo:
        total = entry(rows[0], cols[0]) * _minor(entry, rows[1:], cols[1:], memo)
        for j in range(1, len(cols)):
            term = entry(rows[0], cols[j]) * _minor(entry, rows[1:], cols[:j] + cols[j + 1 :], memo)
            total = total - term if j % 2 else total + term
        memo[key] = total
    return memo[key]


def _principal_sums(entry: Entry, k: int) -> list[Tensor]:
    """[e_2, ..., e_k]: sums of the principal s x s minors, the coefficients of the characteristic polynomial."""
    memo: dict[Any, Tensor] = {}
    sums = []
    for size in range(2, k + 1):
        subsets = _subsets(tuple(range(k)), size)
        total = _minor(entry, subsets[0], subsets[0], memo)
        for s in subsets[1:]:
            total = total + _minor(entry, s, s, memo)
        sums.append(total)
    return sums


def _subsets(items: tuple[int, ...], size: int) -> list[tuple[int, ...]]:
    if size == 0:
        return [()]
    return [(items[i], *rest) for i in range(len(items)) for rest in _subsets(items[i + 1 :], size - 1)]


def _cubic_roots(p: Tensor, q: Tensor) -> list[Tensor]:
    """The three real roots (largest first) of y^3 + p y + q = 0 when all are real (trigonometric formula)."""
    m = (-p / 3).clamp_min(0).sqrt()
    cube = m * m * m
    arg = torch.where(cube > 0, (-q / 2) / cube.clamp_min(torch.finfo(p.dtype).tiny), torch.zeros_like(q))
    angle = torch.acos(arg.clamp(-1, 1)) / 3
    return [2 * m * torch.cos(angle - 2 * math.pi * j / 3) for j in range(3)]


# d(h) / h as a degree-12 polynomial in h (lowest power first), d(h) = 2 cos(pi / 3 - 2 asin(h) / 3) - 1: the
# Chebyshev interpolant on h in [0, 1] (tests/test_sigma1_accuracy.py rebuilds it), relative error <= 3e-12.
_ROOT_POLY = (
    1.1547005383760638, -0.22222222114240636, 0.10691665526352623, -0.06584224114221095, 0.04572022776592493,
    -0.034023744889902625, 0.02618777804792262, -0.01987924358482413, 0.01383093276083127, -0.008016959104954537,
    0.0034599678202403704, -0.000956147377140082, 0.00012445720863657621,
)


def _cubic_largest(p: Tensor, q: Tensor) -> Tensor:
    """Largest root of y^3 + p y + q = 0 when all three are real, without trigonometric functions.

    With m = sqrt(-p / 3) and h = sqrt((1 - q / (2 m^3)) / 2) in [0, 1], the root is m (1 + d(h)), d the
    trigonometric formula's 2 cos(pi / 3 - 2 asin(h) / 3) - 1. d is analytic on [0, 1] and vanishes at h = 0
    (the leading double root), so d(h) = h x polynomial (`_ROOT_POLY`) keeps its relative accuracy where the
    two largest roots meet: the root carries the polynomial's 3e-12 relative error times d <= 1.
    """
    m = (p * (-1 / 3)).clamp_min(0).sqrt()
    cube = m * m * m
    half = (0.5 - q / (4 * cube).clamp_min(torch.finfo(p.dtype).tiny)).clamp(0, 1)  # any h when m = 0: y = 0
    h = half.sqrt()
    return m + m * h * _horner(h, _ROOT_POLY)


def _horner(x: Tensor, coefficients: Sequence[float]) -> Tensor:
    """sum_i c_i x^i (lowest power first), one fused multiply-add (`addcmul`) per degree."""
    total = torch.full_like(x, coefficients[-1])
    for c in reversed(coefficients[:-1]):
        total = torch.addcmul(x.new_tensor(c), total, x)
    return total


def _quartic_largest(p: Tensor, q: Tensor, r: Tensor) -> Tensor:
    """Largest root of y^4 + p y^2 + q y + r = 0 with four real roots (Ferrari, resolvent cubic in z = (y_1 + y_j)^2)."""
    b, c, d = 2 * p, p * p - 4 * r, -q * q
    z = _cubic_roots(c - b * b / 3, 2 * b**3 / 27 - b * c / 3 + d)
    s = [(zi - b / 3).clamp_min(0).sqrt() for zi in z]
    half = (s[0] + s[1] + s[2]) / 2
    return torch.where(q <= 0, half, half - torch.minimum(torch.minimum(s[0], s[1]), s[2]))


def _char_poly(y: Tensor, e: Sequence[Tensor], k: int) -> tuple[Tensor, Tensor, Tensor]:
    """(f(y), f'(y), sum of |terms| of f(y)) for the depressed f(y) = y^k + e_2 y^(k-2) - e_3 y^(k-3) + e_4, k in 3..4."""
    if k == 3:
        return y * y * y + e[0] * y - e[1], 3 * y * y + e[0], (y * y * y).abs() + (e[0] * y).abs() + e[1].abs()
    y2 = y * y
    return (y2 * y2 + e[0] * y2 - e[1] * y + e[2], 4 * y2 * y + 2 * e[0] * y - e[1],
            y2 * y2 + (e[0] * y2).abs() + (e[1] * y).abs() + e[2].abs())


def _full_matrix(entry: Entry, k: int) -> Tensor:
    """The `[..., k, k]` matrices of a symmetric matrix given entry-wise, its entries broadcast to one shape."""
    cells = torch.broadcast_tensors(*[entry(a, b) for a in range(k) for b in range(k)])
    return torch.stack(cells, -1).unflatten(-1, (k, k))


def _polished(entry: Entry, k: int, shift: Tensor, y: Tensor, e: Sequence[Tensor]) -> Tensor:
    """shift + y after two Newton steps on the characteristic polynomial; batched eigvalsh where ill-conditioned.

    The closed forms lose up to about sqrt(machine epsilon) where roots nearly coincide (the characteristic
    polynomial's coefficients fix a multiple root only to that). Newton restores a simple root to the float; a root whose rounding
    sensitivity (eps x sum of |terms| / |f'|) exceeds 1e-13 relative (a leading double root, a near tie)
    is recomputed by `torch.linalg.eigvalsh` on those pairs only.
    """
    for _ in range(2):
        f, df, _ = _char_poly(y, e, k)
        y = torch.where(df.abs() > 0, y - f / torch.where(df == 0, torch.ones_like(df), df), y)
    lam = shift + y
    _, df, size = _char_poly(y, e, k)
    ill = 16 * torch.finfo(lam.dtype).eps * size > 1e-13 * lam.abs() * df.abs()
    if bool(ill.any()):
        full = _full_matrix(lambda a, b: entry(a, b).expand(ill.shape)[ill], k)
        lam = lam.masked_scatter(ill, torch.linalg.eigvalsh(full)[..., -1])
    return lam


def _largest_eigenvalue(entry: Entry, k: int, exact: bool = False) -> Tensor:
    """Largest eigenvalue of a symmetric k x k matrix given entry-wise: closed form for k <= 4, eigvalsh beyond.

    The matrix is shifted by its mean diagonal (B = G - qI, tr B = 0) so that the characteristic
    polynomial y^k + e_2 y^(k-2) - e_3 y^(k-3) + e_4 is depressed and its coefficients are free of
    cancellation; its largest root comes from the quadratic, cubic (`_cubic_largest`) or Ferrari formula,
    accurate to about 1e-8 relative at worst (near a multiple root), below float32 rounding. With
    `exact` (float64 results) k = 3, 4 are polished to the float64 eigensolver's accuracy (`_polished`).
    """
    if k == 1:
        return entry(0, 0)
    if k > 4:
        return torch.linalg.eigvalsh(_full_matrix(entry, k))[..., -1]
    shift = sum(entry(a, a) for a in range(k)) / k

    def shifted(a: int, b: int) -> Tensor:
        return entry(a, b) - shift if a == b else entry(a, b)

    e = _principal_sums(shifted, k)
    if k == 2:
        return shift + (-e[0]).clamp_min(0).sqrt()
    y = _cubic_largest(e[0], -e[1]) if k == 3 else _quartic_largest(e[0], -e[1], e[2])
    return _polished(entry, k, shift, y, e) if exact else shift + y


def _in_place(*xs: Tensor) -> bool:
    """Whether pair-level intermediates may be updated in place: no autograd graph through any of `xs`."""
    return not (torch.is_grad_enabled() and any(x.requires_grad for x in xs))


class _QuadraticForm(torch.autograd.Function):
    """-w^T A w of every pair: w_1..w_n [Nq, Nc] and the entries A_mj (m <= j, row-major) of a symmetric A [1, Nc].

    Forward: row by row of A, k (k - 1) / 2 fused multiply-adds in place (no gradient wanted: a finished
    w's buffer takes the next row). Backward written out, so the [1, Nc] operands cost one product and
    one column sum each instead of autograd's broadcast-and-reduce per operation:
    dw_m = -2 sum_j A_mj G w_j, dA_mj = -(2 - [m = j]) sum_i G w_m w_j.
    """

    @staticmethod
    def forward(ctx: Any, n: int, *tensors: Tensor) -> Tensor:
        w, a = tensors[:n], tensors[n:]
        index = {mj: i for i, mj in enumerate((m, j) for m in range(n) for j in range(m, n))}
        reuse = not any(ctx.needs_input_grad)
        form = spare = None
        for m in range(n):
            inner = torch.mul(w[m], -a[index[m, m]], out=spare) if spare is not None else w[m] * -a[index[m, m]]
            for j in range(m + 1, n):
                inner.addcmul_(w[j], a[index[m, j]], value=-2)
            form = inner.mul_(w[m]) if form is None else form.addcmul_(inner, w[m])
            spare = w[m] if reuse else None  # rows below m use w_j, j > m only
        ctx.n, ctx.index = n, index
        ctx.save_for_backward(*tensors)
        return form

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor | None, ...]:
        n, index, saved = ctx.n, ctx.index, ctx.saved_tensors
        w, a = saved[:n], saved[n:]
        gw = [g * x for x in w]
        d_w = []
        for m in range(n):
            total = gw[m] * (-2 * a[index[m, m]])
            for j in range(n):
                if j != m:
                    total.addcmul_(gw[j], a[index[min(m, j), max(m, j)]], value=-2)
            d_w.append(total)
        d_a = [(gw[m] * w[j]).sum(0, keepdim=True).mul_(-1 if m == j else -2) if ctx.needs_input_grad[1 + n + i]
               else None for (m, j), i in index.items()]
        return None, *d_w, *d_a


def _schur_det(anchor: Tensor, parts: Sequence[Tensor], candidate: dict[tuple[int, int], Tensor], eps: float) -> Tensor:
    """det G + eps of every (anchor_i, parts[0]_j, ...) tuple by the Schur form g00 det C - w^T adj(C) w, float64.

    C (the tuple's own Gram block), its determinant and adjugate depend on the candidate only and are
    computed once ([1, Nc]); per pair there remain the k - 1 products w_m = anchor_i . parts[m]_j (matrix
    products), the quadratic form (`_QuadraticForm`, k (k - 1) / 2 fused multiply-adds on [Nq, Nc] tensors)
    and g00 det C + eps as one rank-2 product.
    """
    n = len(parts)
    full = tuple(range(1, n + 1))

    def cofactor(a: int, b: int) -> Tensor:  # adj(C)_ab = (-1)^(a+b) det C without row b, column a (1-based)
        rows, cols = tuple(i for i in full if i != b), tuple(i for i in full if i != a)
        return (-1) ** (a + b) * _minor(entry, rows, cols, memo) if rows else torch.ones_like(candidate[(1, 1)])

    memo: dict[Any, Tensor] = {}
    entry = lambda a, b: candidate[(a, b) if a <= b else (b, a)]  # noqa: E731
    adj = [cofactor(m, j) for m in full for j in range(m, n + 1)]
    form = _QuadraticForm.apply(n, *[(anchor @ part.T).double() for part in parts], *adj)
    g00 = (anchor * anchor).sum(-1, keepdim=True).double()
    left = torch.cat([g00, torch.ones_like(g00)], 1)  # [Nq, 2] @ [2, Nc] = g00 det C + eps
    right = torch.cat([_minor(entry, full, full, memo), torch.full_like(candidate[(1, 1)], eps)])
    return form.addmm_(left, right) if _in_place(anchor, *parts) else form.addmm(left, right)


def gram_volume(anchor: Tensor, parts: Sequence[Tensor], eps: float = 0.0) -> Tensor:
    """`[Nq, Nc]` volumes sqrt(det G + eps) of the tuples (anchor_i, parts[0]_j, ..., parts[-1]_j).

    det G + eps is the closed-form determinant of the k x k Gram matrix plus eps (`_schur_det`), in float64,
    rounded to the anchor's dtype, clamped at eps (det G < 0 only by round-off; eps > 0 keeps the gradient
    finite at volume 0), then square-rooted.
    """
    candidate = _candidate_gram(parts)

    def chunk(a: Tensor) -> Tensor:
        det = _schur_det(a, parts, candidate, eps).to(anchor.dtype)
        return det.clamp_min_(eps).sqrt_() if _in_place(a, *parts) else det.clamp_min(eps).sqrt()

    return query_chunks(chunk, anchor, parts[0].shape[0])


def _top_singular_of_gram(table: dict[tuple[int, int], Tensor], k: int, dtype: torch.dtype) -> Tensor:
    """sigma_1 of every pair from its Gram entries (`_tuple_gram`), closed form in float64, rounded to `dtype`."""
    return _largest_eigenvalue(_entries(table), k).clamp_min(0).sqrt().to(dtype)


def top_singular_value(anchor: Tensor, parts: Sequence[Tensor]) -> Tensor:
    """`[Nq, Nc]` largest singular value of the stacked vectors [anchor_i, parts[0]_j, ..., parts[-1]_j].

    sigma_1 = sqrt(lambda_max(G)) of the k x k Gram matrix, in closed form for k <= 4 (float64), accurate to
    the result's float: float32 results carry the closed form's <= 1e-8, float64 ones are polished to agree
    with a float64 eigensolver to 1e-12 relative. Without gradients the per-pair closed form runs as one
    compiled kernel when PMRL_BENCH_COMPILE=1 (`runtime.fused`).
    """
    k, candidate, stacked, n_c = 1 + len(parts), _candidate_gram(parts), torch.cat(list(parts)), parts[0].shape[0]
    if anchor.dtype == torch.float64:  # polished: data-dependent eigensolver calls, never compiled

        def polished(a: Tensor) -> Tensor:
            lam = _largest_eigenvalue(_entries(_tuple_gram(a, stacked, candidate)), k, exact=True)
            return lam.clamp_min(0).sqrt()

        return query_chunks(polished, anchor, n_c)
    closed_form = fused(_top_singular_of_gram) if _in_place(anchor, *parts) else _top_singular_of_gram
    return query_chunks(lambda a: closed_form(_tuple_gram(a, stacked, candidate), k, anchor.dtype), anchor, n_c)


def cosine_mean(anchor: Tensor, parts: Sequence[Tensor]) -> Tensor:
    """`[Nq, Nc]` mean cosine between anchor_i and each of the tuple's vectors parts[m]_j (unit inputs)."""
    return anchor @ torch.stack(list(parts)).mean(0).T


# ---------------------------------------------------------------------------------------- PMRL spectrum


def canonical_sign(v1: Tensor, y1: Tensor, text_index: int) -> Tensor:
    """+-1 per instance orienting u_1 so that u_1 . sum_m z^m > 0; ties fall to u_1 . z^text > 0, then u_1's first nonzero.

    `v1` [B, k] is the top eigenvector of G = Z Z^T and `y1` = v1^T Z = sigma_1 u_1 [B, D]. Since
    u_1 . sum_m z^m = sigma_1 sum_j v1_j and u_1 . z^text = sigma_1 v1_text, the tests run on v1.
    A value counts as a tie when |value| <= sqrt(machine epsilon) (1.5e-8 in float64, 3.5e-4 in float32),
    above the round-off of a structural tie such as k = 2 with a negative cosine, v1 = (1, -1)/sqrt 2.
    """
    tol = math.sqrt(torch.finfo(v1.dtype).eps)
    total, text = v1.sum(-1), v1[..., text_index]
    nonzero = y1.abs() > tol * y1.abs().amax(-1, keepdim=True)
    first = torch.gather(y1, -1, nonzero.to(torch.int8).argmax(-1, keepdim=True)).squeeze(-1)
    sign = torch.where(
        total.abs() > tol, total.sign(), torch.where(text.abs() > tol, text.sign(), first.sign())
    )
    return torch.where(sign == 0, torch.ones_like(sign), sign)


class _LeadingSpectrum(torch.autograd.Function):
    """sigma [B, k] (descending) and u_1 [B, D] of each Z [k, D] through eigh of G = Z Z^T, with a guarded backward."""

    @staticmethod
    def forward(
        ctx: Any, z: Tensor, sign_fix: bool, text_index: int, gap_eps: float
    ) -> tuple[Tensor, Tensor]:
        _, vecs = torch.linalg.eigh(z @ z.transpose(-1, -2))
        vecs = vecs.flip(-1)  # columns v_j, descending eigenvalue order
        if sign_fix:
            y1 = (vecs[..., :1].transpose(-1, -2) @ z).squeeze(1)
            sign = canonical_sign(vecs[..., 0], y1, text_index)
            flip = torch.ones_like(vecs[:, :1, :])
            flip[:, 0, 0] = sign
            vecs = vecs * flip
        proj = vecs.transpose(-1, -2) @ z  # rows y_j = v_j^T Z = sigma_j u_j
        sigma = proj.norm(dim=-1)
        u1 = proj[:, 0] / sigma[:, :1].clamp_min(torch.finfo(z.dtype).tiny)
        ctx.gap_eps = gap_eps
        ctx.save_for_backward(z, vecs, proj, sigma, u1)
        return sigma, u1

    @staticmethod
    def backward(ctx: Any, g_sigma: Tensor | None, g_u: Tensor | None) -> tuple[Tensor, None, None, None]:
        z, vecs, proj, sigma, u1 = ctx.saved_tensors
        tiny = torch.finfo(z.dtype).tiny
        s1 = sigma[:, :1].clamp_min(tiny)
        g_u = torch.zeros_like(u1) if g_u is None else g_u
        g_sigma = torch.zeros_like(sigma) if g_sigma is None else g_sigma.clone()
        # u_1 = y_1 / sigma_1: the sigma_1 part of its derivative joins the singular-value path.
        g_sigma[:, 0] -= (g_u * u1).sum(-1) / s1[:, 0]
        # d sigma_j / dZ = v_j u_j^T = v_j v_j^T Z / sigma_j (norm 1, so bounded even as sigma_j -> 0;
        # an exact 0 has y_j = 0 and contributes nothing).
        coef = torch.diag_embed(g_sigma / sigma.clamp_min(tiny))
        # d u_1 / dZ through v_1: dv_1 = sum_{j>1} v_j v_j^T dG v_1 F(lambda_1 - lambda_j), dG = dZ Z^T + Z dZ^T,
        # with F(g) = g / (g^2 + eps^2) in place of 1/g (bounded by 1/(2 eps), 0 at an exact tie);
        # v_j^T (Z g_u) / sigma_1 is the upstream gradient of v_1 along v_j.
        lam = sigma * sigma
        gap = lam[:, :1] - lam[:, 1:]
        along = (vecs.transpose(-1, -2) @ (z @ g_u.unsqueeze(-1))).squeeze(-1)[:, 1:] / s1  # [B, k-1]
        coef[:, 1:, 0] = gap / (gap * gap + ctx.gap_eps**2) * along
        coef[:, 0, 1:] = coef[:, 1:, 0]
        # every term is v_a c_ab y_b: the k x k coefficients act on the rows y_b = v_b^T Z (so g_sigma_j / sigma_j
        # always multiplies a row of norm sigma_j); then the direct part of d u_1 / dZ, (dZ)^T v_1 / sigma_1.
        grad = vecs @ (coef @ proj)
        return grad + vecs[..., :1] * (g_u / s1).unsqueeze(1), None, None, None


def leading_spectrum(
    z: Tensor, sign_fix: bool = True, text_index: int = 0, gap_eps: float = 1e-4
) -> tuple[Tensor, Tensor]:
    """(sigma [B, k] descending, u_1 [B, D]) of the stacked vectors z [B, k, D] (rows = modalities), never forming U.

    Route (docs/protocol.md, Methods and scores): G = Z Z^T (k x k), eigh, y_j = v_j^T Z, sigma_j = ||y_j||,
    u_1 = y_1 / sigma_1 (no sqrt of a rounded eigenvalue, so sigma_j = 0 comes out as ~1e-16, not
    ~1e-8). `sign_fix` orients u_1 by `canonical_sign`, else u_1 keeps the solver's sign.

    Backward guard: the gradient is written out analytically instead of going through eigh's
    backward, whose 1/(lambda_i - lambda_j) terms for every pair turn ties among the trailing
    eigenvalues (equal pairwise cosines, duplicated modalities) into 0/0 = NaN although u_1 is well
    defined there. (1) singular values use d sigma_j/dZ = v_j u_j^T with u_j = y_j/||y_j||, norm 1,
    so sigma_j -> 0 is harmless (no 1/(2 sqrt(lambda)) factor); a tie sigma_j = sigma_l between
    trailing values gets equal upstream gradients from any symmetric loss, so the result is
    basis-independent. (2) u_1 needs only the gaps lambda_1 - lambda_j, j > 1, each replaced by
    the Lorentzian-broadened inverse g/(g^2 + eps^2): exact up to a relative (eps/g)^2 (< 1e-4 for
    gaps > 100 eps), bounded by 1/(2 eps), and 0 at an exact tie sigma_1 = sigma_2 (mutually
    orthogonal modalities), where u_1 is undefined and no direction should be preferred. eps is
    `gap_eps`, in units of G's eigenvalues (which lie in [0, k]); the default 1e-4 sits far above
    the round-off gap of a float32 tie (about 1e-7) and far below typical gaps (about 0.05 for
    random 512-d vectors). Accuracy: sigma_j and d sigma_j/dZ carry the Gram route's relative error
    about eps / sigma_j (the direction u_j of a tiny sigma_j is known only that well), against eps for
    a full SVD; sigma_1 >= 1 and u_1 are unaffected.
    Computed in float32 at least (float64 for float64 input), autocast disabled.
    """
    with torch.autocast(device_type=z.device.type, enabled=False):
        return _LeadingSpectrum.apply(z.to(work_dtype(z)), sign_fix, text_index, gap_eps)


def pmrl_terms(sigma: Tensor, u1: Tensor, tau1: float, tau2: float) -> tuple[Tensor, Tensor]:
    """(L_intra, L_inter) of PMRL: CE over sigma/tau1 with target sigma_1, and CE over u_i . u_j / tau2 with identity targets.

    L_intra is evaluated as mean_i log(1 + sum_{j>1} exp((sigma_j - sigma_1)/tau1)), the same value as
    the cross-entropy without its cancellation near 0 (1.8056e-15 rather than ~1.78e-15 for aligned inputs).
    """
    intra = torch.log1p(torch.exp((sigma[:, 1:] - sigma[:, :1]) / tau1).sum(-1)).mean()
    logits = u1 @ u1.T / tau2
    inter = F.cross_entropy(logits, torch.arange(u1.shape[0], device=u1.device))
    return intra, inter
