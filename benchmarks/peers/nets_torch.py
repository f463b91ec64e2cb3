#!/usr/bin/env python3
"""PyTorch CPU timings of the two example networks, for comparison only.

    python3 nets_torch.py [--threads 2] [--min-time 1.0] [--repetitions 1]
                          [--no-compile] [--cases regex] [--json OUT.jsonl] [--tag T]

Builds the same layers as the project's example networks (PyTorch is not a
dependency of the project; this script only measures it):

  regressor  examples/train_regressor/regressor.hpp make_network: 64x64x1 ->
             conv 5x5/16 (pad 2), ReLU, max pool 2; conv 3x3/32, 3x3/64,
             3x3/64 (pad 1), each ReLU + max pool 2; flatten 1024, dense 256,
             ReLU, dropout 0.1, dense 35.  331,875 parameters.
  finder     examples/train_finder/finder.hpp make_deeplens(8): 45x45x3 ->
             conv 7x7/32 (pad 3); five stages of three pre-activated
             bottleneck units (BN-ELU-conv1x1, BN-ELU-conv3x3 (stride),
             BN-ELU-conv1x1; widths 8, 16, 32, 64, 128, outputs 4x; the first
             unit of stages 2-5 has stride 2 and a 1x1 projection shortcut on
             the unit's input, the others an identity shortcut); BN, ELU,
             global average pool, dense 512 -> 1.  1,263,249 parameters.

Every convolution and dense layer has a bias (as nn::Conv2D / nn::Dense);
parameter counts (BatchNorm gamma and beta; running statistics are state) are
printed and must equal the project's.  Cases: forward in inference mode
(model.eval(), torch.inference_mode()) at batch 32 and 256, and forward +
backward in training mode at batch 32 (parameter gradients only, the output
gradient 1e-3 as the project's benchmark, gradients set to None between
steps), each eager and with torch.compile (default mode) where it works.
Each case runs `repetitions` timed blocks of at least `min-time` seconds
after a warm-up; ms per image of every block is printed and, with --json,
written one JSON object per line.
"""
import argparse
import json
import os
import re
import sys
import time

import torch
from torch import nn


def regressor():
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, 1, 2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 4 * 4, 256), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(256, 35))


class Bottleneck(nn.Module):
    """Pre-activated bottleneck: BN-ELU-1x1, BN-ELU-3x3(stride), BN-ELU-1x1,
    plus the input (identity) or a strided 1x1 projection of the input."""

    def __init__(self, c_in, c_mid, c_out, stride=1, projection=True):
        super().__init__()
        self.branch = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.ELU(), nn.Conv2d(c_in, c_mid, 1),
            nn.BatchNorm2d(c_mid), nn.ELU(), nn.Conv2d(c_mid, c_mid, 3, stride, 1),
            nn.BatchNorm2d(c_mid), nn.ELU(), nn.Conv2d(c_mid, c_out, 1))
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride) if projection else nn.Identity()

    def forward(self, x):
        return self.branch(x) + self.shortcut(x)


def deeplens(w=8, bands=3):
    layers = [nn.Conv2d(bands, 4 * w, 7, 1, 3)]
    c = 4 * w
    for stage, width in enumerate([w, 2 * w, 4 * w, 8 * w, 16 * w]):
        for unit in range(3):
            if stage > 0 and unit == 0:
                layers.append(Bottleneck(c, width, 4 * width, 2, projection=True))
            else:
                layers.append(Bottleneck(c, width, c, 1, projection=False))
            c = 4 * width
    layers += [nn.BatchNorm2d(c), nn.ELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 1)]
    return nn.Sequential(*layers)


NETS = {
    "regressor": (regressor, (1, 64, 64), 331875),
    "finder": (deeplens, (3, 45, 45), 1263249),
}


def fill(shape):
    """The project benchmark's input pattern: sin(0.37 i) + 0.5 sin(12.9898 (i mod 9973))."""
    n = 1
    for s in shape:
        n *= s
    i = torch.arange(n, dtype=torch.float64)
    x = torch.sin(0.37 * i) + 0.5 * torch.sin(12.9898 * torch.remainder(i, 9973))
    return x.to(torch.float32).reshape(shape)


def time_blocks(step, min_time, repetitions, warmup=2):
    for _ in range(warmup):
        step()
    out = []
    for _ in range(repetitions):
        n, t0 = 0, time.perf_counter()
        while True:
            step()
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                break
        out.append(dt / n)
    return out


def run_case(name, mode, batch, compiled, args):
    make, sample, _ = NETS[name]
    torch.manual_seed(1)
    model = make()
    x = fill((batch,) + sample)
    g = torch.full((batch, 35 if name == "regressor" else 1), 1e-3)
    t_compile = 0.0
    if mode == "forward":
        model.eval()
        fn = torch.compile(model) if compiled else model

        def step():
            with torch.inference_mode():
                fn(x)
    else:
        model.train()
        fn = torch.compile(model) if compiled else model
        params = list(model.parameters())

        def step():
            for p in params:
                p.grad = None
            fn(x).backward(g)
    if compiled:
        t0 = time.perf_counter()
        step()  # compiles
        t_compile = time.perf_counter() - t0
    secs = time_blocks(step, args.min_time, args.repetitions)
    return [1e3 * s / batch for s in secs], t_compile


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--repetitions", type=int, default=1)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--cases", default=".")
    ap.add_argument("--json", default="")
    ap.add_argument("--tag", default="", help="stored in every JSON record (run_nets.sh: the round)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')}, load {os.getloadavg()[0]:.2f}", flush=True)
    for name, (make, _, expected) in NETS.items():
        count = sum(p.numel() for p in make().parameters())
        note = "" if expected is None else (" (matches)" if count == expected else f" (EXPECTED {expected})")
        print(f"params {name} {count}{note}", flush=True)
        if expected is not None and count != expected:
            sys.exit(1)
    cases = [(n, m, b) for n in NETS for (m, b) in (("forward", 32), ("forward", 256), ("train", 32))]
    out = open(args.json, "a") if args.json else None
    for name, mode, batch in cases:
        for compiled in ([False] if args.no_compile else [False, True]):
            impl = "compile" if compiled else "eager"
            label = f"{name}_{mode}/{batch}/{impl}"
            if not re.search(args.cases, label):
                continue
            try:
                ms, tc = run_case(name, mode, batch, compiled, args)
            except Exception as e:  # torch.compile may not work on a given setup
                print(f"{label}: failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}", flush=True)
                continue
            extra = f", compile {tc:.1f} s" if compiled else ""
            print(f"{label}: " + " ".join(f"{v:.4f}" for v in ms) + f" ms/image{extra}", flush=True)
            if out:
                out.write(json.dumps({"side": "torch-" + impl, "net": name, "mode": mode, "batch": batch,
                                      "ms_per_image": ms, "compile_s": tc, "tag": args.tag,
                                      "load": os.getloadavg()[0]}) + "\n")
                out.flush()


if __name__ == "__main__":
    main()
