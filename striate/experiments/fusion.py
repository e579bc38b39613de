"""Channel fusion on colour input: sum, concatenation, product.

The chapter says a colour image gets one kernel slice per channel and the three
responses are fused, most often by summing them, sometimes by concatenating them
or multiplying them element-wise. Here that is tested on a colour task built from
real digits: every MNIST digit is painted in a random foreground colour on a
random background colour (at least 0.5 apart in RGB, so the digit is always
visible in colour, though sometimes barely in brightness), and the label is the
digit. The same small CNN is trained with each fusion in its first layer
(``nn.FusedConv2d``), and, as a control, on the grey (luminance) version of the
same images.

What each fusion can do in the first layer: "sum" is the ordinary convolution, whose
kernel may weigh the channels against each other (red minus green: colour
contrast); "concat" keeps the three responses apart (a depthwise convolution), so
channels only meet in the second layer, which then has three times the input maps;
"product" multiplies the three responses, a conjunction that is large only where
all three planes respond.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..data import Normalize
from ._nets import small_cnn
from ._runner import Report, accuracy, dataset, pct, plural, points, smooth

NAME = "fusion"
SUMMARY = "sum, concat and product channel fusion in the first layer, on digits painted in random colours"
CLAIM = ("for colour images each kernel has one slice per channel and the per-channel results are fused, "
         "most commonly by summing; concatenation or element-wise multiplication are alternatives")
SIZES = {
    "default": dict(n_train=6000, n_test=5000, epochs=3, lr=0.02, kernels=8, seeds=3,
                    fusions=("sum", "concat", "product"), grey=True),
    "quick": dict(n_train=256, n_test=200, epochs=1, lr=0.02, kernels=4, seeds=2,
                  fusions=("sum", "concat", "product"), grey=True),
}

MIN_DISTANCE = 0.5          # least RGB distance between a digit's colour and its background's
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)      # ITU-R 601 luminance weights


def budget(size: dict) -> str:
    return (f"colour digits made from the first {size['n_train']:,} MNIST training and {size['n_test']:,} test "
            f"images, {plural(size['epochs'], 'epoch')}, batch 64, SGD lr {size['lr']} with Nesterov momentum "
            f"0.9; {size['kernels']} first-layer kernels 5×5×3; each run repeated with "
            f"{plural(size['seeds'], 'seed')}")


def colourise(images: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paint grey digits: foreground and background colours drawn uniformly in the RGB cube.

    Args:
        images: (N, 28, 28) uint8, ink bright on black.
        rng: the generator for the colours.

    Returns:
        (x, fg, bg): x (N, 3, 28, 28) float32 in [0, 1], ``bg·(1 − ink) + fg·ink``; the colours (N, 3).
        Pairs closer than MIN_DISTANCE are drawn again (whole rounds, not per image).
    """
    n = len(images)
    fg = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    bg = rng.uniform(0, 1, (n, 3)).astype(np.float32)
    close = np.linalg.norm(fg - bg, axis=1) < MIN_DISTANCE
    while close.any():
        k = int(close.sum())
        fg[close] = rng.uniform(0, 1, (k, 3))
        bg[close] = rng.uniform(0, 1, (k, 3))
        close = np.linalg.norm(fg - bg, axis=1) < MIN_DISTANCE
    ink = images.astype(np.float32)[:, None] / 255                    # (N, 1, 28, 28)
    x = bg[:, :, None, None] * (1 - ink) + fg[:, :, None, None] * ink
    return x.astype(np.float32), fg, bg


def to_grey(x: np.ndarray) -> np.ndarray:
    """(N, 3, H, W) RGB → (N, 1, H, W) luminance."""
    return np.tensordot(_LUMA, x, axes=([0], [1]))[:, None].astype(np.float32)


def _normaliser(x: np.ndarray) -> Normalize:
    """Per-channel mean and standard deviation of the training images."""
    return Normalize(x.mean(axis=(0, 2, 3)).tolist(), x.std(axis=(0, 2, 3)).tolist())


LOW_CONTRAST = 0.1          # a luminance difference below this counts as "low contrast"


def run(ctx) -> Report:
    s = ctx.size
    train_digits, test_digits = dataset("mnist", True, s["n_train"]), dataset("mnist", False, s["n_test"])
    x_train, fg, bg = colourise(train_digits[0], np.random.default_rng([ctx.seed, 1]))
    x_test, fg_test, bg_test = colourise(test_digits[0], np.random.default_rng([ctx.seed, 2]))
    train, test = (x_train, train_digits[1]), (x_test, test_digits[1])
    grey_train, grey_test = (to_grey(x_train), train[1]), (to_grey(x_test), test[1])
    # the digits whose brightness barely differs from their background's
    low_train = float((np.abs((fg - bg) @ _LUMA) < LOW_CONTRAST).mean())
    low_test = np.abs((fg_test - bg_test) @ _LUMA) < LOW_CONTRAST

    variants = list(s["fusions"]) + (["grey"] if s["grey"] else [])
    ctx.plan(len(variants) * s["seeds"])
    runs, info, first_rms = {}, {}, {}
    K = s["kernels"]
    for v in variants:
        data_train, data_test = (grey_train, grey_test) if v == "grey" else (train, test)
        norm = _normaliser(data_train[0])
        for k in range(s["seeds"]):
            rng = ctx.init_rng(k)
            if v == "grey":
                model = small_cnn(rng, in_channels=1, widths=(K, 16))
                label = "grey (luminance) input, ordinary convolution"
            else:
                model = small_cnn(rng, in_channels=3, widths=(K, 16), first=nn.FusedConv2d(3, K, 5, fusion=v, rng=rng))
                label = f"{v} fusion"
            if k == 0:
                first_rms[v] = _first_layer_rms(model, norm(data_train[0][:256], None))
            r = ctx.train(f"{label}, seed {k + 1}", model, data_train, data_test, epochs=s["epochs"], lr=s["lr"],
                          transform=norm, repeat=k)
            x_low = norm(data_test[0][low_test], None)
            r["low_contrast_acc"] = accuracy(model, x_low, data_test[1][low_test]) if low_test.any() else None
            r["steps_to_loss_1"] = _steps_below(r["step_loss"], 1.0)
            r["step_loss"] = [round(x, 5) for x in r["step_loss"]]
            runs[f"{v}/{k}"] = r
        info[v] = {"maps": int(model.c1.out_channels), "first_layer_parameters": int(model.c1.num_parameters()),
                   "parameters": int(model.num_parameters())}

    def mean(v, key):
        values = [runs[f"{v}/{k}"][key] for k in range(s["seeds"])]
        values = [x for x in values if x is not None]
        return float(np.mean(values)) if values else None

    summary = {v: {**info[v], "first_layer_rms_at_init": first_rms[v], "test_acc": mean(v, "test_acc"),
                   "low_contrast_acc": mean(v, "low_contrast_acc"), "steps_to_loss_1": mean(v, "steps_to_loss_1"),
                   "test_acc_per_seed": [runs[f"{v}/{k}"]["test_acc"] for k in range(s["seeds"])]}
               for v in variants}
    columns = ["first layer", "input", "first-layer maps", "first-layer parameters", "total parameters",
               "test acc. (%)", "lowest–highest", "low-contrast digits (%)", "steps to loss < 1"]
    rows = []
    for v in variants:
        m = summary[v]
        accs = m["test_acc_per_seed"]
        rows.append([f"{v} fusion" if v != "grey" else "ordinary conv", "grey" if v == "grey" else "colour",
                     m["maps"], m["first_layer_parameters"], m["parameters"], round(100 * m["test_acc"], 2),
                     f"{100 * min(accs):.2f}–{100 * max(accs):.2f}",
                     round(100 * m["low_contrast_acc"], 2) if m["low_contrast_acc"] is not None else None,
                     round(m["steps_to_loss_1"]) if m["steps_to_loss_1"] is not None else "never"])
    finding = _finding(summary, s, int(low_test.sum()))
    notes = [f"{low_train:.0%} of the training digits (and {int(low_test.sum())} of the {len(low_test):,} test digits) "
             f"differ from their background by less than {LOW_CONTRAST} in luminance, on a 0–1 scale; the "
             f"'low-contrast digits' column is the accuracy on those test digits",
             f"means over {plural(s['seeds'], 'seed')} (initial weights and data order); 'steps to loss < 1': the "
             f"first step at which the 20-step average training loss is below 1"]
    results = {"summary": summary, "runs": runs, "low_contrast_share_train": low_train,
               "low_contrast_test_digits": int(low_test.sum()), "min_rgb_distance": MIN_DISTANCE}

    def plot(path):
        _plot(path, x_train[:10], train[1][:10], runs, summary, variants, s)
    return Report(columns, rows, finding, results, plot, notes)


def _first_layer_rms(model, x) -> float:
    """Root mean square of the first layer's output on x, as initialised."""
    from ..tensor import Tensor, no_grad
    with no_grad():
        return float(np.sqrt(np.mean(model.c1(Tensor(x)).data ** 2)))


def _steps_below(losses, target: float, window: int = 20):
    from ._runner import smooth
    below = np.nonzero(smooth(losses, window) < target)[0]
    return int(below[0]) + 1 if len(below) else None


def _finding(summary: dict, s: dict, n_low: int) -> str:
    fusions = [v for v in summary if v != "grey"]
    ranked = sorted(fusions, key=lambda v: -summary[v]["test_acc"])
    text = (f"Mean test accuracy over {plural(s['seeds'], 'seed')}: "
            + ", ".join(f"{v} fusion {pct(summary[v]['test_acc'])}" for v in ranked))
    if "grey" in summary:
        text += f"; the grey control {pct(summary['grey']['test_acc'])}"
    text += ". "

    def apart(a: str, b: str) -> bool:            # every seed of a above every seed of b
        return min(summary[a]["test_acc_per_seed"]) > max(summary[b]["test_acc_per_seed"])

    if "sum" in summary:
        best = ranked[0]
        if best == "sum":
            text += "Summing, the chapter's 'most common' fusion, is also the best here. "
        else:
            ratio = summary[best]["parameters"] / summary["sum"]["parameters"]
            text += (f"{best.capitalize()} fusion beats summing by "
                     f"{100 * (summary[best]['test_acc'] - summary['sum']['test_acc']):.1f} points"
                     + (" in every seed" if apart(best, "sum") else " (the seeds' ranges overlap)")
                     + (f", with {ratio:.2f}× the parameters (its second layer reads "
                        f"{summary[best]['maps']} maps instead of {summary['sum']['maps']}). " if ratio != 1 else ". "))
    if "product" in summary and "sum" in summary:
        p, q = summary["product"], summary["sum"]
        text += f"Product fusion is {points(p['test_acc'], q['test_acc'])} summing"
        if p["steps_to_loss_1"] is not None and q["steps_to_loss_1"] is not None \
                and p["steps_to_loss_1"] > 1.3 * q["steps_to_loss_1"]:
            text += (f"; it learns late: its loss takes {p['steps_to_loss_1']:.0f} steps to fall below 1, against "
                     f"{q['steps_to_loss_1']:.0f} for summing")
            if p["first_layer_rms_at_init"] < 0.5 * q["first_layer_rms_at_init"]:
                text += (f" (a product of three small responses starts small: its first layer's output has an RMS "
                         f"of {p['first_layer_rms_at_init']:.3f} at initialisation, against "
                         f"{q['first_layer_rms_at_init']:.3f} for summing)")
            text += ". "
        else:
            text += ". "
    if "grey" in summary and "sum" in summary:
        g, c = summary["grey"], summary["sum"]
        text += (f"Colour against grey: {pct(c['test_acc'])} against {pct(g['test_acc'])} overall, and on the "
                 f"{n_low} test digits whose brightness barely differs from their background "
                 f"{pct(c['low_contrast_acc'])} against {pct(g['low_contrast_acc'])}")
        text += (": colour helps exactly where brightness fails, but a CNN reads even faint brightness contrast "
                 "well, so the overall gain is small." if c["low_contrast_acc"] > g["low_contrast_acc"] + 0.02
                 else ": a CNN reads even faint brightness contrast, so colour adds little here.")
    return text.strip()


def _plot(path, examples, labels, runs, summary, variants, s) -> None:
    from ..viz.mpl import plt, save
    fig = plt.figure(figsize=(13, 7.5))
    outer = fig.add_gridspec(2, 1, height_ratios=[1.5, 3], hspace=0.3)
    top = outer[0].subgridspec(2, len(examples), hspace=0.05, wspace=0.05)
    grey = to_grey(examples)
    for i in range(len(examples)):
        for r, (img, cmap) in enumerate(((examples[i].transpose(1, 2, 0), None), (grey[i, 0], "gray"))):
            ax = fig.add_subplot(top[r, i])
            ax.imshow(img, cmap=cmap, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(str(labels[i]), fontsize=9)
            if i == 0:
                ax.set_ylabel("colour" if r == 0 else "grey", fontsize=9)
    bottom = outer[1].subgridspec(1, 2, wspace=0.3)
    colours = {"sum": "tab:blue", "concat": "tab:orange", "product": "tab:red", "grey": "tab:gray"}
    ax = fig.add_subplot(bottom[0, 0])
    window = 20
    for v in variants:
        curves = [runs[f"{v}/{k}"]["step_loss"] for k in range(s["seeds"])]
        n = min(len(c) for c in curves)
        ax.plot(smooth(np.mean([c[:n] for c in curves], axis=0), window), color=colours[v],
                label=f"{v} fusion" if v != "grey" else "grey")
    ax.set(xlabel="training step (batch of 64)",
           ylabel=f"training loss ({window}-step average, mean of {plural(s['seeds'], 'seed')})",
           title="training curves", ylim=(0, 2.5))
    ax.grid(alpha=0.3)
    ax.legend()
    ax = fig.add_subplot(bottom[0, 1])
    per_seed = [100 * np.asarray(summary[v]["test_acc_per_seed"]) for v in variants]
    accs = [a.mean() for a in per_seed]
    low = [100 * summary[v]["low_contrast_acc"] if summary[v]["low_contrast_acc"] is not None else 0 for v in variants]
    names = [f"{v}\n{summary[v]['parameters']:,} params\n({summary[v]['first_layer_parameters']:,} in layer 1)"
             for v in variants]
    x = np.arange(len(variants))
    errors = [[a - p.min() for a, p in zip(accs, per_seed)], [p.max() - a for a, p in zip(accs, per_seed)]]
    ax.bar(x - 0.2, accs, 0.4, color=[colours[v] for v in variants], yerr=errors, capsize=3, label="all test digits")
    ax.bar(x + 0.2, low, 0.4, color=[colours[v] for v in variants], alpha=0.45, hatch="//",
           label=f"low-contrast digits (luminance gap < {LOW_CONTRAST})")
    ax.set_xticks(x, labels=names, fontsize=8)
    for i, (a, b) in enumerate(zip(accs, low)):
        ax.text(i - 0.2, a + errors[1][i] + 0.6, f"{a:.1f}", ha="center", fontsize=8)
        ax.text(i + 0.2, b + 0.6, f"{b:.1f}", ha="center", fontsize=8)
    ax.set(ylim=(max(0.0, min(accs + low) - 10), 100), ylabel="test accuracy (%)",
           title=f"test accuracy (mean of {plural(s['seeds'], 'seed')}; bars: lowest–highest)")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"channel fusion on colour digits ({s['n_train']:,} images × {plural(s['epochs'], 'epoch')}): "
                 f"examples in colour and in grey, then training")
    save(fig, path)
