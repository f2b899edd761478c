"""Data and model of the ``sequence`` task: a byte-level corpus of the standard library's own source, a
synthetic reverse task, and a small causal Transformer with a separate output projection.

Nothing is downloaded: the corpus is a fixed list of files under ``sysconfig.get_paths()["stdlib"]``,
read as bytes, and its fingerprint (SHA-256 of the bytes used) is recorded with every run, so a run made
on another Python version (whose files differ) is told apart.
"""

from __future__ import annotations

import hashlib
import math
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

IGNORE = -100

# Present, with the same names, in CPython 3.10 .. 3.13; read in this order.
STDLIB_FILES = (
    "textwrap.py",
    "heapq.py",
    "bisect.py",
    "fnmatch.py",
    "shlex.py",
    "colorsys.py",
    "glob.py",
    "calendar.py",
    "queue.py",
    "sched.py",
    "string.py",
    "fractions.py",
    "statistics.py",
    "random.py",
    "functools.py",
    "difflib.py",
)
BLOCK = 1024  # bytes; block i goes to validation if i % 10 == 8, to test if i % 10 == 9, else to train


@dataclass(frozen=True)
class TokenData:
    """Training sequences and the held-out ones, as token ids (``input`` -> ``target`` next tokens).

    ``train_inputs``/``train_targets`` are ``(n, T)`` LongTensors for seq2seq (fixed set) or a single
    1-D token stream for the language model (``train_stream``, windows sampled per step). ``val`` and
    ``test`` are ``(inputs, targets)`` pairs of shape ``(n, T)`` with ``IGNORE`` where nothing is scored.
    """

    name: str
    vocab_size: int
    context: int
    fingerprint: str
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    train_stream: torch.Tensor | None = None
    train_inputs: torch.Tensor | None = None
    train_targets: torch.Tensor | None = None
    # seq2seq only: the test sources and their clean answers (for greedy decoding)
    test_sources: tuple[torch.Tensor, ...] = ()
    test_answers: tuple[torch.Tensor, ...] = ()
    sep: int = -1


def stdlib_corpus(max_bytes: int) -> tuple[bytes, str]:
    """The first ``max_bytes`` bytes of :data:`STDLIB_FILES` concatenated, and their SHA-256 (hex, 16)."""
    root = Path(sysconfig.get_paths()["stdlib"])
    parts = []
    for name in STDLIB_FILES:
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(
                f"The sequence task reads the standard library's source, but {path} is missing "
                "(a Python without its .py sources?)."
            )
        parts.append(path.read_bytes())
    data = b"\n".join(parts)[:max_bytes]
    return data, hashlib.sha256(data).hexdigest()[:16]


def _windows(stream: torch.Tensor, context: int, max_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = min((stream.numel() - 1) // context, max(1, max_tokens // context))
    x = stream[: n * context].view(n, context)
    y = stream[1 : n * context + 1].view(n, context)
    return x.clone(), y.clone()


def language_model_data(max_bytes: int, context: int, eval_tokens: int) -> TokenData:
    """Byte-level next-token data (vocabulary 256) with fixed, interleaved 1 KiB-block splits."""
    raw, fingerprint = stdlib_corpus(max_bytes)
    tokens = torch.frombuffer(bytearray(raw), dtype=torch.uint8).long()
    n_blocks = math.ceil(tokens.numel() / BLOCK)
    splits: dict[int, list[torch.Tensor]] = {0: [], 8: [], 9: []}
    for i in range(n_blocks):
        splits.get(i % 10, splits[0]).append(tokens[i * BLOCK : (i + 1) * BLOCK])
    train, val, test = (torch.cat(splits[k]) for k in (0, 8, 9))
    if min(val.numel(), test.numel()) <= context:
        raise ValueError(
            f"Expected `sequence.corpus_bytes` large enough for held-out windows, got {max_bytes}."
        )
    return TokenData(
        name="stdlib",
        vocab_size=256,
        context=context,
        fingerprint=fingerprint,
        val=_windows(val, context, eval_tokens),
        test=_windows(test, context, eval_tokens),
        train_stream=train,
    )


def _reverse_batch(
    n: int, symbols: int, min_len: int, max_len: int, g: torch.Generator
) -> list[torch.Tensor]:
    lengths = torch.randint(min_len, max_len + 1, (n,), generator=g)
    return [torch.randint(0, symbols, (int(L),), generator=g) for L in lengths]


def _encode(sources: list[torch.Tensor], answers: list[torch.Tensor], symbols: int, T: int):
    """``src SEP answer EOS`` -> inputs and next-token targets, scored only after SEP, padded."""
    sep, eos, pad = symbols, symbols + 1, symbols + 2
    x = torch.full((len(sources), T), pad, dtype=torch.long)
    y = torch.full((len(sources), T), IGNORE, dtype=torch.long)
    for i, (s, a) in enumerate(zip(sources, answers)):
        seq = torch.cat([s, torch.tensor([sep]), a, torch.tensor([eos])])
        L = seq.numel() - 1
        x[i, :L] = seq[:-1]
        y[i, s.numel() : L] = seq[s.numel() + 1 :]
    return x, y


def reverse_data(
    symbols: int, min_len: int, max_len: int, n_train: int, n_eval: int, target_noise: float, seed: int
) -> TokenData:
    """Reverse a sequence over ``symbols`` tokens: ``s1..sL SEP sL..s1 EOS``; vocabulary ``symbols + 3``.

    The clean sources come from a fixed generator (seed 0: the same sets for every run); the training
    answers then have each token replaced, with probability ``target_noise``, by a uniform symbol drawn
    from a generator seeded by the run's ``seed`` (validation and test answers stay clean).
    """
    g = torch.Generator().manual_seed(0)
    T = 2 * max_len + 1
    train_src = _reverse_batch(n_train, symbols, min_len, max_len, g)
    val_src = _reverse_batch(n_eval, symbols, min_len, max_len, g)
    test_src = _reverse_batch(n_eval, symbols, min_len, max_len, g)
    digest = hashlib.sha256()
    for s in train_src + val_src + test_src:
        digest.update(s.numpy().tobytes() + b"|")
    gn = torch.Generator().manual_seed(1_000_003 * seed + 17)
    noisy = []
    for s in train_src:
        a = s.flip(0)
        flip = torch.rand(a.shape, generator=gn) < target_noise
        noisy.append(torch.where(flip, torch.randint(0, symbols, a.shape, generator=gn), a))
    tx, ty = _encode(train_src, noisy, symbols, T)
    return TokenData(
        name="reverse",
        vocab_size=symbols + 3,
        context=T,
        fingerprint=digest.hexdigest()[:16],
        val=_encode(val_src, [s.flip(0) for s in val_src], symbols, T),
        test=_encode(test_src, [s.flip(0) for s in test_src], symbols, T),
        train_inputs=tx,
        train_targets=ty,
        test_sources=tuple(test_src),
        test_answers=tuple(torch.cat([s.flip(0), torch.tensor([symbols + 1])]) for s in test_src),
        sep=symbols,
    )


class CausalTransformer(nn.Module):
    """A pre-norm causal Transformer: token + learned position embeddings, ``n_layers`` blocks, a final
    LayerNorm, and an output projection ``head`` (``(V, d)``, no bias) kept separate so that training can
    call :func:`labelsmooth.linear_cross_entropy` on the hidden states and ``head.weight``.

    ``hidden(x)`` maps ``(B, T)`` token ids to ``(B, T, d_model)``; ``forward(x)`` to ``(B, T, V)`` logits.
    """

    def __init__(self, vocab_size: int, context: int, d_model: int, n_layers: int, n_heads: int) -> None:
        super().__init__()
        self.context = context
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(context, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, n_heads, 4 * d_model, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        h = self.tok(x) + self.pos(torch.arange(T, device=x.device))
        mask = nn.Transformer.generate_square_subsequent_mask(T, device=x.device)
        return self.norm(self.blocks(h, mask=mask, is_causal=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(x))


@torch.no_grad()
def greedy_exact_match(model: CausalTransformer, data: TokenData) -> float:
    """Fraction of test sources whose greedy continuation after SEP equals the answer and EOS exactly."""
    by_len: dict[int, list[int]] = {}
    for i, s in enumerate(data.test_sources):
        by_len.setdefault(s.numel(), []).append(i)
    hits = 0
    for L, idx in by_len.items():
        seq = torch.stack([torch.cat([data.test_sources[i], torch.tensor([data.sep])]) for i in idx])
        for _ in range(L + 1):
            nxt = model(seq)[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], 1)
        answers = torch.stack([data.test_answers[i] for i in idx])
        hits += int((seq[:, L + 1 :] == answers).all(1).sum())
    return hits / max(1, len(data.test_sources))
