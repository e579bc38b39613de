"""Batch norm after the activation (the chapter's placement), before it, or not at all.

The chapter says normalisation keeps values from spiralling out of control and
helps the model converge faster, and places batch norm after the activation. The
original paper (Ioffe & Szegedy, 2015) put it before the activation, on the
convolution's output. Here the same small CNN is trained three ways from the same
initial weights and batches:

* none:   conv → ReLU → pool
* after:  conv → ReLU → batch norm → pool       (the chapter's placement)
* before: conv → batch norm → ReLU → pool       (the paper's)

each at a moderate and at a high learning rate, since letting a network train at
higher rates is the usual argument for batch norm. The curves are training loss
against steps.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ._nets import small_cnn
from ._runner import Report, dataset, pct, plural, preprocess, smooth

NAME = "batchnorm"
SUMMARY = "no batch norm, batch norm after the activation (the chapter's) and before it: loss against steps"
CLAIM = ("normalising after the activation keeps values in a reasonable range and helps the model "
         "converge faster")
SIZES = {
    "default": dict(n_train=10000, n_test=5000, epochs=2, lrs=(0.02, 0.2), target=0.5, seeds=3),
    "quick": dict(n_train=256, n_test=200, epochs=1, lrs=(0.02, 0.2), target=0.5, seeds=2),
}

PLACEMENTS = {"none": "no batch norm", "after": "after the activation", "before": "before the activation"}


def budget(size: dict) -> str:
    return (f"MNIST, the first {size['n_train']:,} training and {size['n_test']:,} test images, "
            f"{plural(size['epochs'], 'epoch')}, batch 64, SGD with Nesterov momentum 0.9 at learning rates "
            f"{' and '.join(map(str, size['lrs']))}; each run repeated with {plural(size['seeds'], 'seed')}")


def _steps_to(losses, target: float, window: int) -> int | None:
    """The first step at which the ``window``-step average loss is below ``target`` (None: never)."""
    below = np.nonzero(smooth(losses, window) < target)[0]
    return int(below[0]) + 1 if len(below) else None


def run(ctx) -> Report:
    s = ctx.size
    train, test = dataset("mnist", True, s["n_train"]), dataset("mnist", False, s["n_test"])
    ctx.plan(len(PLACEMENTS) * len(s["lrs"]) * s["seeds"])
    runs = {}
    for lr in s["lrs"]:
        for norm, label in PLACEMENTS.items():
            for k in range(s["seeds"]):
                model = small_cnn(ctx.init_rng(k), norm=norm)
                r = ctx.train(f"{label}, lr {lr}, seed {k + 1}", model, train, test, epochs=s["epochs"], lr=lr,
                              transform=preprocess("mnist"), repeat=k)
                r["step_loss"] = [round(x, 5) for x in r["step_loss"]]
                runs[f"{norm}/{lr}/{k}"] = r
    window = 20
    summary: dict[str, dict[str, Any]] = {}
    for lr in s["lrs"]:
        for norm in PLACEMENTS:
            rs = [runs[f"{norm}/{lr}/{k}"] for k in range(s["seeds"])]
            reach = [_steps_to(r["step_loss"], s["target"], window) for r in rs]
            summary[f"{norm}/{lr}"] = dict(
                first=float(np.mean([np.mean(r["step_loss"][:50]) for r in rs if r["step_loss"]])),
                last=float(np.mean([np.mean(r["step_loss"][-50:]) for r in rs if r["step_loss"]])),
                steps_to_target=reach, test_acc=float(np.mean([r["test_acc"] for r in rs])),
                test_acc_per_seed=[r["test_acc"] for r in rs],
                last_per_seed=[float(np.mean(r["step_loss"][-50:])) if r["step_loss"] else None for r in rs],
                diverged=[r["diverged"] for r in rs])
    columns = ["batch norm", "lr", "loss, steps 1–50", "loss, last 50 steps", f"steps to loss < {s['target']}",
               "test acc. (%)", "lowest–highest"]
    rows = []
    for lr in s["lrs"]:
        for norm, label in PLACEMENTS.items():
            m = summary[f"{norm}/{lr}"]
            rows.append([label, lr, round(m["first"], 4), round(m["last"], 4), _reach_text(m["steps_to_target"]),
                         round(100 * m["test_acc"], 2),
                         f"{100 * min(m['test_acc_per_seed']):.2f}–{100 * max(m['test_acc_per_seed']):.2f}"])
    finding = _finding(summary, s)
    notes = [f"steps to loss < {s['target']}: the first step at which the {window}-step average training loss "
             f"is below it, per seed",
             f"means over {plural(s['seeds'], 'seed')}; within a seed the three placements start from the same "
             f"weights and see the same batches"]

    def plot(path):
        _plot(path, runs, summary, s, window)
    return Report(columns, rows, finding, {"summary": summary, "runs": runs}, plot, notes)


def _reach_text(steps: list) -> str:
    return ", ".join("never" if v is None else str(v) for v in steps)


def _finding(summary: dict, s: dict) -> str:
    parts = []
    for lr in s["lrs"]:
        bits = []
        for n in PLACEMENTS:
            where = "without batch norm" if n == "none" else f"with it {PLACEMENTS[n]}"
            reach = summary[f"{n}/{lr}"]["steps_to_target"]
            known = [v for v in reach if v is not None]
            if not known:
                bits.append(f"never {where}")
            else:
                bits.append(f"{np.mean(known):.0f} {where}"
                            + ("" if len(known) == len(reach) else f" (never in {len(reach) - len(known)} of "
                                                                      f"{len(reach)} seeds)"))
        parts.append(f"at lr {lr}, steps until the training loss is below {s['target']}: " + ", ".join(bits)
                     + " (test accuracy " + " / ".join(pct(summary[f'{n}/{lr}']['test_acc']) for n in PLACEMENTS)
                     + ")")
    text = "; ".join(parts) + ". "
    text = text[0].upper() + text[1:]

    def last(n, lr):
        return [np.inf if v is None else v for v in summary[f"{n}/{lr}"]["last_per_seed"]]

    def below(a, b, lr):               # a's final loss below b's in every seed
        return all(x < y for x, y in zip(last(a, lr), last(b, lr)))

    helped = [lr for lr in s["lrs"] if below("after", "none", lr) and below("before", "none", lr)]
    if len(helped) == len(s["lrs"]):
        text += ("With batch norm, in either place, the training loss ends lower at every learning rate and in "
                 "every seed, as the chapter says. ")
    elif helped:
        text += ("Batch norm, in either place, ends with a lower training loss in every seed "
                 f"at lr {', '.join(map(str, helped))} only. ")
    else:
        text += ("Batch norm does not consistently lower the training loss here, "
                 "which contradicts the chapter at this budget. ")
    after = [lr for lr in s["lrs"] if below("after", "before", lr)]
    before = [lr for lr in s["lrs"] if below("before", "after", lr)]
    if len(after) == len(s["lrs"]):
        text += "After the activation (the chapter's placement) ends with the lower loss at every rate and seed."
    elif len(before) == len(s["lrs"]):
        text += "Before the activation (the paper's placement) ends with the lower loss at every rate and seed."
    else:
        text += ("Between the two placements there is no consistent winner: "
                 + "; ".join(f"at lr {lr} " + ("after is lower in every seed" if lr in after else
                                               "before is lower in every seed" if lr in before else
                                               "the seeds disagree")
                             for lr in s["lrs"]) + ".")
    return text


def _plot(path, runs: dict, summary: dict, s: dict, window: int) -> None:
    from ..viz.mpl import plt, save
    n = len(s["lrs"])
    fig, axes = plt.subplots(1, n, figsize=(6.5 * n, 4.4), squeeze=False)
    colours = {"none": "tab:red", "after": "tab:blue", "before": "tab:green"}
    for ax, lr in zip(axes[0], s["lrs"]):
        for norm, label in PLACEMENTS.items():
            for k in range(s["seeds"]):
                r = runs[f"{norm}/{lr}/{k}"]
                ax.plot(np.arange(1, len(r["step_loss"]) + 1), smooth(r["step_loss"], window), color=colours[norm],
                        lw=1.2, alpha=0.8,
                        label=f"{label} ({pct(summary[f'{norm}/{lr}']['test_acc'])} test)" if k == 0 else None)
        ax.axhline(s["target"], color="grey", lw=0.8, ls=":")
        ax.set(xlabel="training step (batch of 64)",
               ylabel=f"training loss ({window}-step average; one line per seed)",
               title=f"learning rate {lr}", ylim=(0, 2.5))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"batch norm placement: MNIST, {s['n_train']:,} images × {plural(s['epochs'], 'epoch')}")
    fig.tight_layout()
    save(fig, path)
