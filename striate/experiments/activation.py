"""Where the activation goes: after the convolution and before pooling, or after pooling.

The chapter's answer is "after the convolution and before the pooling". Here the
same small CNN is trained with the activation on either side of the pooling, with
ReLU and with LeCun's scaled tanh, under max pooling and under average pooling:
eight networks, from the same initial weights and on the same batches.

Why max pooling and ReLU commute: ReLU never reverses an order (if a ≤ b then
relu(a) ≤ relu(b)), so the largest of four values stays the largest after ReLU,
and max(relu(a), relu(b), ...) = relu(max(a, b, ...)). The same holds for every
non-decreasing function, tanh and scaled tanh included. So under max pooling both
orders compute the same function, with the same gradients: the trained weights
should come out identical, and the only difference is cost, since after pooling
the activation runs on a quarter of the values. Average pooling is linear, and a
non-linear activation does not commute with it (relu of a mean is not the mean of
relus): there the order gives a different network.
"""
from __future__ import annotations

import time

import numpy as np

from .. import functional as F
from ..tensor import Tensor
from ._nets import small_cnn
from ._runner import Report, dataset, pct, plural, preprocess

NAME = "activation"
SUMMARY = "activation before or after pooling, ReLU or scaled tanh, under max and average pooling"
CLAIM = "the activation goes after the convolution and before the pooling"
SIZES = {
    "default": dict(n_train=8000, n_test=5000, epochs=2, lr=0.02, activations=("relu", "scaled_tanh"),
                    pools=("max", "average"), bench_repeats=30, seeds=3),
    "quick": dict(n_train=256, n_test=200, epochs=1, lr=0.02, activations=("relu", "scaled_tanh"),
                  pools=("max", "average"), bench_repeats=2, seeds=2),
}

ORDERS = {"act-pool": "conv → act → pool", "pool-act": "conv → pool → act"}


def budget(size: dict) -> str:
    return (f"MNIST, the first {size['n_train']:,} training and {size['n_test']:,} test images, "
            f"{plural(size['epochs'], 'epoch')}, batch 64, SGD lr {size['lr']} with Nesterov momentum 0.9; each run "
            f"repeated with {plural(size['seeds'], 'seed')}")


def _activation_cost(repeats: int) -> dict:
    """Milliseconds for one forward and backward of each activation on the first layer's maps,
    before pooling (64, 8, 24, 24) and after it (64, 8, 12, 12): the fastest of ``repeats`` runs (the
    least disturbed by other programs)."""
    rng = np.random.default_rng(0)
    out = {}
    for name, fn in (("relu", F.relu), ("scaled_tanh", F.scaled_tanh)):
        for where, shape in (("before pooling", (64, 8, 24, 24)), ("after pooling", (64, 8, 12, 12))):
            x = Tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
            g = np.ones(shape, dtype=np.float32)
            times = []
            for _ in range(max(repeats, 1)):
                t0 = time.perf_counter()
                fn(x).backward(g)
                times.append(time.perf_counter() - t0)
                x.grad = None
            out[f"{name}, {where}"] = 1000 * float(np.min(times))      # the least disturbed run
    return out


def run(ctx) -> Report:
    s = ctx.size
    train, test = dataset("mnist", True, s["n_train"]), dataset("mnist", False, s["n_test"])
    ctx.plan(len(s["activations"]) * len(s["pools"]) * len(ORDERS) * s["seeds"])
    runs, differences = {}, {}
    for act in s["activations"]:
        for pool in s["pools"]:
            for k in range(s["seeds"]):
                weights = {}
                for order, text in ORDERS.items():
                    model = small_cnn(ctx.init_rng(k), pool=pool, activation=act, order=order)
                    r = ctx.train(f"{act}, {pool} pooling, {text}, seed {k + 1}", model, train, test,
                                  epochs=s["epochs"], lr=s["lr"], transform=preprocess("mnist"), repeat=k)
                    r.pop("step_loss")
                    runs[f"{act}/{pool}/{order}/{k}"] = r
                    weights[order] = model.state_dict()
                # the same start and batches: how far apart do the two orders' trained weights end?
                a, b = weights["act-pool"], weights["pool-act"]
                differences[f"{act}/{pool}/{k}"] = max(float(np.max(np.abs(a[n] - b[n]))) for n in a)
    cost = _activation_cost(s["bench_repeats"])

    def per_seed(act, pool, order, key="test_acc"):
        return [runs[f"{act}/{pool}/{order}/{k}"][key] for k in range(s["seeds"])]

    summary = {}
    for act in s["activations"]:
        for pool in s["pools"]:
            diff = max(differences[f"{act}/{pool}/{k}"] for k in range(s["seeds"]))
            for order in ORDERS:
                accs = per_seed(act, pool, order)
                seconds = [r / s["epochs"] for r in per_seed(act, pool, order, "seconds")]
                summary[f"{act}/{pool}/{order}"] = dict(test_acc=float(np.mean(accs)), test_acc_per_seed=accs,
                                                        seconds_per_epoch=float(np.median(seconds)),
                                                        max_weight_difference=diff)
    columns = ["activation", "pooling", "order", "test acc. (%)", "lowest–highest", "s per epoch (median)",
               "max |weight difference| between the orders"]
    rows = []
    for act in s["activations"]:
        for pool in s["pools"]:
            for order, text in ORDERS.items():
                m = summary[f"{act}/{pool}/{order}"]
                rows.append([act, pool, text, round(100 * m["test_acc"], 2),
                             f"{100 * min(m['test_acc_per_seed']):.2f}–{100 * max(m['test_acc_per_seed']):.2f}",
                             round(m["seconds_per_epoch"], 2),
                             m["max_weight_difference"] if order == "pool-act" else ""])
    finding = _finding(summary, cost, s)
    notes = ["seconds per epoch are wall-clock times on a possibly busy machine; the activation's own cost, "
             "measured alone: " + ", ".join(f"{k} {v:.2f} ms" for k, v in cost.items())
             + " (forward and backward, batch 64, 8 maps)",
             f"{plural(s['seeds'], 'seed')}; within a seed both orders start from the same weights and see the same "
             f"batches, and the weight difference is the largest over all seeds"]
    results = {"summary": summary, "runs": runs, "max_weight_difference": differences, "activation_ms": cost}

    def plot(path):
        _plot(path, summary, cost, s)
    return Report(columns, rows, finding, results, plot, notes)


def _finding(summary, cost, s) -> str:
    parts = []
    for act in s["activations"]:
        if "max" not in s["pools"]:
            continue
        a, b = summary[f"{act}/max/act-pool"], summary[f"{act}/max/pool-act"]
        d = a["max_weight_difference"]
        if d == 0.0:
            parts.append(f"with {act} under max pooling the two orders give bit-identical trained weights in every "
                         f"seed ({pct(a['test_acc'], 2)} mean test accuracy both ways)")
        else:
            parts.append(f"with {act} under max pooling the two orders' trained weights end at most {d:.2g} apart "
                         f"({pct(a['test_acc'], 2)} and {pct(b['test_acc'], 2)}); the only source of a difference is "
                         f"ties: where the activation saturates, distinct inputs round to the same float32 output, "
                         f"and max pooling may then send the (tiny) gradient to another of the tied positions")
    text = "; ".join(parts) + ". " if parts else ""
    text = text[0].upper() + text[1:] if text else text
    if "max" in s["pools"]:
        text += ("So under max pooling the chapter's placement is a convention, not a necessity: the function is "
                 "the same, and after the pooling the activation does the same work on a quarter of the values (")
        text += ", ".join(f"{act} {cost[f'{act}, before pooling']:.2f} ms before against "
                          f"{cost[f'{act}, after pooling']:.2f} ms after" for act in s["activations"]) + "). "
    if "average" in s["pools"]:
        avg = []
        for act in s["activations"]:
            a, b = summary[f"{act}/average/act-pool"], summary[f"{act}/average/pool-act"]
            apart = (min(a["test_acc_per_seed"]) > max(b["test_acc_per_seed"])
                     or min(b["test_acc_per_seed"]) > max(a["test_acc_per_seed"]))
            avg.append(f"{act} {pct(a['test_acc'])} before pooling against {pct(b['test_acc'])} after"
                       + (" (apart in every seed)" if apart else " (the seeds' ranges overlap)"))
        text += ("Under average pooling the two orders are different networks, since a non-linear activation does "
                 "not commute with a mean: " + "; ".join(avg) + ".")
    return text


def _plot(path, summary, cost, s) -> None:
    from ..viz.mpl import plt, save
    fig, (ax_acc, ax_time) = plt.subplots(1, 2, figsize=(14, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    groups = [(act, pool) for act in s["activations"] for pool in s["pools"]]
    colours = {"act-pool": "tab:blue", "pool-act": "tab:orange"}
    width = 0.38
    lows = [100 * min(m["test_acc_per_seed"]) for m in summary.values()]
    bottom = max(0.0, min(lows) - 5)
    for i, (act, pool) in enumerate(groups):
        for j, order in enumerate(ORDERS):
            m = summary[f"{act}/{pool}/{order}"]
            accs = 100 * np.asarray(m["test_acc_per_seed"])
            mean = accs.mean()
            x = i + (j - 0.5) * width
            ax_acc.bar(x, mean, width, color=colours[order], label=ORDERS[order] if i == 0 else None,
                       yerr=[[mean - accs.min()], [accs.max() - mean]], capsize=3)
            ax_acc.text(x, accs.max() + 0.25, f"{mean:.2f}", ha="center", fontsize=8)
        if pool == "max":
            d = summary[f"{act}/{pool}/pool-act"]["max_weight_difference"]
            ax_acc.annotate("same weights\nboth ways" if d == 0 else f"weights differ\nby ≤ {d:.1g}", (i, bottom),
                            xytext=(0, 6), textcoords="offset points", ha="center", fontsize=8, color="white")
    ax_acc.set_xticks(range(len(groups)), labels=[f"{act}\n{pool} pooling" for act, pool in groups])
    ax_acc.set(ylim=(bottom, 100), ylabel="test accuracy (%)",
               title=f"test accuracy (mean of {plural(s['seeds'], 'seed')}; bars: lowest–highest)")
    ax_acc.legend(loc="upper right")
    ax_acc.grid(alpha=0.3, axis="y")
    names = list(cost)
    ax_time.barh(range(len(names)), [cost[k] for k in names],
                 color=["tab:blue" if "before" in k else "tab:orange" for k in names])
    ax_time.set_yticks(range(len(names)), labels=names)
    ax_time.invert_yaxis()
    ax_time.set(xlabel="milliseconds (forward + backward, batch 64 × 8 maps)",
                title="cost of the activation itself")
    ax_time.grid(alpha=0.3, axis="x")
    fig.suptitle(f"where the activation goes: MNIST, {s['n_train']:,} images × {plural(s['epochs'], 'epoch')}")
    fig.tight_layout()
    save(fig, path)
