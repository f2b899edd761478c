"""Benchmark: one training step of a small Llama, Hugging Face's label smoothing vs labelsmooth's patch.

Model: ``LlamaForCausalLM`` from a config (random weights, nothing downloads): vocabulary 32000, hidden
256, intermediate 688, 2 layers, 4 heads; batch 4 x 512 tokens, 1/8 of the labels ``-100``. One step is
forward + backward (the optimizer's update is the same for every method and left out). Methods:

- ``hf``: the unpatched model's logits fed to ``transformers.trainer_pt_utils.LabelSmoother(0.1)`` with
  ``shift_labels=True`` -- exactly what ``Trainer(args=TrainingArguments(label_smoothing_factor=0.1))``
  computes (the denominator of every ratio);
- ``loss_func``: the unpatched model's logits fed to ``LabelSmoothedLoss(0.1)`` (the ``compute_loss_func``
  drop-in: the logits exist, the log-softmax copy does not);
- ``patched``: ``apply(model, label_smoothing=0.1)``, then ``model(input_ids, labels=labels).loss``
  (:func:`labelsmooth.linear_cross_entropy` on the final hidden states: no N x V logits).

Each method runs in a fresh process (memory method in ``_memory.py``: peak RSS above the live model and
batch, the parameter gradients included); the ratios are measured in this one run.

Usage::

    python benchmarks/bench_hf.py
    python benchmarks/bench_hf.py --dtypes float32 bfloat16 --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _memory import fmt_mib, measure, run_child

METHODS = ["hf", "loss_func", "patched"]
CONFIG = dict(
    vocab_size=32000, hidden_size=256, intermediate_size=688, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=4, max_position_embeddings=512,
)  # fmt: skip
BATCH, SEQ, SMOOTHING = 4, 512, 0.1


def _one(cfg: dict) -> dict:
    import torch
    import transformers
    from transformers.trainer_pt_utils import LabelSmoother

    from labelsmooth.integrations.transformers import LabelSmoothedLoss, apply

    torch.manual_seed(0)
    dtype = getattr(torch, cfg["dtype"])
    model = transformers.LlamaForCausalLM(transformers.LlamaConfig(**CONFIG)).to(dtype).train()
    ids = torch.randint(0, CONFIG["vocab_size"], (BATCH, SEQ))
    labels = ids.clone()
    labels[:, -SEQ // 8 :] = -100  # right padding
    method = cfg["method"]
    if method == "hf":
        smoother = LabelSmoother(SMOOTHING)

        def loss():
            return smoother(model(input_ids=ids), labels, shift_labels=True)
    elif method == "loss_func":
        fn = LabelSmoothedLoss(SMOOTHING)

        def loss():
            return fn(model(input_ids=ids), labels)
    else:
        apply(model, label_smoothing=SMOOTHING)

        def loss():
            return model(input_ids=ids, labels=labels).loss

    def setup():
        model.zero_grad(set_to_none=True)

    def step():
        loss().backward()

    r = measure(step, setup, repeats=cfg["repeats"])
    r["loss"] = float(loss().detach())
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", help="internal: run one JSON configuration")
    ap.add_argument("--dtypes", nargs="*", default=["float32"])
    ap.add_argument("--methods", nargs="*", default=METHODS)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_one(json.loads(args.one))))
        return
    import torch
    import transformers

    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"# torch {torch.__version__}, transformers {transformers.__version__}, threads {torch.get_num_threads()}, "
          f"cpus {os.cpu_count()}, load average {load}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")  # fmt: skip
    logits = BATCH * SEQ * CONFIG["vocab_size"]
    print(f"# Llama V={CONFIG['vocab_size']} D={CONFIG['hidden_size']} L={CONFIG['num_hidden_layers']}, "
          f"batch {BATCH}x{SEQ}; logits {logits:,} elements")  # fmt: skip
    print("| dtype | method | step time (s) | x hf time | peak extra | x hf memory | loss |")
    print("|---|---|---|---|---|---|---|")
    for dt in args.dtypes:
        res = {}
        for m in args.methods:
            res[m] = run_child(os.path.abspath(__file__), {"dtype": dt, "method": m, "repeats": args.repeats})
        hf = res.get("hf")
        for m, r in res.items():
            xt = f"{r['time'] / hf['time']:.2f}" if hf else ""
            xm = f"{r['peak_extra'] / hf['peak_extra']:.3f}" if hf else ""
            print(
                f"| {dt} | {m} | {r['time']:.3f} | {xt} | {fmt_mib(r['peak_extra'])} | {xm} | {r['loss']:.5f} |"
            )
        sys.stdout.flush()
    print(f"# load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
