"""Binned top-label ECE of 10^7 samples x 10 classes: labelsmooth against torchmetrics, same run, same input.

    python benchmarks/bench_ece.py                 # 10^7 x 10 float32 probabilities, 7 repeats
    python benchmarks/bench_ece.py --n 1000000 --repeats 3

Both functions get the same float32 probability matrix and int64 targets, 15 uniform bins, L1 norm, their
default argument validation on. Calls alternate (ours, theirs, ours, ...) after one warm-up call each, so
machine noise hits both alike; the script prints the median of each and the ratio ours / theirs (target:
<= 0.5). The two values differ slightly and explainably: torchmetrics accumulates its bin sums in float32
(and would send a confidence of exactly 1.0 to a hidden extra bin); labelsmooth bins and sums in float64.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="samples (rows)")
    parser.add_argument("--k", type=int, default=10, help="classes (columns)")
    parser.add_argument("--n-bins", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch
    import torchmetrics
    from torchmetrics.functional.classification import multiclass_calibration_error

    import labelsmooth
    from labelsmooth.metrics import expected_calibration_error

    print(f"date           {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(
        f"machine        {platform.machine()} {platform.processor() or ''} {platform.system()} {platform.release()}"
    )
    print(f"cpus           {os.cpu_count()} (torch intra-op threads: {torch.get_num_threads()})")
    try:
        load = " ".join(f"{v:.2f}" for v in os.getloadavg())
        print(f"load average   {load}")
    except OSError:  # pragma: no cover - not on every platform
        pass
    print(f"python         {sys.version.split()[0]}")
    print(f"torch          {torch.__version__}")
    print(f"torchmetrics   {torchmetrics.__version__}")
    print(f"labelsmooth    {labelsmooth.__version__}")
    print(f"input          {args.n:,} x {args.k} float32 probabilities, n_bins={args.n_bins}, norm=l1")

    g = torch.Generator().manual_seed(args.seed)
    probs = torch.softmax(torch.randn(args.n, args.k, generator=g) * 3.0, dim=1)
    target = torch.randint(0, args.k, (args.n,), generator=g)

    def ours() -> float:
        return expected_calibration_error(probs, target, n_bins=args.n_bins, from_logits=False)

    def theirs() -> float:
        return float(multiclass_calibration_error(probs, target, num_classes=args.k, n_bins=args.n_bins))

    v_ours, v_theirs = ours(), theirs()  # warm-up
    t_ours, t_theirs = [], []
    for _ in range(args.repeats):
        for fn, times in ((ours, t_ours), (theirs, t_theirs)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    m_ours, m_theirs = statistics.median(t_ours), statistics.median(t_theirs)
    ratio = m_ours / m_theirs
    print(
        f"labelsmooth    median {m_ours:.3f} s   runs {' '.join(f'{t:.3f}' for t in t_ours)}   ECE {v_ours:.6f}"
    )
    print(
        f"torchmetrics   median {m_theirs:.3f} s   runs {' '.join(f'{t:.3f}' for t in t_theirs)}   ECE {v_theirs:.6f}"
    )
    print(
        f"ratio          {ratio:.3f}  (labelsmooth / torchmetrics; target <= 0.5: {'PASS' if ratio <= 0.5 else 'FAIL'})"
    )
    return 0 if ratio <= 0.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
