"""labelsmooth.integrations.transformers: the patched loss equals the model's own path, in value and gradient.

Every model is tiny and randomly initialised from a config (2 layers, hidden 64, vocabulary 1000): nothing
downloads. The reference is the unpatched model's logits fed to Hugging Face's ``LabelSmoother`` (what
``TrainingArguments(label_smoothing_factor=a)`` computes), or its own ``loss`` for ``a = 0``.
"""

import copy
import inspect

import pytest
import torch

transformers = pytest.importorskip("transformers")
from transformers.trainer_pt_utils import LabelSmoother  # noqa: E402

from labelsmooth.integrations.transformers import LabelSmoothedLoss, apply, revert  # noqa: E402
from study_fixtures import run_python  # noqa: E402

V, B, T = 1000, 2, 12
_DEC = dict(
    vocab_size=V, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=64,
)  # fmt: skip
# (config class, model class, config): names, looked up when a test builds one, so that collecting this module
# does not import every family's modelling code (seconds); its tests share one xdist worker for the same reason
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", _DEC),
    "mistral": ("MistralConfig", "MistralForCausalLM", _DEC),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", _DEC),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", {**_DEC, "head_dim": 16}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {**_DEC, "pad_token_id": 0}),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", {**_DEC, "head_dim": 16}),
    "gemma2": ("Gemma2Config", "Gemma2ForCausalLM", {**_DEC, "head_dim": 16, "final_logit_softcapping": None}),
    "gemma3": ("Gemma3TextConfig", "Gemma3ForCausalLM", {**_DEC, "head_dim": 16, "final_logit_softcapping": None}),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(vocab_size=V, n_embd=64, n_layer=2, n_head=4, n_positions=64)),
}  # fmt: skip
pytestmark = pytest.mark.xdist_group("transformers")


def _model(family, dtype=torch.float64, **overrides):
    config_name, model_name, kwargs = FAMILIES[family]
    config_cls, model_cls = getattr(transformers, config_name), getattr(transformers, model_name)
    torch.manual_seed(0)
    model = model_cls(config_cls(**{**kwargs, **overrides})).to(dtype)
    return model.eval()  # no dropout (GPT-2 has some); gradients still flow


def _batch(seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, (B, T), generator=g)
    labels = ids.clone()
    labels[0, -4:] = -100  # right padding
    labels[1, :2] = -100  # an ignored prompt
    labels[1, 6] = -100
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, -4:] = 0
    return ids, labels, mask


def _loss_and_grads(model, fn):
    model.zero_grad(set_to_none=True)
    loss = fn()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


def _assert_same(a, b, rtol, atol):
    (la, ga), (lb, gb) = a, b
    torch.testing.assert_close(la.double(), lb.double(), rtol=rtol, atol=atol)
    assert ga.keys() == gb.keys() and len(ga) > 4
    for name in ga:
        torch.testing.assert_close(
            ga[name], gb[name], rtol=rtol, atol=atol, msg=lambda m, n=name: f"{n}: {m}"
        )


def _reference(model, ids, labels, mask, a, num_items=None, *, hf=True):
    """HF's LabelSmoother on the model's logits, or (hf=False) PyTorch's float64 cross_entropy.

    The two are the same loss; LabelSmoother sums the smoothing term in float32 whatever the logits'
    dtype, so only PyTorch's is a float64 reference (the tight tolerances below use it).
    """
    logits = model(input_ids=ids, attention_mask=mask).logits
    if hf:
        return LabelSmoother(a)({"logits": logits}, labels, shift_labels=True, num_items_in_batch=num_items)
    y = labels[:, 1:].reshape(-1)
    z = logits[:, :-1].reshape(-1, logits.shape[-1])
    if num_items is None:
        return torch.nn.functional.cross_entropy(z, y, label_smoothing=a)
    return torch.nn.functional.cross_entropy(z, y, label_smoothing=a, reduction="sum") / num_items


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_patched_loss_and_every_gradient_equal_label_smoother(family):
    model = _model(family)
    ids, labels, mask = _batch()
    ref = _loss_and_grads(model, lambda: _reference(model, ids, labels, mask, 0.1, hf=False))
    hf = _loss_and_grads(model, lambda: _reference(model, ids, labels, mask, 0.1))
    with apply(model, label_smoothing=0.1, chunk_size=7):  # several chunks, one ragged
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        assert out.logits is None
        assert out.loss.dtype == torch.float32  # like the model's own ForCausalLMLoss
        ours = _loss_and_grads(model, lambda: model(input_ids=ids, attention_mask=mask, labels=labels).loss)
    # the loss value is float32 (as HF's); the gradients are float64 and match to float64 rounding
    _assert_same(ours, ref, rtol=1e-6, atol=1e-12)
    _assert_same(ours, hf, rtol=1e-5, atol=1e-7)  # LabelSmoother's float32 smoothing sum
    assert "forward" not in model.__dict__


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma"])
def test_zero_smoothing_equals_the_models_own_loss_with_num_items_in_batch(family):
    """a = 0 is ForCausalLMLoss itself, with Trainer's num_items_in_batch (sum / count).

    ForCausalLMLoss upcasts the logits to float32 whatever the model's dtype: float32 tolerances.
    """
    model = _model(family)
    ids, labels, mask = _batch()
    n = torch.tensor(25)
    for kwargs in ({}, {"num_items_in_batch": n}):
        ref = _loss_and_grads(
            model, lambda kw=kwargs: model(input_ids=ids, attention_mask=mask, labels=labels, **kw).loss
        )
        with apply(model, label_smoothing=0.0):
            ours = _loss_and_grads(
                model, lambda kw=kwargs: model(input_ids=ids, attention_mask=mask, labels=labels, **kw).loss
            )
        _assert_same(ours, ref, rtol=1e-5, atol=1e-7)


def test_num_items_in_batch_divides_the_smoothed_sum():
    model = _model("qwen2")
    ids, labels, mask = _batch()
    n = torch.tensor(40)
    ref = _loss_and_grads(model, lambda: _reference(model, ids, labels, mask, 0.2, num_items=n, hf=False))
    hf = _loss_and_grads(model, lambda: _reference(model, ids, labels, mask, 0.2, num_items=n))
    with apply(model, label_smoothing=0.2):
        ours = _loss_and_grads(
            model, lambda: model(input_ids=ids, attention_mask=mask, labels=labels, num_items_in_batch=n).loss
        )
    _assert_same(ours, ref, rtol=1e-6, atol=1e-12)
    _assert_same(ours, hf, rtol=1e-5, atol=1e-7)
    active = int(labels[:, 1:].ne(-100).sum())
    mean = _reference(model, ids, labels, mask, 0.2)
    torch.testing.assert_close(ours[0].double(), mean.detach().double() * active / 40, rtol=1e-6, atol=1e-9)


def test_float32_model_within_float32_tolerance_and_shift_labels_keyword():
    model = _model("llama", torch.float32)
    ids, labels, mask = _batch()
    ref = _loss_and_grads(model, lambda: _reference(model, ids, labels, mask, 0.1))
    shifted = torch.nn.functional.pad(labels, (0, 1), value=-100)[:, 1:]
    with apply(model, label_smoothing=0.1):
        ours = _loss_and_grads(model, lambda: model(input_ids=ids, attention_mask=mask, labels=labels).loss)
        # a collator's precomputed shift_labels is used as given (labels then only switch the loss on)
        given = model(input_ids=ids, attention_mask=mask, labels=labels, shift_labels=shifted).loss
    _assert_same(ours, ref, rtol=2e-5, atol=1e-6)
    torch.testing.assert_close(given, ours[0])


def test_return_logits_tuple_output_and_positional_arguments():
    model = _model("gpt2")
    ids, labels, mask = _batch()
    own = model(ids, attention_mask=mask)
    with apply(model, label_smoothing=0.1, return_logits=True):
        out = model(ids, attention_mask=mask, labels=labels)  # GPT-2's second positional is the cache
        torch.testing.assert_close(out.logits, own.logits)
        ref = LabelSmoother(0.1)({"logits": own.logits}, labels, shift_labels=True)
        torch.testing.assert_close(out.loss.double(), ref.double(), rtol=1e-6, atol=1e-9)
        tup = model(ids, attention_mask=mask, labels=labels, return_dict=False)
        assert isinstance(tup, tuple)
        torch.testing.assert_close(tup[0], out.loss)
        torch.testing.assert_close(tup[1], out.logits)
        # without labels the model's own forward runs: logits, no loss
        plain = model(ids, attention_mask=mask)
        assert plain.loss is None
        torch.testing.assert_close(plain.logits, own.logits)


def test_revert_restores_the_model_and_copies_stay_patched():
    model = _model("llama")
    ids, labels, _ = _batch()
    own = model(input_ids=ids, labels=labels).loss
    signature = inspect.signature(model.forward)
    handle = apply(model, label_smoothing=0.3)
    assert handle.active and "forward" in model.__dict__
    assert inspect.signature(model.forward) == signature  # Trainer reads it (columns, **kwargs)
    assert handle.label_smoothing == 0.3 and "label_smoothing=0.3" in repr(handle)
    clone = copy.deepcopy(model)
    patched = model(input_ids=ids, labels=labels).loss
    assert not torch.allclose(patched.double(), own.double())
    torch.testing.assert_close(clone(input_ids=ids, labels=labels).loss, patched)
    with pytest.raises(ValueError, match="patched already"):
        apply(model)
    revert(model)
    assert not handle.active and "forward" not in model.__dict__ and not hasattr(model, "_labelsmooth_patch")
    torch.testing.assert_close(model(input_ids=ids, labels=labels).loss, own)
    handle.remove()  # idempotent
    with pytest.raises(ValueError, match="to be patched"):
        revert(model)
    # the copy keeps its own patch
    torch.testing.assert_close(clone(input_ids=ids, labels=labels).loss, patched)
    revert(clone)


def test_revert_when_forward_was_wrapped_after_apply():
    """accelerate-style wrappers (model.forward = wrap(model.forward)) keep working after revert."""
    model = _model("llama")
    ids, labels, _ = _batch()
    own = model(input_ids=ids, labels=labels).loss
    apply(model, label_smoothing=0.3)
    inner = model.forward
    model.forward = lambda *a, **k: inner(*a, **k)
    revert(model)
    assert "forward" in model.__dict__  # the outer wrapper stays
    torch.testing.assert_close(model(input_ids=ids, labels=labels).loss, own)


def test_apply_keeps_a_forward_set_before_it():
    model = _model("llama")
    ids, _, _ = _batch()
    calls = []
    original = model.forward

    def hooked(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    model.forward = hooked
    with apply(model):
        model(input_ids=ids)  # no labels: the previous forward runs
        assert calls == [1]
    assert model.forward is hooked


@pytest.mark.parametrize("cap", [0.0, -1.0])
def test_gemma2_softcap_must_be_positive(cap):
    with pytest.raises(ValueError, match=r"final_logit_softcapping` in \(0, inf\]"):
        apply(_model("gemma2", final_logit_softcapping=cap))


@pytest.mark.parametrize("family", ["gemma2", "gemma3"])
def test_gemma_softcap_parity(family):
    model = _model(family, final_logit_softcapping=1.5)  # small enough that tanh bends the logits
    ids, labels, mask = _batch()
    ref = _loss_and_grads(model, lambda: _reference(model, ids, labels, mask, 0.1, hf=False))
    with apply(model, label_smoothing=0.1, return_logits=True):
        out = model(input_ids=ids, attention_mask=mask, labels=labels)
        assert float(out.logits.abs().max()) <= 1.5
        ours = _loss_and_grads(model, lambda: model(input_ids=ids, attention_mask=mask, labels=labels).loss)
    _assert_same(ours, ref, rtol=1e-6, atol=1e-12)


def test_bad_input_raises_clear_errors():
    model = _model("llama")
    ids, labels, _ = _batch()
    cls_config = transformers.LlamaConfig(**_DEC)
    with pytest.raises(TypeError, match="LlamaForSequenceClassification"):
        apply(transformers.LlamaForSequenceClassification(cls_config))
    with pytest.raises(TypeError, match="Linear"):
        apply(torch.nn.Linear(2, 2))

    class Custom(transformers.LlamaForCausalLM):
        def forward(self, *args, **kwargs):
            return super().forward(*args, **kwargs)

    with pytest.raises(TypeError, match="overrides forward"):
        apply(Custom(cls_config))
    with pytest.raises(ValueError, match=r"`label_smoothing` in \[0, 1\], got 1.5"):
        apply(model, label_smoothing=1.5)
    with pytest.raises(TypeError, match="label_smoothing"):
        apply(model, label_smoothing="0.1")
    with pytest.raises(ValueError, match="chunk_size"):
        apply(model, chunk_size=0)
    with pytest.raises(ValueError, match="backend"):
        apply(model, backend="cuda")
    with pytest.raises(TypeError, match="ignore_index"):
        apply(model, ignore_index=1.0)
    with pytest.raises(TypeError, match="return_logits"):
        apply(model, return_logits=1)
    assert "forward" not in model.__dict__  # nothing half-applied
    with apply(model):
        with pytest.raises(ValueError, match=r"`labels` of the input's shape \(2, 12\)"):
            model(input_ids=ids, labels=labels[:, :-1])
        with pytest.raises(ValueError, match=r"`labels` of the input's shape"):
            model(inputs_embeds=torch.zeros(2, 5, 64, dtype=torch.float64), labels=labels)
        with pytest.raises(TypeError, match="integer tensor"):
            model(input_ids=ids, labels=labels.double())
        with pytest.raises(ValueError, match="logits_to_keep"):
            model(input_ids=ids, labels=labels, logits_to_keep=1)
        with pytest.raises(ValueError, match="shift_labels"):
            model(input_ids=ids, labels=labels, shift_labels=labels[:, 1:])
        bad = labels.clone()
        bad[0, 3] = V  # out of the vocabulary: the kernel's own check
        with pytest.raises(ValueError):
            model(input_ids=ids, labels=bad)


def test_compute_loss_func_equals_label_smoother():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 9, 50, dtype=torch.float64, generator=g, requires_grad=True)
    labels = torch.randint(0, 50, (3, 9), generator=g)
    labels[0, 5:] = -100
    labels[2, :3] = -100
    for num_items in (None, torch.tensor(31)):
        for shift in (True, False):
            ours = LabelSmoothedLoss(0.15, shift_labels=shift)({"logits": logits}, labels, num_items)
            (g_ours,) = torch.autograd.grad(ours, logits)
            hf = LabelSmoother(0.15)(
                {"logits": logits}, labels, shift_labels=shift, num_items_in_batch=num_items
            )
            (g_hf,) = torch.autograd.grad(hf, logits)
            z, y = (logits[:, :-1], labels[:, 1:]) if shift else (logits, labels)
            ref = torch.nn.functional.cross_entropy(z.reshape(-1, 50), y.reshape(-1), label_smoothing=0.15,
                                                    reduction="mean" if num_items is None else "sum")  # fmt: skip
            ref = ref if num_items is None else ref / num_items
            (g_ref,) = torch.autograd.grad(ref, logits)
            torch.testing.assert_close(ours.double(), ref, rtol=1e-6, atol=1e-9)
            torch.testing.assert_close(g_ours, g_ref, rtol=1e-9, atol=1e-15)
            # LabelSmoother sums the smoothing term in float32 whatever the logits' dtype
            torch.testing.assert_close(ours.double(), hf, rtol=1e-6, atol=1e-9)
            torch.testing.assert_close(g_ours, g_hf, rtol=1e-4, atol=1e-10)
    # bf16 logits: float32 loss, close to the float64 value
    ours16 = LabelSmoothedLoss(0.15)((logits.detach().bfloat16(),), labels)
    assert ours16.dtype == torch.float32
    ref = LabelSmoother(0.15)({"logits": logits.detach()}, labels, shift_labels=True)
    torch.testing.assert_close(ours16.double(), ref, rtol=1e-2, atol=0)


def test_compute_loss_func_bad_input():
    logits = torch.randn(2, 4, 7)
    labels = torch.zeros(2, 4, dtype=torch.long)
    fn = LabelSmoothedLoss(0.1)
    assert "label_smoothing=0.1" in repr(fn)
    with pytest.raises(ValueError, match="`labels` to be given"):
        fn({"logits": logits}, None)
    with pytest.raises(ValueError, match=r"`labels` of the logits' shape without V, \(2, 4\)"):
        fn({"logits": logits}, labels[:, :3])
    with pytest.raises(TypeError, match="integer tensor"):
        fn({"logits": logits}, labels.float())
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        fn({"logits": logits}, [[0, 1]])
    with pytest.raises(ValueError, match="logits"):
        fn({"loss": torch.tensor(1.0)}, labels)
    with pytest.raises(ValueError, match="label_smoothing"):
        LabelSmoothedLoss(-0.1)
    with pytest.raises(TypeError, match="shift_labels"):
        LabelSmoothedLoss(0.1, shift_labels="yes")
    with pytest.raises(TypeError, match="ignore_index"):
        LabelSmoothedLoss(0.1, ignore_index=None)


def test_import_labelsmooth_does_not_import_transformers_and_the_missing_extra_is_named(tmp_path):
    code = (
        "import sys; assert not any(m.split('.')[0] in ('transformers', 'labelsmooth') for m in sys.modules)\n"
        "import labelsmooth, labelsmooth.integrations\n"
        "print('transformers' in sys.modules)\n"
        "sys.modules['transformers'] = None\n"
        "try:\n"
        "    import labelsmooth.integrations.transformers\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    exitcode, stdout, stderr = run_python(code, tmp_path)  # a new process: nothing of labelsmooth imported
    assert exitcode == 0, stderr
    lines = stdout.strip().splitlines()
    assert lines[0] == "False"
    assert 'pip install "labelsmooth[transformers]"' in lines[1]


# --- Trainer with gradient accumulation -----------------------------------------------------------------

_TRAIN = dict(V=64, T=8, N=8, micro=2, accum=2, lr=0.5)


def _examples():
    g = torch.Generator().manual_seed(5)
    n, t = _TRAIN["N"], _TRAIN["T"]
    ids = torch.randint(0, _TRAIN["V"], (n, t), generator=g)
    labels = ids.clone()
    for i in range(n):  # very unequal numbers of kept labels per micro-batch
        labels[i, t - (i * 3) % 7 :] = -100
    return [{"input_ids": ids[i], "labels": labels[i]} for i in range(n)]


class _Sequential(torch.utils.data.IterableDataset):
    """Examples in a fixed order (an iterable dataset: Trainer does not shuffle it)."""

    def __init__(self, rows):
        self.rows = rows

    def __iter__(self):
        return iter(self.rows)


def _tiny_llama():
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=_TRAIN["V"], hidden_size=32, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config)


def _train(tmp_path, model, **trainer_kwargs):
    factor = trainer_kwargs.pop("label_smoothing_factor", 0.0)
    steps = _TRAIN["N"] // (_TRAIN["micro"] * _TRAIN["accum"])
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=_TRAIN["micro"],
        gradient_accumulation_steps=_TRAIN["accum"], max_steps=steps, learning_rate=_TRAIN["lr"],
        optim="sgd", lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0,
        label_smoothing_factor=factor, report_to="none", save_strategy="no", use_cpu=True,
        dataloader_num_workers=0, disable_tqdm=True, seed=0,
    )  # fmt: skip
    transformers.Trainer(
        model=model, args=args, train_dataset=_Sequential(_examples()), **trainer_kwargs
    ).train()
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _manual(a, mode):
    """Plain SGD steps whose loss is, per optimizer step: "token_mean" over the accumulated batch;
    "mean_of_means", the mean of the micro-batches' token means (Trainer before 4.46); "sum_of_means",
    their sum (label_smoothing_factor from 4.46 until LabelSmoother took num_items_in_batch, PR #47261)."""
    model = _tiny_llama()
    rows, m, k = _examples(), _TRAIN["micro"], _TRAIN["accum"]
    opt = torch.optim.SGD(model.parameters(), lr=_TRAIN["lr"])
    for s in range(0, len(rows), m * k):
        micro = [rows[s + j * m : s + (j + 1) * m] for j in range(k)]
        count = sum(int(torch.stack([r["labels"] for r in mb])[:, 1:].ne(-100).sum()) for mb in micro)
        opt.zero_grad()
        for mb in micro:
            ids = torch.stack([r["input_ids"] for r in mb])
            labels = torch.stack([r["labels"] for r in mb])
            logits = model(input_ids=ids).logits[:, :-1].reshape(-1, _TRAIN["V"])
            y = labels[:, 1:].reshape(-1)
            if mode == "token_mean":
                loss = (
                    torch.nn.functional.cross_entropy(logits, y, label_smoothing=a, reduction="sum") / count
                )
            else:
                loss = torch.nn.functional.cross_entropy(logits, y, label_smoothing=a)
                loss = loss / k if mode == "mean_of_means" else loss
            loss.backward()
        opt.step()
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _close(p, q, atol=2e-5):
    return all(torch.allclose(p[n], q[n], rtol=1e-4, atol=atol) for n in p)


def test_trainer_with_gradient_accumulation(tmp_path):
    """Patched model, compute_loss_func and label_smoothing_factor all train to the same parameters.

    What they equal: the token mean over each optimizer step's accumulated batch (Trainer passes
    num_items_in_batch to the model's forward and to compute_loss_func and then does not divide by the
    accumulation steps). label_smoothing_factor equals it too where LabelSmoother takes num_items_in_batch;
    where it does not, Trainer's step is the sum of the micro-batch means (transformers issue #46731).
    """
    a = 0.1
    token_mean = _manual(a, "token_mean")
    assert not _close(token_mean, _manual(a, "mean_of_means"), atol=1e-4)  # the semantics differ on this data

    model = _tiny_llama()
    apply(model, label_smoothing=a)
    patched = _train(tmp_path / "patched", model)
    assert _close(patched, token_mean)
    revert(model)

    drop_in = _train(tmp_path / "func", _tiny_llama(), compute_loss_func=LabelSmoothedLoss(a))
    assert _close(drop_in, token_mean)

    hf = _train(tmp_path / "hf", _tiny_llama(), label_smoothing_factor=a)
    if "num_items_in_batch" in inspect.signature(LabelSmoother.__call__).parameters:
        assert _close(hf, token_mean)
    else:  # pragma: no cover - transformers 4.46 to 5.1x
        assert _close(hf, _manual(a, "sum_of_means"))


def test_autocast_bf16_runs_in_the_autocast_dtype():
    """Under torch.autocast the loss is computed in the autocast dtype, as lm_head would be."""
    model = _model("llama", torch.float32)
    ids, labels, mask = _batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = _loss_and_grads(model, lambda: _reference(model, ids, labels, mask, 0.1))
    with apply(model, label_smoothing=0.1), torch.autocast("cpu", dtype=torch.bfloat16):
        ours = _loss_and_grads(model, lambda: model(input_ids=ids, attention_mask=mask, labels=labels).loss)
    assert ours[0].dtype == torch.float32
    torch.testing.assert_close(ours[0], ref[0].float(), rtol=2e-2, atol=0)  # bf16 loss value
    for name, grad in ref[1].items():
        torch.testing.assert_close(ours[1][name], grad, rtol=0, atol=2e-2 * float(grad.abs().max()) + 1e-6)
