"""The contract every registered method fulfils (parametrised over pmrl_bench.registry.method_names()), at each
modality count it declares in `modality_counts` (the contract: docs/plugins.md, "The method contract")."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from pmrl_bench.errors import BenchError
from pmrl_bench.registry import get_method, method_names
from pmrl_bench.train.method import Method

METHODS = sorted(method_names())
MODALITY_SETS = {
    2: ["text", "vision"],
    3: ["text", "vision", "audio"],
    4: ["text", "vision", "audio", "subtitle"],
}
B, D = 12, 16


def supported(name: str, k: int) -> bool:
    """Whether the method declares k modalities as supported (`Method.modality_counts`)."""
    low, high = get_method(name).modality_counts
    return low <= k <= (high or k)


def smallest(name: str) -> int:
    """The smallest modality count the method supports (the count the count-free tests use)."""
    return get_method(name).modality_counts[0]


def cases(ks: list[int]) -> list[tuple[str, int]]:
    """(method, k) for every k a method supports."""
    return [(name, k) for name in METHODS for k in ks if supported(name, k)]


def build(name: str, k: int = 3) -> Method:
    """The method with its defaults for k modalities."""
    return get_method(name)(MODALITY_SETS[k])


def random_batch(k: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Raw head outputs of B instances for k modalities."""
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(B, D, generator=g, dtype=dtype) for m in MODALITY_SETS[k]}


def degenerate_batches(k: int) -> dict[str, dict[str, torch.Tensor]]:
    """Batches that break naive implementations: ties, zero volumes, identical rows, orthogonal modalities."""
    base = random_batch(k)["text"]
    eye = torch.eye(D)
    return {
        "identical_modalities": {m: base.clone() for m in MODALITY_SETS[k]},
        "orthogonal_modalities": {m: eye[i].expand(B, D).clone() for i, m in enumerate(MODALITY_SETS[k])},
        "constant_instances": {
            m: torch.randn(1, D, generator=torch.Generator().manual_seed(i)).expand(B, D).clone()
            for i, m in enumerate(MODALITY_SETS[k])
        },
        "antiparallel": {m: (base if i % 2 == 0 else -base).clone() for i, m in enumerate(MODALITY_SETS[k])},
        "huge_and_tiny": {m: base * (1e4 if i == 0 else 1e-4) for i, m in enumerate(MODALITY_SETS[k])},
    }


def loss_and_grads(method: Method, z: dict[str, torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The loss and the gradients with respect to the inputs and the method's parameters."""
    inputs = {m: v.clone().requires_grad_() for m, v in z.items()}
    loss = method.loss(inputs)
    params = [p for p in method.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, [*inputs.values(), *params], allow_unused=True)
    return loss, [g for g in grads if g is not None]


@pytest.mark.parametrize("name", METHODS)
def test_declares_defaults_protocol_and_diagnostics(name):
    cls = get_method(name)
    assert issubclass(cls, Method) and cls.name == name
    assert cls.defaults and all(isinstance(k, str) for k in cls.defaults)
    assert isinstance(cls.stochastic, bool)
    low, high = cls.modality_counts
    assert 2 <= low and (high is None or high >= low)
    for k in (low - 1, *((high + 1,) if high else ())):
        if k in MODALITY_SETS:
            with pytest.raises(BenchError, match="modalities"):
                cls(MODALITY_SETS[k])
    method = cls(MODALITY_SETS[low], **copy.deepcopy(cls.defaults))
    assert method.params == cls.defaults
    protocol = method.protocol()
    assert {"score", "negatives"} <= protocol.keys()
    method.loss(random_batch(low))
    assert all(isinstance(v, float) for v in method.diagnostics().values())
    with pytest.raises(BenchError):
        cls(MODALITY_SETS[low], no_such_parameter=1)


@pytest.mark.parametrize(("name", "k"), cases([2, 3, 4]))
def test_finite_loss_and_gradients_on_random_batches(name, k):
    for dtype in (torch.float32, torch.float64):
        loss, grads = loss_and_grads(build(name, k), random_batch(k, dtype=dtype))
        assert loss.ndim == 0 and torch.isfinite(loss)
        assert loss.dtype == dtype
        assert grads and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("case", list(degenerate_batches(3)))
@pytest.mark.parametrize(("name", "k"), cases([2, 3, 4]))
def test_finite_loss_and_gradients_on_degenerate_batches(name, k, case):
    loss, grads = loss_and_grads(build(name, k), degenerate_batches(k)[case])
    assert torch.isfinite(loss)
    assert all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize(("name", "k"), cases([2, 3, 4]))
def test_similarity_shape_and_chunking(name, k):
    method = build(name, k)
    g = torch.Generator().manual_seed(1)
    query = {"text": torch.randn(23, D, generator=g)}
    candidates = {m: torch.randn(17, D, generator=g) for m in MODALITY_SETS[k][1:]}
    full = method.similarity(query, candidates)
    assert full.shape == (23, 17) and torch.isfinite(full).all()
    # the other orientation of the same k-modality direction (a query tuple against one candidate modality)
    back = method.similarity(candidates, query)
    assert back.shape == (17, 23) and torch.isfinite(back).all()
    chunks = [method.similarity({"text": query["text"][a : a + 5]}, candidates) for a in range(0, 23, 5)]
    torch.testing.assert_close(torch.cat(chunks), full, rtol=1e-6, atol=1e-6)
    # a candidate built from the query's own vectors scores at least as well as a random one on average
    same = {m: query["text"][:17] for m in candidates}
    diag = method.similarity({"text": query["text"][:17]}, same).diagonal()
    assert float(diag.mean()) >= float(full[:17].mean())


@pytest.mark.parametrize("name", METHODS)
def test_deterministic(name):
    """A deterministic loss repeats exactly; a stochastic one (`stochastic = True`) repeats under the same torch seed."""
    k = smallest(name)
    z = random_batch(k, seed=5)
    first, second = build(name, k), build(name, k)

    def loss(method: Method) -> torch.Tensor:
        if method.stochastic:
            torch.manual_seed(0)
        return method.loss(z)

    assert torch.equal(loss(first), loss(second))
    assert torch.equal(loss(first), loss(first))
    query, cands = {"text": z["text"]}, {m: z[m] for m in MODALITY_SETS[k][1:]}
    assert torch.equal(first.similarity(query, cands), second.similarity(query, cands))


@pytest.mark.parametrize(("name", "k"), cases([2, 3, 4]))
def test_parameters_move_under_an_optimiser_step(name, k):
    torch.manual_seed(0)
    method = build(name, k)
    heads = nn.ModuleDict({m: nn.Linear(8, D) for m in MODALITY_SETS[k]})
    g = torch.Generator().manual_seed(2)
    x = {m: torch.randn(B, 8, generator=g) for m in MODALITY_SETS[k]}
    params = [*heads.parameters(), *[p for p in method.parameters() if p.requires_grad]]
    before = [p.detach().clone() for p in params]
    optimiser = torch.optim.Adam(params, lr=1e-2)
    loss0 = method.loss({m: heads[m](v) for m, v in x.items()})
    optimiser.zero_grad()
    loss0.backward()
    optimiser.step()
    assert all(not torch.equal(b, p.detach()) for b, p in zip(before, params, strict=True))
    loss1 = method.loss({m: heads[m](v) for m, v in x.items()})
    assert float(loss1.detach()) != float(loss0.detach())
