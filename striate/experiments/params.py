"""How many parameters: dense layers against convolutions, and the real models.

The chapter says connecting every pixel to every neuron takes a great many
weights, while a convolution needs only its kernel's, and that LeNet-5 had 60,000
trainable parameters and AlexNet about 60 million. Here the arithmetic is done
for three inputs, each layer is also built and its parameters counted, and the
real models are counted and, where they fit this budget, trained on MNIST.

For an input H×W×C and K output maps or units, with k×k kernels:

    convolution, K kernels:              K·(k·k·C + 1)           independent of H and W
    dense layer, K units:                K·(H·W·C + 1)
    dense layer giving the convolution's whole output (K·OH·OW units, one per output value):
                                         K·OH·OW·(H·W·C + 1)

The last is what a convolution's output would cost without its two assumptions,
locality (a unit sees a k×k window) and weight sharing (every position uses the
same kernel).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import models, nn
from ..checks import conv_output_size
from ._runner import Report, dataset, pct, plural, points, preprocess

NAME = "params"
SUMMARY = "parameter counts of dense and convolutional layers for the same input, and of MLP, LeNet-5, AlexNet"
CLAIM = ("connecting every pixel to every neuron takes a great many parameters, a convolution only its "
         "kernels'; LeNet-5 had about 60,000 trainable parameters and AlexNet about 60 million")
SIZES = {
    "default": dict(n_train=12000, n_test=5000, epochs=2, lr=0.02, lr_overrides={"lenet5": 0.005},
                    build_limit=20_000_000, train=("mlp", "lenet5", "lenet5-modern", "alexnet-small")),
    "quick": dict(n_train=256, n_test=200, epochs=1, lr=0.02, lr_overrides={"lenet5": 0.005},
                  build_limit=2_000_000, train=("mlp", "lenet5-modern")),
}

#: (description, H, W, C, K, kernel, stride)
LAYERS = (
    ("the chapter's 20×20 patch, one 3×3 kernel", 20, 20, 1, 1, 3, 1),
    ("MNIST 28×28×1, LeNet's C1 (6 maps, 5×5)", 28, 28, 1, 6, 5, 1),
    ("CIFAR-size 32×32×3, 6 maps, 5×5", 32, 32, 3, 6, 5, 1),
    ("ImageNet 227×227×3, AlexNet's conv1 (96 maps, 11×11, stride 4)", 227, 227, 3, 96, 11, 4),
)


def budget(size: dict) -> str:
    overrides = "".join(f", {k} {v}" for k, v in size["lr_overrides"].items() if k in size["train"])
    return (f"the counts are exact; the models {', '.join(size['train'])} are trained on the first "
            f"{size['n_train']:,} MNIST training images for {plural(size['epochs'], 'epoch')} (SGD lr {size['lr']}"
            f"{overrides}, Nesterov momentum 0.9, batch 64) and tested on {size['n_test']:,} test images")


def layer_counts(H: int, W: int, C: int, K: int, k: int, stride: int) -> dict:
    """The three counts of the module docstring, and the convolution's output size."""
    OH, OW = conv_output_size(H, k, stride, 0), conv_output_size(W, k, stride, 0)
    return {"conv": K * (k * k * C + 1), "dense_k": K * (H * W * C + 1),
            "dense_full": K * OH * OW * (H * W * C + 1), "output": (K, OH, OW)}


def _checked(counts: dict, H, W, C, K, k, stride, limit: int) -> dict:
    """Build the layers whose size is below ``limit`` parameters and compare their counts with the formulas."""
    checked: dict[str, Any] = {}
    builders = {"conv": lambda: nn.Conv2d(C, K, k, stride=stride, rng=0),
                "dense_k": lambda: nn.Linear(H * W * C, K, rng=0),
                "dense_full": lambda: nn.Linear(H * W * C, int(np.prod(counts["output"])), rng=0)}
    for key, build in builders.items():
        if counts[key] > limit:
            checked[key] = None                       # arithmetic only: too big to build here
            continue
        n = build().num_parameters()
        if n != counts[key]:
            raise RuntimeError(f"params: the {key} layer for {H}×{W}×{C} has {n:,} parameters, "
                               f"the formula says {counts[key]:,}")
        checked[key] = True
    return checked


def _split(model) -> dict:
    """Trainable parameters by kind of layer: convolutions, dense layers, the rest."""
    kinds = {name: type(m).__name__ for name, m in model.named_modules()}
    out = {"conv": 0, "dense": 0, "other": 0}
    for name, p in model.named_parameters():
        owner = kinds.get(name.rpartition(".")[0], "")
        kind = "conv" if "Conv" in owner else "dense" if owner == "Linear" else "other"
        out[kind] += int(p.data.size)
    return out


def _alexnet_split() -> dict:
    """AlexNet's counts from its layer shapes (its 61 million weights are not built)."""
    from ..models.alexnet import AlexNet
    counts = AlexNet.count_parameters()
    conv = sum(v for k, v in counts.items() if k.startswith("conv"))
    dense = sum(v for k, v in counts.items() if k.startswith("fc"))
    return {"conv": conv, "dense": dense, "total": counts["total"]}


def run(ctx) -> Report:
    s = ctx.size
    layer_results = []
    rows = []
    for text, H, W, C, K, k, stride in LAYERS:
        c = layer_counts(H, W, C, K, k, stride)
        checked = _checked(c, H, W, C, K, k, stride, s["build_limit"])
        layer_results.append({"input": [H, W, C], "maps": K, "kernel": k, "stride": stride, **c, "built": checked})
        rows.append([text, c["conv"], c["dense_k"], round(c["dense_k"] / c["conv"], 1), c["dense_full"],
                     "×".join(map(str, c["output"]))])
    columns = ["input and layer", "conv parameters", "dense, same number of units", "dense / conv",
               "dense, one unit per conv output value", "conv output (K×OH×OW)"]

    # the real models
    from .. import models as registry
    available = [n for n in s["train"] if n in registry.names()]
    train, test = dataset("mnist", True, s["n_train"]), dataset("mnist", False, s["n_test"])
    ctx.plan(len(available))
    model_rows: list[list] = []
    model_results: dict[str, dict] = {}
    for name in ("mlp", "lenet5", "lenet5-modern", "alexnet-small"):
        if name not in registry.names():
            continue
        model = models.get(name, rng=ctx.init_rng())
        split = _split(model)
        entry = {"parameters": int(model.num_parameters()), **split, "test_acc": None}
        if name in available:
            pad = model.input_shape[-1] if model.input_shape[-1] != 28 else None
            r = ctx.train(name, model, train, test, epochs=s["epochs"], lr=s["lr_overrides"].get(name, s["lr"]),
                          transform=preprocess("mnist", pad))
            entry.update(test_acc=r["test_acc"], seconds=r["seconds"], diverged=r["diverged"])
        model_results[name] = entry
        model_rows.append([name, entry["parameters"], split["conv"], split["dense"], split["other"],
                           round(100 * entry["test_acc"], 2) if entry["test_acc"] is not None else "not trained"])
    if "alexnet" in registry.names():
        split = _alexnet_split()
        model_results["alexnet"] = {"parameters": split["total"], "conv": split["conv"], "dense": split["dense"],
                                    "other": 0, "test_acc": None}
        model_rows.append(["alexnet (227×227×3, not built)", split["total"], split["conv"], split["dense"], 0,
                           "ImageNet: not trained here"])
    model_columns = ["model", "parameters", "in convolutions", "in dense layers", "other", "MNIST test acc. (%)"]

    finding = _finding(layer_results, model_results)
    notes = ["conv: K·(k·k·C + 1); dense with K units: K·(H·W·C + 1); one dense unit per conv output value: "
             "K·OH·OW·(H·W·C + 1). Every layer under "
             f"{s['build_limit']:,} parameters was also built and counted, and matched the formula",
             "LeNet-5 here is the paper's (C3's partial connection table, trainable subsampling, RBF output); "
             "'other' counts its subsampling coefficients and biases"]
    if "lenet5" in s["lr_overrides"] and "lenet5" in available:
        notes.append(f"the paper's LeNet-5 is trained at lr {s['lr_overrides']['lenet5']}: at {s['lr']} (constant, "
                     f"no augmentation) its loss climbed past 40 within the first epoch in a trial")
    results = {"layers": layer_results, "models": model_results}

    def plot(path):
        _plot(path, layer_results, model_results)
    return Report(columns, rows, finding, results, plot, notes,
                  more_tables=[("the real models (trainable parameters):", model_columns, model_rows)])


def _finding(layers: list, models_: dict) -> str:
    mnist = next(x for x in layers if x["input"] == [28, 28, 1])
    big = next(x for x in layers if x["input"] == [227, 227, 3])
    text = (f"On a 28×28 digit, 6 dense units cost {mnist['dense_k'] / mnist['conv']:.0f}× the parameters of 6 "
            f"5×5 kernels ({mnist['dense_k']:,} against {mnist['conv']:,}), and a dense layer producing the "
            f"convolution's whole output would need {mnist['dense_full']:,}; at AlexNet's input the ratio for the "
            f"same number of units is {big['dense_k'] / big['conv']:.0f}× and the full dense equivalent "
            f"{big['dense_full'] / 1e9:.1f} billion. ")
    if "lenet5" in models_:
        text += f"LeNet-5 has exactly {models_['lenet5']['parameters']:,} trainable parameters"
        if "alexnet" in models_:
            a = models_["alexnet"]
            text += (f" and AlexNet {a['parameters']:,}, as the chapter says; "
                     f"yet {a['dense'] / a['parameters']:.0%} of AlexNet's are in its three dense layers, "
                     f"so the 'few parameters' of a CNN are true of its "
                     f"convolutions, not of the whole network. ")
        else:
            text += ". "
    trained = {k: v for k, v in models_.items() if v.get("test_acc") is not None}
    if "mlp" in trained and len(trained) > 1:
        cnns = {k: v for k, v in trained.items() if k != "mlp"}
        m = trained["mlp"]
        text += (f"Trained on the same small budget, the MLP ({m['parameters']:,} parameters) reaches "
                 f"{pct(m['test_acc'])}, " + ", ".join(f"{k} ({v['parameters']:,}) {pct(v['test_acc'])}"
                                                       for k, v in cnns.items()) + ": ")
        small = {k: v for k, v in cnns.items() if v["parameters"] < m["parameters"]}
        if small:
            k = max(small, key=lambda n: small[n]["test_acc"])
            v = small[k]
            text += (f"{k}, with {m['parameters'] / v['parameters']:.1f}× fewer parameters than the MLP, is "
                     f"{points(v['test_acc'], m['test_acc'])} it. "
                     if v["test_acc"] != m["test_acc"] else f"{k} matches the MLP with fewer parameters. ")
        if "lenet5-modern" in models_ and models_["lenet5-modern"]["parameters"]:
            lm = models_["lenet5-modern"]
            text += (f"Even in the modern LeNet-5, {lm['dense'] / lm['parameters']:.0%} of the parameters sit in its "
                     f"dense layers.")
    return text


def _plot(path, layers: list, models_: dict) -> None:
    from ..viz.mpl import plt, save
    fig, (ax_l, ax_m) = plt.subplots(1, 2, figsize=(15, 5.2), gridspec_kw={"width_ratios": [3, 2]})
    names = ["20×20×1\n1 kernel 3×3", "28×28×1\n6 maps 5×5", "32×32×3\n6 maps 5×5", "227×227×3\n96 maps 11×11/4"]
    x = np.arange(len(layers))
    width = 0.27
    series = (("conv", "convolution", "tab:blue"), ("dense_k", "dense, same number of units", "tab:orange"),
              ("dense_full", "dense, one unit per conv output value", "tab:red"))
    for i, (key, label, colour) in enumerate(series):
        values = [layer[key] for layer in layers]
        ax_l.bar(x + (i - 1) * width, values, width, color=colour, label=label)
        for xi, v in zip(x, values):
            ax_l.text(xi + (i - 1) * width, v * 1.3, _short(v), ha="center", fontsize=7, rotation=90, va="bottom")
    ax_l.set_yscale("log")
    ax_l.set_ylim(1, 1e13)
    ax_l.set_xticks(x, labels=names[:len(layers)], fontsize=8)
    ax_l.set(ylabel="parameters (log scale)", title="one layer, the same input")
    ax_l.legend(fontsize=8, loc="upper left")
    ax_l.grid(alpha=0.3, axis="y")
    labels = list(models_)
    y = np.arange(len(labels))
    h = 0.38
    for i, (key, label, colour) in enumerate((("conv", "in convolutions", "tab:blue"),
                                              ("dense", "in dense layers", "tab:orange"))):
        values = [max(models_[k][key], 0) for k in labels]
        ax_m.barh(y + (i - 0.5) * h, values, h, color=colour, label=label)
        for yi, v in zip(y, values):
            if v:
                ax_m.text(v * 1.15, yi + (i - 0.5) * h, f"{v:,}", va="center", fontsize=7)
    for row, k in enumerate(labels):
        acc = models_[k].get("test_acc")
        note = f"total {models_[k]['parameters']:,}" + (f", {pct(acc)} on MNIST" if acc is not None else "")
        ax_m.text(8e11, row, note, va="center", ha="right", fontsize=8)
    ax_m.set_yticks(y, labels=labels)
    ax_m.invert_yaxis()
    ax_m.set_xscale("log")
    ax_m.set_xlim(1e2, 1e12)
    ax_m.set(xlabel="trainable parameters (log scale)", title="the real models")
    ax_m.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    ax_m.grid(alpha=0.3, axis="x")
    fig.suptitle("parameter counts: dense layers against convolutions")
    fig.tight_layout()
    save(fig, path)


def _short(n: int) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return str(n)
