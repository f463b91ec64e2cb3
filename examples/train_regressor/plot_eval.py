#!/usr/bin/env python3
"""Predicted vs true figure of the lens-parameter regressor's evaluation.

    python3 plot_eval.py EVAL.csv OUT.png

EVAL.csv is written by `train_regressor` (columns <param>_true, <param>_pred,
<param>_sd per parameter).  One panel per parameter: in 20 bins of the true
value, the median predicted value and the central 68 % and 95 % bands of the
predictions (shaded), over a sample of the individual predictions; the
diagonal is a perfect estimator.
"""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

LABELS = {
    "theta_E": r"$\theta_E$ ['']",
    "e1": r"$e_1$",
    "e2": r"$e_2$",
    "center_x": r"$x_c$ ['']",
    "center_y": r"$y_c$ ['']",
    "gamma1": r"$\gamma_1$",
    "gamma2": r"$\gamma_2$",
}


def main(path, out):
    data = np.genfromtxt(path, delimiter=",", names=True)
    params = [n[: -len("_true")] for n in data.dtype.names if n.endswith("_true")]
    fig, axes = plt.subplots(2, 4, figsize=(16, 8))
    rng = np.random.default_rng(0)
    for ax, p in zip(axes.flat, params):
        t, y = data[p + "_true"], data[p + "_pred"]
        lo, hi = np.percentile(t, [0.5, 99.5])
        edges = np.linspace(lo, hi, 21)
        mid = 0.5 * (edges[1:] + edges[:-1])
        q = np.full((5, len(mid)), np.nan)
        for i in range(len(mid)):
            sel = (t >= edges[i]) & (t < edges[i + 1])
            if sel.sum() >= 10:
                q[:, i] = np.percentile(y[sel], [2.5, 16, 50, 84, 97.5])
        pick = rng.choice(len(t), size=min(2000, len(t)), replace=False)
        ax.plot(t[pick], y[pick], ".", ms=1.5, color="0.6", alpha=0.5, rasterized=True)
        ax.fill_between(mid, q[0], q[4], color="tab:blue", alpha=0.25, label="95 %")
        ax.fill_between(mid, q[1], q[3], color="tab:blue", alpha=0.5, label="68 %")
        ax.plot(mid, q[2], color="tab:blue", lw=1.5, label="median")
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo))
        rms = np.sqrt(np.mean((y - t) ** 2))
        ax.set_title(f"{LABELS.get(p, p)}   RMS {rms:.3g}")
        ax.set_xlabel("true")
        ax.set_ylabel("predicted")
    axes.flat[0].legend(loc="upper left", fontsize=8)
    for ax in list(axes.flat)[len(params):]:
        ax.axis("off")
    fig.suptitle(f"Lens-parameter regressor on {len(data)} held-out simulated HST-like lenses")
    fig.tight_layout()
    fig.savefig(out, dpi=80)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
