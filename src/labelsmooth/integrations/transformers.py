"""Label smoothing for Hugging Face ``transformers`` causal language models, without the N x V logits.

Two entry points (``pip install "labelsmooth[transformers]"``):

- :func:`apply` patches one model instance so that, when it is called with ``labels``, its forward runs
  the base model, takes the final hidden states ``h`` (N x D) and computes the loss with
  :func:`labelsmooth.linear_cross_entropy` from ``h`` and ``lm_head.weight`` (and ``lm_head.bias``):
  the logits ``h W^T`` are formed one chunk of tokens at a time and never all at once. Without
  ``labels`` (generation, evaluation of logits) the model's own forward runs unchanged. :func:`revert`
  (or ``handle.remove()``) undoes the patch.
- :class:`LabelSmoothedLoss` is a ``compute_loss_func`` for ``transformers.Trainer`` with the semantics
  of ``TrainingArguments(label_smoothing_factor=a)``, computed by the streaming
  :func:`labelsmooth.fused_cross_entropy` on the logits the model returned (no float32 upcast copy, no
  log-softmax of the logits' size).

Loss (both entry points; Hugging Face's ``LabelSmoother`` semantics). With the labels shifted as the
model does (position ``t`` predicts ``labels[t + 1]``; the last position and ``-100`` labels are
ignored), ``z`` the logits of a kept position, ``V`` the vocabulary size and ``a`` the smoothing:

.. math::

    \\ell_t = (1 - a)\\,(\\mathrm{lse}(z) - z_{y_t}) + \\frac{a}{V} \\sum_{k=1}^{V} (\\mathrm{lse}(z) - z_k),
    \\qquad
    L = \\frac{1}{n} \\sum_{t\\ \\text{kept}} \\ell_t

where ``n`` is the number of kept positions in the batch, or ``num_items_in_batch`` when ``Trainer``
passes it (the kept positions of every micro-batch of one optimizer step), which makes ``L`` the token
mean over the whole accumulated batch. Gemma 2/3's ``final_logit_softcapping`` ``c`` replaces ``z`` by
``c tanh(z / c)`` (inside the streaming pass).

Supported classes: :data:`SUPPORTED_MODELS` (the Llama, Mistral, Qwen2, Qwen3, Phi-3, Gemma, Gemma 2,
Gemma 3 text and GPT-2 causal LMs). Any other class raises a ``TypeError`` naming it.
"""

from __future__ import annotations

import functools
import inspect
import types
from dataclasses import dataclass, field
from typing import Any

import torch

from .._validation import (
    BACKENDS,
    Backend,
    check_bool,
    check_choice,
    check_number,
    check_scalar_range,
    expected,
    is_number,
)
from ..kernels import fused_cross_entropy
from ..kernels import linear_cross_entropy as _linear_cross_entropy

try:
    import transformers
    from transformers import modeling_outputs
except ImportError as exc:  # tested by simulating a missing transformers
    raise ImportError(
        "labelsmooth.integrations.transformers needs Hugging Face transformers: "
        'pip install "labelsmooth[transformers]"'
    ) from exc

__all__ = ["SUPPORTED_MODELS", "LabelSmoothedLoss", "LabelSmoothingPatch", "apply", "revert"]

# The module-level name the patched forward calls (tests replace it to check the softcap guard).
linear_cross_entropy = _linear_cross_entropy


@dataclass(frozen=True)
class _Family:
    base: str  # attribute holding the base (decoder) model
    output: str  # the ModelOutput class in transformers.modeling_outputs the class's forward returns
    softcap: bool = False  # reads config.final_logit_softcapping (Gemma 2 and 3)


_DECODER = _Family("model", "CausalLMOutputWithPast")
_SOFTCAP = _Family("model", "CausalLMOutputWithPast", softcap=True)

#: Class names :func:`apply` patches, with how each forward computes its logits. Each of these forwards
#: computes ``logits = lm_head(base(...).last_hidden_state)`` (Gemma 2/3 then soft-cap them) and
#: ``loss = ForCausalLMLoss(logits, labels)`` with the labels shifted left by one.
SUPPORTED_MODELS: dict[str, _Family] = {
    "Gemma2ForCausalLM": _SOFTCAP,
    "Gemma3ForCausalLM": _SOFTCAP,
    "GemmaForCausalLM": _DECODER,
    "GPT2LMHeadModel": _Family("transformer", "CausalLMOutputWithCrossAttentions"),
    "LlamaForCausalLM": _DECODER,
    "MistralForCausalLM": _DECODER,
    "Phi3ForCausalLM": _DECODER,
    "Qwen2ForCausalLM": _DECODER,
    "Qwen3ForCausalLM": _DECODER,
}

_ATTR = "_labelsmooth_patch"
_MARK = "_labelsmooth_forward"


def _supported_class(model: Any) -> tuple[Any, _Family]:
    """The supported transformers class of ``model`` (itself or a base that does not override forward)."""
    cls: Any = type(model)
    klass: Any
    for klass in cls.__mro__:
        family = SUPPORTED_MODELS.get(klass.__name__)
        if family is not None and klass.__module__.startswith("transformers."):
            if cls.forward is not klass.forward:
                raise TypeError(
                    expected(
                        "model", f"to use {klass.__name__}.forward (its subclass overrides forward)", cls
                    )
                )
            return klass, family
    names = ", ".join(sorted(SUPPORTED_MODELS))
    raise TypeError(
        expected(
            "model",
            f"to be a supported causal LM ({names}); apply() patches the model itself, so unwrap PEFT/DDP "
            "wrappers first",
            type(model).__name__,
        )
    )


def _softcap(config: Any, family: _Family) -> float | None:
    """Gemma 2/3's ``final_logit_softcapping`` (None when absent or off), checked to be > 0."""
    if not family.softcap:
        return None
    cap = getattr(config, "final_logit_softcapping", None)
    if cap is None:
        return None
    check_scalar_range("config.final_logit_softcapping", cap, 0.0, float("inf"), lo_open=True)
    return float(cap)


@dataclass(eq=False)
class LabelSmoothingPatch:
    """The handle :func:`apply` returns: the options in force and :meth:`remove` to undo the patch.

    Also a context manager: ``with apply(model, label_smoothing=0.1): ...`` reverts on exit.
    """

    model: Any = field(repr=False)
    label_smoothing: float
    ignore_index: int
    return_logits: bool
    chunk_size: int | None
    backend: Backend
    # the forward the patch replaced: an instance attribute already set (e.g. by accelerate) or None
    _previous: Any = field(default=None, repr=False)
    _signature: inspect.Signature | None = field(default=None, repr=False)
    _family: _Family | None = field(default=None, repr=False)
    active: bool = True

    def remove(self) -> None:
        """Undo the patch: the model's forward is the one it had before :func:`apply`."""
        model = self.model
        if not self.active:
            return
        self.active = False
        if model.__dict__.get(_ATTR) is self:
            del model.__dict__[_ATTR]
        current = model.__dict__.get("forward")
        if isinstance(current, types.MethodType) and getattr(current.__func__, _MARK, False):
            if self._previous is None:
                del model.__dict__["forward"]
            else:
                model.forward = self._previous
        # else: something wrapped forward after apply(); the wrapper still reaches _patched_forward,
        # which finds no active patch on the model and runs the original forward.

    def __enter__(self) -> LabelSmoothingPatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def apply(
    model: Any,
    label_smoothing: float = 0.1,
    *,
    ignore_index: int = -100,
    return_logits: bool = False,
    chunk_size: int | None = None,
    backend: Backend = "auto",
) -> LabelSmoothingPatch:
    """Make ``model(..., labels=labels)`` compute a label-smoothed loss with the fused linear kernel.

    Patches this instance only (its ``forward`` attribute); the class and other instances are untouched.
    When the patched model is called with ``labels``, it runs the base model, shifts the labels as the
    model's own loss does (``labels[:, 1:]`` targets positions ``0 .. T-2``; the last position is
    ignored; a ``shift_labels`` keyword is used as given), and returns

    .. math::

        L = \\frac{1}{n} \\sum_{t\\ \\text{kept}} (1 - a)(\\mathrm{lse}(z_t) - z_{t,y_t})
            + \\frac{a}{V} \\sum_k (\\mathrm{lse}(z_t) - z_{t,k}), \\qquad z_t = W h_t + b,

    computed by :func:`labelsmooth.linear_cross_entropy` from the final hidden states ``h_t`` and the
    ``lm_head`` weight ``W`` (V x D; tied to the input embeddings when the config ties them, and the
    gradient reaches both) and bias ``b``. ``n`` is ``num_items_in_batch`` when given (``Trainer`` passes
    the number of kept labels of all micro-batches of one optimizer step), else the number of kept labels
    in this batch. ``a = label_smoothing``, ``V = config.vocab_size``; positions whose label is
    ``ignore_index`` count in neither sum nor ``n``. With Gemma 2/3's ``final_logit_softcapping = c``,
    ``z_t`` is ``c tanh((W h_t) / c)`` as in the model. The value, and the gradient of every parameter,
    equal the unpatched model's logits fed to ``transformers.trainer_pt_utils.LabelSmoother(a)`` (tested
    on every supported family). ``label_smoothing=0`` gives the model's own loss.

    Without ``labels`` the model's own forward runs (generation and logits are unchanged). With labels,
    ``outputs.logits`` is ``None`` unless ``return_logits=True`` (which projects them again, costing the
    N x V memory the patch saves); ``loss`` is float32 like the model's own.

    Parameters
    ----------
    model : a transformers causal LM instance, one of :data:`SUPPORTED_MODELS` (or a subclass that does
        not override ``forward``)
    label_smoothing : float in [0, 1], default 0.1
        ``a`` above, the value one would give ``TrainingArguments(label_smoothing_factor=...)``.
    ignore_index : int, default -100
    return_logits : bool, default False
    chunk_size, backend
        Passed to :func:`labelsmooth.linear_cross_entropy` (tokens per chunk; "auto" | "torch" | "triton").

    Returns
    -------
    LabelSmoothingPatch
        ``.remove()`` (or :func:`revert`) restores the model; usable as a context manager.

    Raises
    ------
    TypeError
        ``model`` is not a supported class (the message names the class), or a subclass overriding
        ``forward``; ``label_smoothing`` is not a float.
    ValueError
        The model is already patched; ``label_smoothing`` outside [0, 1]; a bad ``chunk_size`` or
        ``backend``; ``config.final_logit_softcapping <= 0``. At call time: ``labels`` whose shape is
        not ``input_ids``'s, ``logits_to_keep != 0`` together with ``labels``.

    Examples
    --------
    >>> import torch, transformers
    >>> from labelsmooth.integrations.transformers import apply
    >>> config = transformers.LlamaConfig(vocab_size=100, hidden_size=16, intermediate_size=32,
    ...     num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)
    >>> _ = torch.manual_seed(0)
    >>> model = transformers.LlamaForCausalLM(config)
    >>> ids = torch.randint(0, 100, (2, 8))
    >>> labels = ids.masked_fill(torch.arange(8) >= 6, -100)  # the last two positions are padding
    >>> logits = model(input_ids=ids).logits
    >>> reference = transformers.trainer_pt_utils.LabelSmoother(0.1)({"logits": logits}, labels,
    ...     shift_labels=True)
    >>> handle = apply(model, label_smoothing=0.1)
    >>> out = model(input_ids=ids, labels=labels)
    >>> print(out.logits, round(out.loss.item(), 4), round(reference.item(), 4))
    None 4.5914 4.5914
    >>> handle.remove()
    >>> model(input_ids=ids).logits.shape
    torch.Size([2, 8, 100])
    """
    klass, family = _supported_class(model)
    if model.__dict__.get(_ATTR) is not None:
        raise ValueError(
            expected("model", "not to be patched already (call revert(model) first)", klass.__name__)
        )
    label_smoothing = check_scalar_range("label_smoothing", label_smoothing, 0.0, 1.0)
    check_number("ignore_index", ignore_index, integer=True)
    check_bool("return_logits", return_logits)
    if chunk_size is not None:
        check_number("chunk_size", chunk_size, lo=1, integer=True, what="to be a positive int or None")
    check_choice("backend", backend, BACKENDS)
    _softcap(model.config, family)  # fail now on a bad or unsupported final_logit_softcapping
    patch = LabelSmoothingPatch(
        model=model,
        label_smoothing=label_smoothing,
        ignore_index=ignore_index,
        return_logits=return_logits,
        chunk_size=chunk_size,
        backend=backend,
        _previous=model.__dict__.get("forward"),
        _signature=inspect.signature(klass.forward),
        _family=family,
    )
    model.__dict__[_ATTR] = patch
    model.forward = types.MethodType(_forward_of(klass), model)
    return patch


def _forward_of(klass: Any) -> Any:
    """The installed forward: ``_patched_forward`` under the class forward's name and signature.

    ``Trainer`` reads the signature (which columns to keep, whether the model takes ``num_items_in_batch``
    through ``**kwargs``), so it must be the model's own.
    """

    @functools.wraps(klass.forward)
    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        return _patched_forward(self, *args, **kwargs)

    setattr(forward, _MARK, True)
    return forward


def revert(model: Any) -> None:
    """Undo :func:`apply` on ``model``; raises ``ValueError`` if it is not patched."""
    patch = getattr(model, "__dict__", {}).get(_ATTR)
    if patch is None:
        raise ValueError(expected("model", "to be patched by labelsmooth's apply()", type(model).__name__))
    patch.remove()


def _original_forward(self: Any, patch: LabelSmoothingPatch | None, args: tuple, kwargs: dict) -> Any:
    if patch is not None and patch._previous is not None:
        return patch._previous(*args, **kwargs)
    return type(self).forward(self, *args, **kwargs)


def _patched_forward(self: Any, *args: Any, **kwargs: Any) -> Any:
    """What the installed forward runs; its state lives on the model, so copies of the model stay patched."""
    patch = self.__dict__.get(_ATTR)
    if patch is None or not patch.active:
        return _original_forward(self, None, args, kwargs)
    bound = patch._signature.bind(self, *args, **kwargs)
    arguments = dict(bound.arguments)
    arguments.pop("self")
    for name, param in patch._signature.parameters.items():
        if param.kind is inspect.Parameter.VAR_KEYWORD and name in arguments:
            arguments.update(arguments.pop(name))
    labels = arguments.pop("labels", None)
    if labels is None:
        return _original_forward(self, patch, args, kwargs)
    return _loss_forward(self, patch, labels, arguments)


def _check_labels(labels: Any, arguments: dict) -> None:
    if not isinstance(labels, torch.Tensor):
        raise TypeError(expected("labels", "to be a torch.Tensor", type(labels).__name__))
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(expected("labels", "to be an integer tensor", labels.dtype))
    ids, embeds = arguments.get("input_ids"), arguments.get("inputs_embeds")
    shape = tuple(ids.shape) if ids is not None else tuple(embeds.shape[:-1]) if embeds is not None else None
    if shape is not None and tuple(labels.shape) != shape:
        raise ValueError(expected("labels", f"of the input's shape {shape}", labels))


def _compute_dtype(device_type: str) -> torch.dtype | None:
    """The autocast dtype in force on ``device_type`` (what ``lm_head`` would compute in), else None."""
    try:
        on = torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4
        on = torch.is_autocast_enabled() if device_type == "cuda" else torch.is_autocast_cpu_enabled()
    if not on:
        return None
    getter = getattr(torch, "get_autocast_dtype", None)
    if getter is not None:
        return getter(device_type)
    return torch.get_autocast_gpu_dtype() if device_type == "cuda" else torch.get_autocast_cpu_dtype()


def _divide(loss: torch.Tensor, num_items: torch.Tensor | int | None) -> torch.Tensor:
    """``loss / num_items`` (when given) as a float32 scalar, dividing in at least float32.

    The division happens in the loss's dtype promoted to float32 (float64 models keep a float64 ``1/n`` in
    their gradient); half-precision losses are upcast first, but their backward still rounds ``1/n`` to
    the half dtype (relative error <= 2^-9 in bf16) until the kernel takes ``num_items_in_batch`` itself.
    """
    loss = loss.to(torch.promote_types(loss.dtype, torch.float32))
    if num_items is not None:
        if torch.is_tensor(num_items):
            num_items = num_items.to(loss.device)
        loss = loss / num_items
    return loss.float()


def _loss_forward(self: Any, patch: LabelSmoothingPatch, labels: torch.Tensor, arguments: dict) -> Any:
    family = patch._family
    assert family is not None  # set by apply()
    _check_labels(labels, arguments)
    keep = arguments.pop("logits_to_keep", 0)
    if not (is_number(keep, integer=True) and keep == 0):
        raise ValueError(
            expected(
                "logits_to_keep", "to be 0 when `labels` are given (the loss needs every position)", keep
            )
        )
    num_items = arguments.pop("num_items_in_batch", None)
    shift_labels = arguments.pop("shift_labels", None)
    ignore_index = arguments.pop("ignore_index", patch.ignore_index)
    return_dict = arguments.pop("return_dict", None)
    if return_dict is None:
        return_dict = getattr(self.config, "return_dict", True)
    cap = _softcap(self.config, family)

    out = getattr(self, family.base)(**arguments)
    hidden = out[0]  # last_hidden_state, (B, T, D)
    if shift_labels is None:
        shift_labels = torch.nn.functional.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    elif tuple(shift_labels.shape) != tuple(hidden.shape[:-1]):
        raise ValueError(expected("shift_labels", f"of shape {tuple(hidden.shape[:-1])}", shift_labels))
    shift_labels = shift_labels.to(hidden.device)

    head = self.lm_head
    W, b = head.weight, head.bias
    dtype = _compute_dtype(hidden.device.type) or hidden.dtype
    h = hidden.to(dtype)
    options: dict[str, Any] = {"chunk_size": patch.chunk_size, "backend": patch.backend}
    if cap is not None:
        options["softcap"] = cap
    with torch.autocast(hidden.device.type, enabled=False):
        loss = linear_cross_entropy(
            h,
            W.to(dtype),
            shift_labels,
            None if b is None else b.to(dtype),
            ignore_index=ignore_index,
            reduction="mean" if num_items is None else "sum",
            label_smoothing=patch.label_smoothing,
            **options,
        )
    loss = _divide(loss, num_items)

    logits = None
    if patch.return_logits:
        logits = head(hidden)
        if cap is not None:
            logits = torch.tanh(logits / cap) * cap
    if not isinstance(out, transformers.utils.ModelOutput):
        rest = tuple(out[1:])
        return ((loss,) if logits is None else (loss, logits)) + rest
    fields = {k: v for k, v in out.items() if k != "last_hidden_state"}
    result = getattr(modeling_outputs, family.output)(loss=loss, logits=logits, **fields)
    return result if return_dict else result.to_tuple()


class LabelSmoothedLoss:
    """``compute_loss_func`` for ``transformers.Trainer``: the drop-in for ``label_smoothing_factor``.

    ``Trainer(..., compute_loss_func=LabelSmoothedLoss(0.1))`` (with ``label_smoothing_factor=0``)
    trains with the loss of ``label_smoothing_factor=0.1``: Hugging Face's ``LabelSmoother`` semantics,

    .. math::

        L = \\frac{1}{n} \\sum_{t\\ \\text{kept}} (1 - a)(\\mathrm{lse}(z_t) - z_{t,y_t})
            + \\frac{a}{V} \\sum_k (\\mathrm{lse}(z_t) - z_{t,k}),

    ``z_t`` the logits the model returned (``outputs.logits``, ``(B, T, V)``), ``y_t = labels[t + 1]``
    (``shift_labels=True``, the causal-LM shift; ``False`` for a model whose labels are aligned with its
    logits), positions with ``ignore_index`` left out, ``n = num_items_in_batch`` when ``Trainer`` passes
    it (it does whenever ``compute_loss_func`` is set: the kept labels of every micro-batch of the
    optimizer step, so ``L`` is the token mean of the accumulated batch) and otherwise the kept labels of
    this batch. Computed by :func:`labelsmooth.fused_cross_entropy`, which streams over the rows in float32
    and writes the gradient in its forward: no float32 copy of half logits and no log-softmax of their
    size. The logits themselves still exist; to avoid them, patch the model with :func:`apply` instead
    (then pass neither this nor ``label_smoothing_factor``).

    Parameters
    ----------
    label_smoothing : float in [0, 1], default 0.1
    shift_labels : bool, default True
    ignore_index : int, default -100

    Notes
    -----
    Call ``loss_fn(outputs, labels, num_items_in_batch=None)``: ``outputs`` a ``ModelOutput``/dict with
    ``"logits"`` or a tuple whose first item is the logits; ``labels`` an integer tensor of the logits'
    shape without the last dimension. Returns a float32 scalar.

    Raises
    ------
    TypeError, ValueError
        Bad options; at call time ``labels`` missing (``None``), not integer, or of the wrong shape, and
        outputs without logits.

    Examples
    --------
    >>> import torch
    >>> from transformers.trainer_pt_utils import LabelSmoother
    >>> from labelsmooth.integrations.transformers import LabelSmoothedLoss
    >>> g = torch.Generator().manual_seed(0)
    >>> logits = torch.randn(2, 5, 11, generator=g)
    >>> labels = torch.tensor([[1, 2, 3, -100, -100], [4, 5, 6, 7, 8]])
    >>> ours = LabelSmoothedLoss(0.1)({"logits": logits}, labels)
    >>> theirs = LabelSmoother(0.1)({"logits": logits}, labels, shift_labels=True)
    >>> print(f"{ours.item():.4f} {theirs.item():.4f}")
    3.2235 3.2235
    """

    def __init__(self, label_smoothing: float = 0.1, *, shift_labels: bool = True, ignore_index: int = -100):
        self.label_smoothing = check_scalar_range("label_smoothing", label_smoothing, 0.0, 1.0)
        check_bool("shift_labels", shift_labels)
        check_number("ignore_index", ignore_index, integer=True)
        self.shift_labels = shift_labels
        self.ignore_index = ignore_index

    def __repr__(self) -> str:
        return (
            f"LabelSmoothedLoss(label_smoothing={self.label_smoothing}, shift_labels={self.shift_labels}, "
            f"ignore_index={self.ignore_index})"
        )

    def __call__(
        self, outputs: Any, labels: torch.Tensor | None, num_items_in_batch: torch.Tensor | int | None = None
    ) -> torch.Tensor:
        if isinstance(outputs, dict):
            logits = outputs.get("logits")
        elif isinstance(outputs, (tuple, list)):
            logits = outputs[0] if outputs else None
        else:
            logits = getattr(outputs, "logits", outputs)
        if not isinstance(logits, torch.Tensor):
            raise ValueError(
                expected(
                    "outputs",
                    "to carry the logits (a model patched by apply() computes its own loss)",
                    logits,
                )
            )
        if labels is None:
            raise ValueError(expected("labels", "to be given (Trainer passes the batch's `labels`)", labels))
        if not isinstance(labels, torch.Tensor):
            raise TypeError(expected("labels", "to be a torch.Tensor", type(labels).__name__))
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise TypeError(expected("labels", "to be an integer tensor", labels.dtype))
        if tuple(labels.shape) != tuple(logits.shape[:-1]):
            raise ValueError(
                expected("labels", f"of the logits' shape without V, {tuple(logits.shape[:-1])}", labels)
            )
        target = labels.to(logits.device)
        if self.shift_labels:
            target = torch.nn.functional.pad(target, (0, 1), value=self.ignore_index)[..., 1:]
        V = logits.shape[-1]
        loss = fused_cross_entropy(
            logits.reshape(-1, V),
            target.reshape(-1),
            ignore_index=self.ignore_index,
            reduction="mean" if num_items_in_batch is None else "sum",
            label_smoothing=self.label_smoothing,
        )
        return _divide(loss, num_items_in_batch)
