"""The group's vocabulary layout, gathered once per call, and input errors raised alike on every rank.

A collective that one rank skips hangs the others, so no rank may raise on its own. Every call first
all-gathers 15 integers per rank (:func:`gather_layout`): the rank's shard size and position, its
row count, the range and a checksum of its target, the lengths of its ``prior`` and ``weight``, and a
flag for a local error. From that table every rank derives the same layout (shard offsets in position
order, the global vocabulary ``V = sum of the shard sizes``) and, if anything is wrong, the same error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .._validation import check_num_classes, expected

# Columns of the gathered table.
(
    _SIZE,
    _ROWS,
    _TMIN,
    _TMAX,
    _SUM1,
    _SUM2,
    _PRIOR,
    _WEIGHT,
    _ERROR,
    _POS,
    _VOCAB,
    _IGNORE,
    _PRIOR_OK,
    _PRIOR_DIM,
    _MODE,
) = range(15)
_ERROR_TYPES: dict[int, type[Exception]] = {1: ValueError, 2: TypeError}


class Said(str):
    """Text shown as is (not quoted) after "got" in the error template."""

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Layout:
    """Where this rank's shard lies in the global vocabulary.

    ``sizes`` are the shard sizes in position order (position = group rank for plain tensors, the mesh
    coordinate for a DTensor); this rank's classes are ``[start, start + sizes[position])`` of ``V``.
    ``prior_slices``/``weight_slices``: some rank passed a slice rather than the full vector, so every
    rank joins the all-reduce that combines them.
    """

    group: Any
    position: int
    sizes: tuple[int, ...]
    start: int
    vocab_size: int
    prior_slices: bool = False
    weight_slices: bool = False

    @property
    def local_size(self) -> int:
        return self.sizes[self.position]

    @property
    def world_size(self) -> int:
        return len(self.sizes)


def resolve_group(group: Any) -> tuple[Any, int, int]:
    """The process group (the default one for ``None``), this process's rank in it, and its size."""
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "labelsmooth.distributed needs an initialised process group: call "
            "torch.distributed.init_process_group(...) on every rank first."
        )
    return group, dist.get_rank(group), dist.get_world_size(group)


def _checksums(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two int64 sums (wrapping on overflow) that differ when two ranks hold different targets."""
    t = target.reshape(-1).long()
    pos = torch.arange(1, t.numel() + 1, device=t.device, dtype=torch.int64)
    return t.sum(), (t * pos).sum()


def gather_layout(
    group: Any,
    device: torch.device,
    *,
    local_size: int,
    rows: int,
    target: torch.Tensor | None,
    ignore_index: int,
    prior_len: int,
    prior_is_distribution: bool,
    prior_dim: int,
    weight_len: int,
    weight_mode: str,
    vocab_size: int | None,
    position: int | None,
    error: Exception | None,
    name: str = "logits_shard",
) -> Layout:
    """All-gather the per-rank facts, check them identically on every rank, and return the layout.

    ``error`` is a local validation error of this rank (raised on every rank, annotated with the rank,
    after the gather). ``prior_len``/``weight_len`` are -1 when the argument is absent;
    ``prior_is_distribution`` says whether the rank's prior sums to 1 over its last dimension (required
    when it turns out to be the full vector, not a slice).

    Raises
    ------
    ValueError
        Row counts that differ between ranks, shard sizes that do not sum to ``vocab_size``, fewer than
        2 classes in all, a target outside ``[0, V)`` (other than ``ignore_index``) on any rank, targets
        that differ between ranks, a ``prior`` or ``weight`` that is neither ``(V,)`` nor the rank's
        slice; and any rank's local error (its own type and message).
    """
    import torch.distributed as dist

    group, rank, world = resolve_group(group)
    meta = torch.zeros(15, dtype=torch.int64, device=device)
    if error is None and target is not None:
        t = target.reshape(-1)
        if t.numel():
            clean = torch.where(t == ignore_index, torch.zeros_like(t), t).long()
            lo, hi = torch.aminmax(clean)
            meta[_TMIN], meta[_TMAX] = lo, hi
        meta[_SUM1], meta[_SUM2] = _checksums(t)
    code = 0 if error is None else 2 if isinstance(error, TypeError) else 1
    scalars = {
        _SIZE: local_size,
        _ROWS: rows,
        _PRIOR: prior_len,
        _WEIGHT: weight_len,
        _ERROR: code,
        _POS: rank if position is None else position,
        _VOCAB: -1 if vocab_size is None else vocab_size,
        _IGNORE: ignore_index,
        _PRIOR_OK: int(prior_is_distribution),
        _PRIOR_DIM: prior_dim,
        _MODE: int(weight_mode == "row"),
    }
    for col, value in scalars.items():
        meta[col] = value
    parts = [torch.empty_like(meta) for _ in range(world)]
    dist.all_gather(parts, meta, group=group)
    table = torch.stack(parts).tolist()  # the one host sync of the layout

    bad = [r for r in range(world) if table[r][_ERROR]]
    if bad:
        messages: list[Any] = [None] * world
        dist.all_gather_object(messages, None if error is None else str(error), group=group)
        first = bad[0]
        text = str(messages[first])
        text = text[:-1] if text.endswith(".") else text
        raise _ERROR_TYPES[table[first][_ERROR]](f"{text} (on rank {first} of the group).")
    return _check_table(table, group, rank, name)


def _check_table(table: list[list[int]], group: Any, rank: int, name: str) -> Layout:
    """Everything that needs the whole group's facts; the same verdict on every rank."""
    world = len(table)
    rows = [r[_ROWS] for r in table]
    if len(set(rows)) != 1:
        raise ValueError(
            expected(name, "to have the same number of rows on every rank of the group", Said(f"{rows} rows"))
        )
    ignores = [r[_IGNORE] for r in table]
    if len(set(ignores)) != 1:
        raise ValueError(expected("ignore_index", "to be the same on every rank", ignores))
    positions = [r[_POS] for r in table]
    assert sorted(positions) == list(range(world)), positions  # group ranks or mesh coordinates
    order = sorted(range(world), key=lambda r: positions[r])
    sizes = tuple(table[r][_SIZE] for r in order)
    V = sum(sizes)
    declared = {r[_VOCAB] for r in table if r[_VOCAB] >= 0}
    if len(declared) > 1:
        raise ValueError(expected("vocab_size", "to be the same on every rank", sorted(declared)))
    if declared and V != next(iter(declared)):
        raise ValueError(
            expected(
                name,
                f"shards whose sizes (in rank order) sum to vocab_size={next(iter(declared))}",
                Said(f"sizes {list(sizes)} (sum {V})"),
            )
        )
    check_num_classes(V, "the global vocabulary size (sum of the shard sizes)")
    ignore = ignores[0]
    for r in range(world):
        if rows[0] and (table[r][_TMIN] < 0 or table[r][_TMAX] >= V):
            got = table[r][_TMIN] if table[r][_TMIN] < 0 else table[r][_TMAX]
            raise ValueError(
                expected(
                    "target",
                    f"to hold class indices in [0, {V}) (the global vocabulary) or ignore_index={ignore}",
                    Said(f"{got} on rank {r}"),
                )
            )
    for r in range(1, world):
        if (table[r][_SUM1], table[r][_SUM2]) != (table[0][_SUM1], table[0][_SUM2]):
            raise ValueError(
                expected(
                    "target",
                    "to be the same on every rank of the group (the batch is replicated over the vocabulary "
                    "shards)",
                    Said(f"a different target on rank {r} than on rank 0"),
                )
            )
    # the same collectives follow on every rank only if these agree
    for col, arg, what in (
        (_PRIOR, "prior", "to be given on every rank or on none"),
        (_WEIGHT, "weight", "to be given on every rank or on none"),
        (_PRIOR_DIM, "prior", "to have the same number of dimensions on every rank"),
        (_MODE, "weight_mode", "to be the same on every rank"),
    ):
        key = (
            (lambda row, col=col: row[col] >= 0)
            if col in (_PRIOR, _WEIGHT)
            else (lambda row, col=col: row[col])
        )
        if len({key(row) for row in table}) > 1:
            given: list[Any] = [row[col] for row in table]
            if col == _MODE:
                given = ["row" if g else "torch" for g in given]
            elif col != _PRIOR_DIM:
                given = ["given" if g >= 0 else "None" for g in given]
            raise ValueError(expected(arg, what, Said(f"{given} by rank")))
    for col, arg in ((_PRIOR, "prior"), (_WEIGHT, "weight")):
        for r in range(world):
            n, own = table[r][col], table[r][_SIZE]
            if n >= 0 and n not in (V, own):
                raise ValueError(
                    expected(
                        arg,
                        f"of length {V} (the full vocabulary) or {own} (rank {r}'s slice) in its last "
                        "dimension",
                        Said(f"length {n} on rank {r}"),
                    )
                )
        if col == _PRIOR:
            for r in range(world):
                if table[r][_PRIOR] == V and not table[r][_PRIOR_OK]:
                    raise ValueError(
                        expected(
                            "prior",
                            f"of length {V} (the full vocabulary) to sum to 1 over its last dimension",
                            Said(f"a prior that does not on rank {r}"),
                        )
                    )
    position = positions[rank]
    start = sum(sizes[:position])
    prior_slices = any(row[_PRIOR] >= 0 and row[_PRIOR] != V for row in table)
    weight_slices = any(row[_WEIGHT] >= 0 and row[_WEIGHT] != V for row in table)
    return Layout(group, position, sizes, start, V, prior_slices, weight_slices)


def all_reduce(t: torch.Tensor, group: Any, op: str) -> torch.Tensor:
    """In-place all-reduce (``"sum"`` or ``"max"``) over the group; a no-op for empty tensors."""
    import torch.distributed as dist

    if t.numel():
        dist.all_reduce(t, op=dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX, group=group)
    return t
