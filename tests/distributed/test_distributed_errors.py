"""labelsmooth.distributed on bad input: the same clear error on every rank of a spawned group
(``_case_errors``, run by the spawn of test_distributed_spawn.py), and the in-process checks with no process
group or a group of this process alone (type errors, counts, and the one-rank gradcheck of the backward).
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
from distributed_helpers import REDUCTIONS, _bounds, _ce, _check_shard_loss, _lin, _problem, _raises, _sizes

from labelsmooth import cross_entropy
from labelsmooth.distributed import (
    global_num_items,
    vocab_parallel_cross_entropy,
    vocab_parallel_linear_cross_entropy,
)


# --------------------------------------------------------------------------- bad input on every rank
def _case_errors(rank, world):
    """Bad input raises the same clear error on every rank (nobody hangs in a collective)."""
    V = 10
    sizes = _sizes(V, world, "even")
    s, e = _bounds(sizes, rank)
    z, y, _ = _problem(15, 4, V)
    shard = z[:, s:e]
    other = world - 1  # the rank whose input is wrong
    mine = rank == other
    # the shards' sizes disagree with the declared vocabulary
    _raises(ValueError, "sum to vocab_size=11", lambda: _ce(shard, y, vocab_size=11))
    # a target outside the global vocabulary on one rank only
    bad = y.clone()
    if mine:
        bad[0] = V
    msg = _raises(ValueError, f"[0, {V})", lambda: _ce(shard, bad))
    assert f"on rank {other}" in msg
    # different targets on different ranks
    diff = y.clone()
    if mine:
        diff[2] = (diff[2] + 1) % V
    _raises(ValueError, "same on every rank", lambda: _ce(shard, diff))
    # a prior slice of the wrong length on one rank
    u = torch.full((V,), 1.0 / V, dtype=torch.float64)
    prior = u[s : e - 1] if mine else u[s:e]
    msg = _raises(
        ValueError,
        "of length 10 (the full vocabulary)",
        lambda: _ce(shard, y, prior=prior, label_smoothing=0.1),
    )
    assert f"on rank {other}" in msg
    # prior slices that do not add up to a distribution; a full prior that is not one
    _raises(
        ValueError, "over the full vocabulary", lambda: _ce(shard, y, prior=u[s:e] * 2, label_smoothing=0.1)
    )
    _raises(
        ValueError,
        "to sum to 1",
        lambda: _ce(shard, y, prior=u * (1.5 if mine else 1.0), label_smoothing=0.1),
    )
    # arguments that must agree across ranks for the same collectives to follow
    _raises(
        ValueError, "given on every rank or on none", lambda: _ce(shard, y, prior=u[s:e] if mine else None)
    )
    _raises(ValueError, "given on every rank or on none", lambda: _ce(shard, y, weight=None if mine else u))
    rows = torch.full((4, V), 1.0 / V, dtype=torch.float64)
    _raises(
        ValueError, "same number of dimensions", lambda: _ce(shard, y, prior=rows[:, s:e] if mine else u[s:e])
    )
    _raises(
        ValueError,
        "`weight_mode` to be the same",
        lambda: _ce(shard, y, weight_mode="row" if mine else "torch"),
    )
    _raises(ValueError, "`vocab_size` to be the same", lambda: _ce(shard, y, vocab_size=V + 1 if mine else V))
    # a weight slice of the wrong length
    w = torch.ones(V + 1 if mine else V, dtype=torch.float64)
    _raises(ValueError, "`weight` of length 10", lambda: _ce(shard, y, weight=w))
    # mismatched N across ranks
    n_bad = 3 if mine else 4
    _raises(ValueError, "same number of rows", lambda: _ce(shard[:n_bad], y[:n_bad]))
    # a local type error on one rank is raised, with its rank, on every rank
    msg = _raises(
        TypeError,
        "floating-point",
        lambda: _ce(shard, y, weight=torch.ones(V, dtype=torch.long) if mine else None),
    )
    assert f"on rank {other}" in msg
    _raises(ValueError, "label_smoothing", lambda: _ce(shard, y, label_smoothing=1.5))
    _raises(ValueError, 'reduction="mean"', lambda: _ce(shard, y, reduction="sum", num_items_in_batch=3))
    _raises(ValueError, "> 0", lambda: _ce(shard, y, num_items_in_batch=0))
    _raises(TypeError, "one-element tensor", lambda: _ce(shard, y, num_items_in_batch="3"))
    _raises(ValueError, "one-element tensor", lambda: _ce(shard, y, num_items_in_batch=torch.ones(2)))
    _raises(
        ValueError, "`ignore_index` to be the same", lambda: _ce(shard, y, ignore_index=-1 if mine else -100)
    )
    # the linear variant: a bias whose length disagrees with this rank's rows
    x = torch.randn(4, 3, dtype=torch.float64)
    Wr = torch.randn(e - s, 3, dtype=torch.float64)
    bias = torch.zeros(e - s + (1 if mine else 0), dtype=torch.float64)
    _raises(ValueError, "`bias` of shape", lambda: _lin(x, Wr, y, bias))
    _raises(ValueError, "sum to vocab_size=12", lambda: _lin(x, Wr, y, vocab_size=12))
    _raises(ValueError, "chunk_size", lambda: _lin(x, Wr, y, chunk_size=0))
    _raises(TypeError, "input's dtype", lambda: _lin(x, Wr.float(), y))
    _raises(ValueError, "(V_r, 3)", lambda: _lin(x, Wr[:, :2], y))
    # after all that, the group still works
    _check_shard_loss(rank, world, sizes=sizes, z=z, y=y, kw_ref={"label_smoothing": 0.1}, reduction="mean")


# --------------------------------------------------------------------------- in-process checks
def test_needs_a_process_group():
    if dist.is_initialized():  # pragma: no cover - another test left one
        pytest.skip("a process group is initialised in this process")
    with pytest.raises(RuntimeError, match="init_process_group"):
        vocab_parallel_cross_entropy(torch.randn(2, 3), torch.tensor([0, 1]))
    with pytest.raises(RuntimeError, match="init_process_group"):
        global_num_items(torch.tensor([0, 1]))


@pytest.fixture
def one_rank_group():
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_global_num_items_types(one_rank_group):
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        global_num_items([0, 1])
    with pytest.raises(TypeError, match="integer class indices"):
        global_num_items(torch.tensor([0.0]))
    with pytest.raises(TypeError, match="floating-point"):
        global_num_items(torch.tensor([0]), weight=torch.tensor([1]))


def test_one_rank_type_errors(one_rank_group):
    z = torch.randn(2, 3)
    with pytest.raises(TypeError, match="`logits_shard` to be a floating-point tensor"):
        vocab_parallel_cross_entropy(z.long(), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="`target` to hold integer class indices"):
        vocab_parallel_cross_entropy(z, torch.tensor([0.0, 1.0]))
    with pytest.raises(TypeError, match=r"`target` to be a torch\.Tensor"):
        vocab_parallel_cross_entropy(z, [0, 1])
    with pytest.raises(ValueError, match="`target` of shape"):
        vocab_parallel_cross_entropy(z, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="class dimension"):
        vocab_parallel_cross_entropy(torch.tensor(1.0), torch.tensor(0))
    with pytest.raises(ValueError, match="weight_mode"):
        vocab_parallel_cross_entropy(z, torch.tensor([0, 1]), weight_mode="rows")
    with pytest.raises(TypeError, match="allow_negative"):
        vocab_parallel_cross_entropy(z, torch.tensor([0, 1]), allow_negative=1)
    with pytest.raises(ValueError, match=r"\(2, P\)"):
        vocab_parallel_cross_entropy(z, torch.tensor([0, 1]), prior=torch.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match="non-negative"):
        vocab_parallel_cross_entropy(z, torch.tensor([0, 1]), prior=torch.tensor([1.5, -0.5, 0.0]))
    with pytest.raises(ValueError, match="finite"):
        vocab_parallel_cross_entropy(z, torch.tensor([0, 1]), prior=torch.tensor([0.5, float("nan"), 0.5]))
    with pytest.raises(ValueError, match=r"of shape \(P,\) or \(M, P\)"):
        vocab_parallel_cross_entropy(z, torch.tensor([0, 1]), prior=torch.full((2, 3, 3), 1 / 3))
    with pytest.raises(ValueError, match="`weight` of shape"):
        vocab_parallel_cross_entropy(z, torch.tensor([0, 1]), weight=torch.ones(3, 1))
    with pytest.raises(ValueError, match="`vocab_size` >= 2"):
        vocab_parallel_cross_entropy(z, torch.tensor([0, 1]), vocab_size=1)
    with pytest.raises(ValueError, match=r">= 2"):
        vocab_parallel_cross_entropy(torch.randn(2, 1), torch.tensor([0, 0]))
    x, W = torch.randn(2, 3, requires_grad=True), torch.randn(4, 3)
    with pytest.raises(TypeError, match="`bias` to have the input's dtype"):
        vocab_parallel_linear_cross_entropy(x, W, torch.tensor([0, 1]), torch.zeros(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="`input` to have shape"):
        vocab_parallel_linear_cross_entropy(torch.tensor(1.0), W, torch.tensor(0))
    loss = vocab_parallel_linear_cross_entropy(x, W, torch.tensor([0, 1]))
    loss.backward(torch.tensor(2.0))
    with pytest.raises(RuntimeError, match="backward twice"):
        loss.grad_fn.apply(torch.tensor(2.0))


def test_gradcheck_one_rank(one_rank_group):
    """float64 gradcheck of the hand-written backward (with weights, a per-row prior, per-sample smoothing,
    an ignored row), and of the linear variant's three gradients."""
    g = torch.Generator().manual_seed(3)
    z = torch.randn(4, 6, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0, 5, -100, 2])
    w = torch.rand(6, generator=g, dtype=torch.float64) + 0.5
    u = torch.softmax(torch.randn(4, 6, generator=g, dtype=torch.float64), 1)
    a = torch.tensor([0.1, 0.3, 0.0, 0.5], dtype=torch.float64)
    for red in REDUCTIONS:
        for mode in ("torch", "row"):
            assert torch.autograd.gradcheck(
                lambda t, red=red, mode=mode: vocab_parallel_cross_entropy(
                    t, y, label_smoothing=a, prior=u, weight=w, reduction=red, weight_mode=mode
                ),
                (z,),
            )
    x = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    W = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(6, generator=g, dtype=torch.float64, requires_grad=True)
    for red in REDUCTIONS:
        assert torch.autograd.gradcheck(
            lambda x, W, b, red=red: vocab_parallel_linear_cross_entropy(
                x, W, y, b, label_smoothing=0.1, prior=u[0], reduction=red, chunk_size=3
            ),
            (x, W, b),
        )


def test_global_num_items_accumulates_half_weights_in_float32(one_rank_group):
    # fp16 weights: 70000 tokens of weight 1 summed in float16 gave inf (max 65504)
    n = global_num_items(torch.zeros(70000, dtype=torch.long), weight=torch.ones(3, dtype=torch.float16))
    assert n.dtype == torch.float32 and float(n) == 70000.0


def test_num_items_in_batch_must_be_finite_as_in_cross_entropy(one_rank_group):
    # inf used to pass the check (inf > 0) and gave a loss of 0; labelsmooth.cross_entropy rejects it
    z, y = torch.randn(2, 3), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="`num_items_in_batch` > 0"):
        cross_entropy(z, y, num_items_in_batch=float("inf"))
    with pytest.raises(ValueError, match="`num_items_in_batch`"):
        vocab_parallel_cross_entropy(z, y, num_items_in_batch=float("inf"))
