"""Max, average, sum, min and L2 pooling in the same small CNN.

The chapter lists five pooling functions, says max pooling is the most common,
that average pooling blurs (and may help with noise), and that the rest are rarely
used. Here the same CNN (two 5×5 convolutions, ReLU, 2×2 pooling after each, a
hidden dense layer) is trained with each of the five, from the same initial
weights and on the same batches, on MNIST and on Fashion-MNIST.

Why min pooling is expected to struggle: it follows a ReLU, whose output is zero
wherever the convolution's response is negative, so the minimum of a 2×2 window is
zero unless all four responses are positive. Sum pooling is average pooling times
four, so it also scales the signal (and the gradients) by four at each stage.
"""
from __future__ import annotations

import numpy as np

from ..data import to_float
from ._nets import POOLS, small_cnn
from ._runner import Report, dataset, pct, plural, preprocess, smooth

NAME = "pooling"
SUMMARY = "the same small CNN with max, average, sum, min and L2 pooling, on MNIST and Fashion-MNIST"
CLAIM = ("max pooling is the most common (it keeps the strongest features), average pooling blurs, "
         "and sum, min and L2 pooling are rarely used")
SIZES = {
    "default": dict(n_train=6000, n_test=5000, epochs=3, lr=0.02, seeds=3,
                    datasets=("mnist", "fashion-mnist"), pools=("max", "average", "sum", "min", "l2")),
    "quick": dict(n_train=256, n_test=200, epochs=1, lr=0.02, seeds=2,
                  datasets=("mnist", "fashion-mnist"), pools=("max", "average", "sum", "min", "l2")),
}

_TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def budget(size: dict) -> str:
    return (f"MNIST and Fashion-MNIST, the first {size['n_train']:,} training and {size['n_test']:,} test images "
            f"of each, {plural(size['epochs'], 'epoch')}, batch 64, SGD lr {size['lr']} with Nesterov momentum "
            f"0.9; the same initial weights for every pooling; each run repeated with {size['seeds']} seeds")


def run(ctx) -> Report:
    s = ctx.size
    ctx.plan(len(s["datasets"]) * len(s["pools"]) * s["seeds"])
    runs, zeros = {}, {}
    for name in s["datasets"]:
        train, test = dataset(name, True, s["n_train"]), dataset(name, False, s["n_test"])
        probe = preprocess(name)(to_float(test[0][:500]), None)
        for pool in s["pools"]:
            for k in range(s["seeds"]):
                model = small_cnn(ctx.init_rng(k), pool=pool)
                runs[f"{name}/{pool}/{k}"] = ctx.train(f"{pool} pooling on {_TITLES[name]}, seed {k + 1}", model,
                                                       train, test, epochs=s["epochs"], lr=s["lr"],
                                                       transform=preprocess(name), repeat=k)
                if k == 0:
                    zeros[f"{name}/{pool}"] = _zero_share(model, probe)
    # per dataset and pooling: the test accuracy of each seed, and the mean loss curve
    acc = {f"{d}/{p}": [runs[f"{d}/{p}/{k}"]["test_acc"] for k in range(s["seeds"])]
           for d in s["datasets"] for p in s["pools"]}
    curves = {key: _mean_curve([runs[f"{key}/{k}"]["step_loss"] for k in range(s["seeds"])]) for key in acc}

    columns = ["pooling"]
    for d in s["datasets"]:
        columns += [f"{_TITLES[d]}: mean test acc. (%)", f"{_TITLES[d]}: lowest–highest"]
    rows = []
    for pool in s["pools"]:
        row = [pool]
        for d in s["datasets"]:
            a = acc[f"{d}/{pool}"]
            row += [round(100 * float(np.mean(a)), 2), f"{100 * min(a):.2f}–{100 * max(a):.2f}"]
        rows.append(row)

    finding = _finding(acc, zeros, s)
    notes = [f"each pooling trained with {s['seeds']} seeds (initial weights and data order); within a seed every "
             f"pooling starts from the same weights and sees the same batches"]
    diverged = [k for k, r in runs.items() if r["diverged"]]
    if diverged:
        notes.append(f"diverged (loss became NaN or infinite): {', '.join(diverged)}")
    for r in runs.values():
        r["step_loss"] = [round(v, 5) for v in r["step_loss"]]     # enough digits for a curve; smaller JSON

    def plot(path):
        _plot(path, acc, curves, s)
    notes.append("share of the first pooling layer's outputs that are exactly zero (seed 1, 500 test images): "
                 + "; ".join(f"{_TITLES[d]} " + ", ".join(f"{p} {zeros[f'{d}/{p}']:.0%}" for p in s["pools"])
                             for d in s["datasets"]))
    return Report(columns, rows, finding, {"test_acc_per_seed": acc, "zero_share_after_pool1": zeros, "runs": runs},
                  plot, notes)


def _zero_share(model, x) -> float:
    """The share of the first pooling layer's outputs that are exactly zero, on test images x."""
    from ..tensor import Tensor, no_grad
    seen = []
    handle = model.pool1.register_forward_hook(lambda m, inputs, out: seen.append(float((out.data == 0).mean())))
    model.eval()
    with no_grad():
        model(Tensor(x))
    handle.remove()
    return seen[0]


def _mean_curve(curves: list) -> np.ndarray:
    """The mean of several loss curves, over the steps all of them reached."""
    n = min(len(c) for c in curves)
    return np.mean([c[:n] for c in curves], axis=0) if n else np.zeros(0)


def _finding(acc: dict, zeros: dict, s: dict) -> str:
    mean = {k: float(np.mean(v)) for k, v in acc.items()}
    parts = []
    for d in s["datasets"]:
        ranked = sorted(s["pools"], key=lambda p: -mean[f"{d}/{p}"])
        parts.append(f"on {_TITLES[d]}: " + ", ".join(f"{p} {pct(mean[f'{d}/{p}'])}" for p in ranked))
    text = f"Ranked by mean test accuracy over {s['seeds']} seeds, " + "; ".join(parts) + ". "

    def clearly_above(a: str, b: str) -> bool:
        """Every seed of ``a`` above every seed of ``b``: a difference the seeds do not blur."""
        return min(acc[a]) > max(acc[b])

    best = {d: max(s["pools"], key=lambda p: mean[f"{d}/{p}"]) for d in s["datasets"]}
    worst = {d: min(s["pools"], key=lambda p: mean[f"{d}/{p}"]) for d in s["datasets"]}
    if "max" in s["pools"]:
        for d in s["datasets"]:
            rivals = [p for p in s["pools"] if p != "max" and not clearly_above(f"{d}/max", f"{d}/{p}")]
            if best[d] == "max" and not rivals:
                text += f"On {_TITLES[d]} max pooling is ahead of every other pooling in every seed. "
            elif best[d] == "max":
                text += (f"On {_TITLES[d]} max pooling has the best mean, but the seeds' ranges overlap with "
                         f"{', '.join(rivals)}. ")
            else:
                beaten = clearly_above(f"{d}/{best[d]}", f"{d}/max")
                text += (f"On {_TITLES[d]} {best[d]} pooling has the best mean, "
                         f"{100 * (mean[f'{d}/{best[d]}'] - mean[f'{d}/max']):.1f} points above max pooling"
                         + (" in every seed. " if beaten else " (the seeds' ranges overlap). "))
    if "average" in s["pools"] and "max" in s["pools"]:
        gaps = {d: mean[f"{d}/max"] - mean[f"{d}/average"] for d in s["datasets"]}
        if all(g > 0 for g in gaps.values()):
            text += ("Average pooling trails max pooling on both (by " + " and ".join(
                f"{100 * g:.1f}" for g in gaps.values()) + " points), in line with max being the usual choice. ")
    if "l2" in s["pools"] and "max" in s["pools"] and all(mean[f"{d}/l2"] >= mean[f"{d}/max"] for d in s["datasets"]):
        text += ("L2 pooling, which the chapter counts among the rarely used, does at least as well as max pooling "
                 "on both: 'rarely used' describes practice, not merit. ")
    if all(worst[d] == "min" for d in s["datasets"]):
        text += "Min pooling comes last everywhere."
        if all(f"{d}/min" in zeros for d in s["datasets"]):
            text += (" After a ReLU a 2×2 window's minimum is zero unless all four responses are positive; in the "
                     "trained min-pooling networks " + " and ".join(f"{zeros[f'{d}/min']:.0%}" for d in s["datasets"])
                     + " of the first pooling layer's outputs are exactly zero.")
    else:
        text += "Last: " + "; ".join(f"{worst[d]} pooling on {_TITLES[d]}" for d in s["datasets"]) + "."
    return text


def _plot(path, acc: dict, curves: dict, s: dict) -> None:
    from ..viz.mpl import plt, save
    n = len(s["datasets"])
    fig, axes = plt.subplots(2, n, figsize=(6.5 * n, 8), squeeze=False)
    colours = dict(zip(POOLS, ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")))
    for j, d in enumerate(s["datasets"]):
        ax = axes[0, j]
        window = max(1, len(curves[f"{d}/{s['pools'][0]}"]) // 20)
        for p in s["pools"]:
            ax.plot(smooth(curves[f"{d}/{p}"], window), color=colours[p], label=p)
        ax.set(xlabel="training step (batch of 64)",
               ylabel=f"training loss ({window}-step average, mean of {s['seeds']} seeds)",
               title=f"{_TITLES[d]}: training curves")
        ax.set_ylim(0, 2.5)                  # chance is ln 10 ≈ 2.3; a diverging curve leaves the top
        ax.grid(alpha=0.3)
        ax.legend()
        ax = axes[1, j]
        values = [100 * np.asarray(acc[f"{d}/{p}"]) for p in s["pools"]]
        means = [v.mean() for v in values]
        errors = [[m - v.min() for m, v in zip(means, values)], [v.max() - m for m, v in zip(means, values)]]
        ax.bar(s["pools"], means, color=[colours[p] for p in s["pools"]], yerr=errors, capsize=4)
        for i, (m, v) in enumerate(zip(means, values)):
            ax.text(i, v.max() + 0.3, f"{m:.2f}%", ha="center", fontsize=9)
        low = max(0.0, min(v.min() for v in values) - 10)
        ax.set(ylim=(low, 100), ylabel="test accuracy (%)",
               title=f"{_TITLES[d]}: test accuracy (mean; bars: lowest–highest of {s['seeds']} seeds)")
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"five poolings, one CNN: {s['n_train']:,} training images × {plural(s['epochs'], 'epoch')}")
    fig.tight_layout()
    save(fig, path)
