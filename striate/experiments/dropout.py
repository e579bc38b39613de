"""The train/test gap with and without dropout.

The chapter says dropout (usually 0.5) keeps a network from fitting the noise in
its training data, so it generalises better. Overfitting needs a network much
larger than its data: here a CNN with two dense hidden layers (256 and 128 units,
about 178,000 parameters) is trained for many epochs on a few thousand
Fashion-MNIST images, once plainly and once with dropout 0.5 after each hidden
dense layer, from the same initial weights and on the same batches.

Accuracy on the training images is measured in evaluation mode (no dropout), the
same way as on the test images, so that the gap compares like with like; the
accuracy seen during training, with dropout active, would understate it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._nets import small_cnn
from ._runner import Report, dataset, pct, plural, preprocess

NAME = "dropout"
SUMMARY = "train/test accuracy gap with and without dropout 0.5 in the dense layers, on Fashion-MNIST"
CLAIM = "dropout (usually 0.5) keeps a network from fitting noise, so it generalises better"
SIZES = {
    "default": dict(n_train=3000, n_test=3000, epochs=15, lr=0.02, p=0.5, hidden=(256, 128), seeds=2),
    "quick": dict(n_train=256, n_test=200, epochs=2, lr=0.02, p=0.5, hidden=(64, 32), seeds=2),
}


def budget(size: dict) -> str:
    return (f"Fashion-MNIST, the first {size['n_train']:,} training images (a small set, to make overfitting "
            f"visible) and {size['n_test']:,} test images, {plural(size['epochs'], 'epoch')}, batch 64, SGD lr "
            f"{size['lr']} with Nesterov momentum 0.9; hidden dense layers {'-'.join(map(str, size['hidden']))}; "
            f"each run repeated with {plural(size['seeds'], 'seed')}")


def run(ctx) -> Report:
    s = ctx.size
    train, test = dataset("fashion-mnist", True, s["n_train"]), dataset("fashion-mnist", False, s["n_test"])
    variants = (("no dropout", 0.0), (f"dropout {s['p']:g}", s["p"]))
    ctx.plan(len(variants) * s["seeds"])
    runs = {}
    for label, p in variants:
        for k in range(s["seeds"]):
            model = small_cnn(ctx.init_rng(k), widths=(16, 32), hidden=tuple(s["hidden"]), dropout=p)
            r = ctx.train(f"{label}, seed {k + 1}", model, train, test, epochs=s["epochs"], lr=s["lr"],
                          transform=preprocess("fashion-mnist"), eval_train=True, repeat=k)
            r.pop("step_loss")
            runs[f"{label}/{k}"] = r

    summary: dict[str, dict[str, Any]] = {}
    for label, _ in variants:
        per_seed = [_summarise(runs[f"{label}/{k}"]["epochs"]) for k in range(s["seeds"])]
        summary[label] = {key: float(np.mean([x[key] for x in per_seed])) for key in per_seed[0]}
        summary[label]["per_seed"] = per_seed
        summary[label]["parameters"] = runs[f"{label}/0"]["parameters"]
    columns = ["network", "parameters", "train acc. (%)", "test acc. (%)", "gap (points)", "gap per seed",
               "best test acc. (%)", "final test loss", "lowest test loss"]
    rows = []
    for label, _ in variants:
        m = summary[label]
        rows.append([label, m["parameters"], round(100 * m["train_acc"], 2), round(100 * m["test_acc"], 2),
                     round(100 * m["gap"], 2), ", ".join(f"{100 * x['gap']:.1f}" for x in m["per_seed"]),
                     round(100 * m["best_test_acc"], 2), round(m["final_test_loss"], 4),
                     round(m["lowest_test_loss"], 4)])
    finding = _finding(summary, s)
    notes = ["train accuracy is measured in evaluation mode (dropout off) on the training images",
             f"means over {plural(s['seeds'], 'seed')} (initial weights, data order, dropout masks); within a seed "
             f"both networks start from the same weights and see the same batches"]

    def plot(path):
        _plot(path, runs, s)
    return Report(columns, rows, finding, {"summary": summary, "runs": runs}, plot, notes)


def _summarise(epochs: list) -> dict:
    last = epochs[-1]
    best = max(epochs, key=lambda x: x["test_acc"])
    lowest = min(epochs, key=lambda x: x["test_loss"])
    return dict(train_acc=last["train_eval_acc"], test_acc=last["test_acc"],
                gap=last["train_eval_acc"] - last["test_acc"], best_test_acc=best["test_acc"],
                best_epoch=best["epoch"], final_test_loss=last["test_loss"], lowest_test_loss=lowest["test_loss"],
                lowest_test_loss_epoch=lowest["epoch"])


def _finding(summary: dict, s: dict) -> str:
    plain, drop = summary["no dropout"], summary[f"dropout {s['p']:g}"]
    seeds = "" if s["seeds"] == 1 else f" (means over {plural(s['seeds'], 'seed')})"
    text = (f"Without dropout the network ends at {pct(plain['train_acc'])} on its training images and "
            f"{pct(plain['test_acc'])} on the test set, a gap of {100 * plain['gap']:.1f} points; with dropout "
            f"{s['p']:g} at {pct(drop['train_acc'])} and {pct(drop['test_acc'])}, a gap of "
            f"{100 * drop['gap']:.1f} points{seeds}. ")
    narrower = [a["gap"] > b["gap"] for a, b in zip(plain["per_seed"], drop["per_seed"])]
    if all(narrower):
        text += (f"Dropout narrows the gap by {100 * (plain['gap'] - drop['gap']):.1f} points"
                 + (" in every seed" if s["seeds"] > 1 else ""))
        diff = drop["test_acc"] - plain["test_acc"]
        better = [b["test_acc"] > a["test_acc"] for a, b in zip(plain["per_seed"], drop["per_seed"])]
        if diff > 0.002 and all(better):
            text += f" and raises test accuracy by {100 * diff:.1f} points, as the chapter says. "
        elif diff < -0.002 and not any(better):
            text += (f", but test accuracy is {100 * -diff:.1f} points lower: at this budget it narrows the gap by "
                     f"lowering training accuracy, not by raising test accuracy. ")
        else:
            text += (f", while test accuracy moves by {100 * diff:+.1f} points, not consistently across seeds: it "
                     f"narrows the gap mostly by lowering training accuracy. ")
    elif not any(narrower):
        text += "Dropout does not narrow the gap here, which contradicts the chapter at this budget. "
    else:
        text += "Dropout narrows the gap in some seeds only. "
    if plain["final_test_loss"] > plain["lowest_test_loss"] * 1.03:
        text += (f"Without dropout the test loss is lowest ({plain['lowest_test_loss']:.3f}) around epoch "
                 f"{plain['lowest_test_loss_epoch']:.0f} and rises to {plain['final_test_loss']:.3f} by the end, "
                 f"the mark of overfitting; with dropout it ends at {drop['final_test_loss']:.3f}"
                 + (", its lowest. " if drop["final_test_loss"] <= drop["lowest_test_loss"] * 1.01 else
                    f" (lowest {drop['lowest_test_loss']:.3f}). "))
    still_rising = all(x["best_epoch"] == s["epochs"] for x in drop["per_seed"])
    if still_rising and drop["test_acc"] < plain["test_acc"]:
        text += ("The dropout network's test accuracy is still at its best in the last epoch of every seed, so a "
                 "longer run could change the comparison of test accuracies.")
    return text.strip()


def _plot(path, runs: dict, s: dict) -> None:
    from ..viz.mpl import plt, save
    fig, (ax_acc, ax_gap, ax_loss) = plt.subplots(1, 3, figsize=(16, 4.4))
    colours = {"no dropout": "tab:red", f"dropout {s['p']:g}": "tab:blue"}
    for key, r in runs.items():
        label, k = key.rsplit("/", 1)
        if k != "0":
            continue                   # the first seed's curves only (the table has every seed's gap)
        e = r["epochs"]
        xs = [x["epoch"] for x in e]
        c = colours[label]
        ax_acc.plot(xs, [100 * x["train_eval_acc"] for x in e], color=c, ls="--", label=f"{label}: train")
        ax_acc.plot(xs, [100 * x["test_acc"] for x in e], color=c, label=f"{label}: test")
        ax_gap.plot(xs, [100 * (x["train_eval_acc"] - x["test_acc"]) for x in e], color=c, marker="o", ms=3,
                    label=label)
        ax_loss.plot(xs, [x["test_loss"] for x in e], color=c, marker="o", ms=3, label=f"{label}: test")
        ax_loss.plot(xs, [x["train_loss"] for x in e], color=c, ls="--", label=f"{label}: train (as trained)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy (train measured without dropout)")
    ax_gap.set(xlabel="epoch", ylabel="train − test accuracy (points)", title="generalisation gap")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    for ax in (ax_acc, ax_gap, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"dropout on Fashion-MNIST: {s['n_train']:,} training images × {plural(s['epochs'], 'epoch')} "
                 f"(curves of the first seed)")
    fig.tight_layout()
    save(fig, path)
