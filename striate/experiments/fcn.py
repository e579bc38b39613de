"""A fully convolutional network: trained on single digits, read on a canvas of many.

The chapter mentions networks without dense layers at the end (fully convolutional
networks) and calls them encoders of the input, with a note to verify. Here one is
built and trained on MNIST: convolutions and pooling, a last 1×1 convolution giving
ten class-score maps, and global average pooling turning each map into one logit.
Having no dense layer, it accepts an input of any size. Applied to a wide canvas with
several digits, and stopped before the global pooling, it gives a map of class
scores: one 10-vector per 8×8-pixel cell, each computed from a 38×38-pixel window of
the canvas.

A 28×28 digit gives a 3×3 score map, which the global average pooling averages;
on the canvas, averaging the map over every 3×3 neighbourhood therefore gives, at
each place, about what the whole classifier would say about the 28×28 window
there (up to what lies beyond that window's edge): a sliding-window classifier whose
windows share all their computation. Both readings are measured: the test accuracy
on 28×28 digits, and how often the map, read at the centre of each digit on a
canvas (one cell, or the 3×3 average), names that digit.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .. import functional as F
from .. import nn
from ..data import RandomTranslate, normalize
from ..data.transforms import MNIST_MEAN, MNIST_STD
from ..tensor import Tensor, no_grad
from ._runner import Report, dataset, pct, plural, preprocess

NAME = "fcn"
SUMMARY = "a fully convolutional net (global average pooling head) trained on MNIST, read on a canvas of digits"
CLAIM = ("networks without dense layers at the end (fully convolutional networks) exist; they encode the "
         "input into a series of numbers")
SIZES = {
    "default": dict(n_train=12000, n_test=5000, epochs=3, lr=0.02, canvases=50, rows=3, cols=6, fill=0.6),
    "quick": dict(n_train=384, n_test=200, epochs=1, lr=0.02, canvases=3, rows=2, cols=3, fill=0.6),
}

STRIDE = 8          # the score map's step in canvas pixels (three 2×2 poolings)
SHIFT = 2           # random shifts in training, up to this many pixels
CELL = 28           # the canvas is a grid of MNIST-sized cells


def budget(size: dict) -> str:
    return (f"MNIST, the first {size['n_train']:,} training images (random shifts of up to {SHIFT} pixels) and "
            f"{size['n_test']:,} test images, {plural(size['epochs'], 'epoch')}, batch 64, SGD lr {size['lr']} with "
            f"Nesterov momentum 0.9; "
            f"{size['canvases']} canvases of {size['rows']}×{size['cols']} cells "
            f"made from test digits")


class FCN(nn.Module):
    """Convolutions only: score maps by a 1×1 convolution, logits by global average pooling.

        c1 conv 3×3 pad 1, 16 maps, ReLU, max pool 2     (N, 16, H/2, W/2)
        c2 conv 3×3 pad 1, 32 maps, ReLU, max pool 2     (N, 32, H/4, W/4)
        c3 conv 3×3 pad 1, 64 maps, ReLU, max pool 2     (N, 64, H/8, W/8)
        c4 conv 3×3 pad 1, 64 maps, ReLU                  (N, 64, H/8, W/8)
        score conv 1×1, 10 maps                           (N, 10, H/8, W/8)   class-score maps
        global average pooling                            (N, 10)             logits

    (sizes rounded down). Each score-map position sees a 38×38 window of the input
    (its receptive field); a 28×28 digit gives a 3×3 map.
    """

    def __init__(self, rng=None):
        super().__init__()
        self.features = nn.Sequential(OrderedDict(
            c1=nn.Conv2d(1, 16, 3, padding=1, rng=rng), act1=nn.ReLU(), pool1=nn.MaxPool2d(2),
            c2=nn.Conv2d(16, 32, 3, padding=1, rng=rng), act2=nn.ReLU(), pool2=nn.MaxPool2d(2),
            c3=nn.Conv2d(32, 64, 3, padding=1, rng=rng), act3=nn.ReLU(), pool3=nn.MaxPool2d(2),
            c4=nn.Conv2d(64, 64, 3, padding=1, rng=rng), act4=nn.ReLU(),
        ))
        self.score = nn.Conv2d(64, 10, 1, rng=rng)

    def score_map(self, x) -> Tensor:
        """(N, 1, H, W) → (N, 10, H/8, W/8): the class scores of every window."""
        return self.score(self.features(x))

    def forward(self, x) -> Tensor:
        return F.flatten(F.global_avg_pool2d(self.score_map(x)))        # (N, 10)


def make_canvases(images: np.ndarray, labels: np.ndarray, count: int, rows: int, cols: int, fill: float,
                  rng: np.random.Generator) -> tuple[np.ndarray, list]:
    """Canvases of rows×cols cells of 28×28 pixels; each cell holds a test digit with probability ``fill``,
    shifted by up to 3 pixels inside its cell.

    Returns (canvases (count, 1, rows·28, cols·28) float32 in [0, 1], digits: per canvas a list of
    (label, centre_y, centre_x, index) with the centre in pixels and the digit's index in ``images``).
    """
    H, W = rows * CELL, cols * CELL
    canvases = np.zeros((count, 1, H, W), dtype=np.float32)
    digits = []
    pick = 0
    for n in range(count):                     # a few dozen canvases of a few digits each: cheap
        placed = []
        for r in range(rows):
            for c in range(cols):
                if rng.uniform() >= fill:
                    continue
                dy, dx = rng.integers(-3, 4, size=2)
                index = pick % len(images)
                y0, x0 = r * CELL + int(dy), c * CELL + int(dx)
                _paste(canvases[n, 0], images[index], y0, x0)
                placed.append((int(labels[index]), y0 + CELL // 2, x0 + CELL // 2, index))
                pick += 1
        digits.append(placed)
    return canvases, digits


def _paste(canvas: np.ndarray, digit: np.ndarray, y0: int, x0: int) -> None:
    """Draw a uint8 digit (28, 28) onto a float canvas (H, W) with its corner at (y0, x0); ink adds as a maximum."""
    H, W = canvas.shape
    ys, xs = slice(max(y0, 0), min(y0 + CELL, H)), slice(max(x0, 0), min(x0 + CELL, W))
    crop = digit[ys.start - y0: ys.stop - y0, xs.start - x0: xs.stop - x0].astype(np.float32) / 255
    canvas[ys, xs] = np.maximum(canvas[ys, xs], crop)


def _alone(images: np.ndarray, digits: list, shape: tuple) -> np.ndarray:
    """One canvas per placed digit, with that digit alone at the same place: (n_digits, 1, H, W)."""
    flat = [d for placed in digits for d in placed]
    out = np.zeros((len(flat), 1) + tuple(shape), dtype=np.float32)
    for i, (_, cy, cx, index) in enumerate(flat):
        _paste(out[i, 0], images[index], cy - CELL // 2, cx - CELL // 2)
    return out


def _cell(pixel: int, size: int) -> int:
    """The map index whose window is centred nearest to canvas pixel ``pixel`` along one axis.

    Map cell i stands for pixels STRIDE·i … STRIDE·i + STRIDE − 1, its window centred at STRIDE·i + 3.5.
    """
    return min(max(int(round((pixel - (STRIDE - 1) / 2) / STRIDE)), 0), size - 1)


def _read(maps: np.ndarray, y: int, x: int) -> np.ndarray:
    """The class scores (10,) at canvas pixel (y, x)."""
    return maps[:, _cell(y, maps.shape[1]), _cell(x, maps.shape[2])]


def run(ctx) -> Report:
    s = ctx.size
    train, test = dataset("mnist", True, s["n_train"]), dataset("mnist", False, s["n_test"])
    model = FCN(rng=ctx.init_rng())
    ctx.plan(1)
    prep = preprocess("mnist", augment=RandomTranslate(SHIFT))
    record = ctx.train("fully convolutional net", model, train, test, epochs=s["epochs"], lr=s["lr"],
                       transform=prep, test_transform=preprocess("mnist"))
    record.pop("step_loss")

    canvases, digits = make_canvases(*test, s["canvases"], s["rows"], s["cols"], s["fill"],
                                     np.random.default_rng([ctx.seed, 3]))
    model.eval()
    with no_grad():
        score = model.score_map(Tensor(normalize(canvases, MNIST_MEAN, MNIST_STD)))         # (n, 10, h, w)
        # the 3×3 average: what global average pooling does to a 28×28 digit's map, at every place
        windows = F.avg_pool2d(score, 3, stride=1, padding=1, count_include_pad=False).data
        # ink within reach of each cell's 3×3 neighbourhood (24×24 pixels): is there anything there?
        n, _, h, w = score.shape
        ink = F.max_pool2d(F.max_pool2d(Tensor(canvases[:, :, :h * STRIDE, :w * STRIDE]), STRIDE), 3,
                           stride=1, padding=1).data[:, 0]                                # (n, h, w)
    maps = score.data
    readings = {"one cell": maps, "3×3 average": windows}
    hits = {k: 0 for k in readings}
    total = 0
    for i, placed in enumerate(digits):
        for label, y, x, _ in placed:
            for k, m in readings.items():
                hits[k] += int(np.argmax(_read(m[i], y, x)) == label)
            total += 1
    map_acc = {k: v / max(total, 1) for k, v in hits.items()}
    # the control: every digit again, alone on a blank canvas at the same place
    alone = _alone(test[0], digits, canvases.shape[2:])
    flat = [d for placed in digits for d in placed]
    alone_hits = 0
    with no_grad():
        for lo in range(0, len(flat), 50):
            x = Tensor(normalize(alone[lo:lo + 50], MNIST_MEAN, MNIST_STD))
            m = F.avg_pool2d(model.score_map(x), 3, stride=1, padding=1, count_include_pad=False).data
            alone_hits += sum(int(np.argmax(_read(m[i], y, x_)) == label)
                              for i, (label, y, x_, _) in enumerate(flat[lo:lo + 50]))
    alone_acc = alone_hits / max(len(flat), 1)
    empty = ink < 0.1
    confident_empty = float((_softmax(windows).max(axis=1)[empty] > 0.9).mean()) if empty.any() else None

    columns = ["measure", "value"]
    rows = [["parameters (no dense layer)", record["parameters"]],
            ["test accuracy on 28×28 digits (%)", round(100 * record["test_acc"], 2)],
            ["canvas size (pixels)", f"{canvases.shape[2]}×{canvases.shape[3]}"],
            ["score map size", f"10×{h}×{w}"],
            ["digits on the canvases", total],
            ["read correctly at their centres, one cell (%)", round(100 * map_acc["one cell"], 2)],
            ["read correctly at their centres, 3×3 average (%)", round(100 * map_acc["3×3 average"], 2)],
            ["the same digits alone on the canvas, 3×3 average (%)", round(100 * alone_acc, 2)],
            ["empty places (no ink within 12 px) with a confident class (%)",
             round(100 * confident_empty, 1) if confident_empty is not None else "no empty places"]]
    best = max(map_acc, key=lambda k: map_acc[k])
    finding = (f"With no dense layer the network reaches {pct(record['test_acc'])} on 28×28 test digits, and the "
               f"same weights run unchanged on {canvases.shape[2]}×{canvases.shape[3]} canvases, giving a "
               f"{h}×{w} map of class scores. Read at each digit's centre, the map names "
               f"{hits['one cell']} of {total} digits correctly from one cell ({pct(map_acc['one cell'])}) and "
               f"{hits['3×3 average']} from the 3×3 average ({pct(map_acc['3×3 average'])}). ")
    if map_acc["3×3 average"] > map_acc["one cell"] + 0.1:
        finding += ("Single cells are unreliable because training only ever asked the average of a digit's 3×3 "
                    "map to be right, never each cell. ")
    gap = record["test_acc"] - map_acc[best]
    if record["test_acc"] < 0.5:
        finding += "The network learnt too little in this budget to judge the map. "
    elif gap < 0.03:
        finding += ("So an FCN is more than an encoder of its input into a series of numbers: it is a classifier "
                    "that slides over any input size, and its output keeps where things are. ")
    else:
        finding += f"The best reading is {100 * gap:.1f} points below classifying centred 28×28 digits. "
        if alone_acc > map_acc["3×3 average"] + 0.03:
            share = (alone_acc - map_acc["3×3 average"]) / max(record["test_acc"] - map_acc["3×3 average"], 1e-9)
            finding += (f"Neighbours explain {'most' if share > 0.5 else 'part'} of that ({share:.0%}): each digit "
                        f"alone at the same place on a blank canvas is read correctly {pct(alone_acc)} of the time, "
                        f"since its windows then no longer see parts of other digits, which the network never met "
                        f"in training; the remaining {100 * (record['test_acc'] - alone_acc):.1f} points separate "
                        f"reading the map at a digit's place from classifying the digit centred in its own frame. ")
        else:
            finding += (f"Neighbours are not the main cause: alone at the same place on a blank canvas the digits are "
                        f"read correctly only {pct(alone_acc)} of the time. ")
    if confident_empty is not None:
        if confident_empty > 0.1:
            finding += (f"Where there is nothing to read the map is not silent: {100 * confident_empty:.0f}% of the "
                        f"empty places get a class with over 90% probability, since a network trained only on "
                        f"digits has no class for 'nothing here'.")
        else:
            finding += (f"Where there is nothing to read the map is mostly unsure: only {100 * confident_empty:.0f}% "
                        f"of the empty places get a class with over 90% probability.")
    notes = ["a cell is read at the position whose window is centred nearest to the digit's centre; the "
             "3×3 average is the map averaged over each cell's neighbourhood, as global average pooling does "
             "for a single 28×28 digit"]
    results = {"training": record, "map_accuracy": map_acc, "alone_accuracy": alone_acc, "digits": total, "hits": hits,
               "confident_empty_places": confident_empty, "canvas_shape": list(canvases.shape[2:]),
               "map_shape": [10, h, w]}

    def plot(path):
        _plot(path, canvases[0, 0], windows[0], digits[0], s)
    return Report(columns, rows, finding, results, plot, notes)


def _softmax(maps: np.ndarray) -> np.ndarray:
    z = maps - maps.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _plot(path, canvas: np.ndarray, maps: np.ndarray, placed: list, s: dict) -> None:
    from matplotlib.colors import ListedColormap

    from ..viz.mpl import plt, save
    probs = _softmax(maps[None])[0]                        # (10, h, w)
    best, conf = probs.argmax(axis=0), probs.max(axis=0)
    H, W = canvas.shape
    h, w = best.shape
    extent = (-0.5, w * STRIDE - 0.5, h * STRIDE - 0.5, -0.5)    # map cells drawn over the pixels they stand for
    palette = plt.get_cmap("tab10")
    fig = plt.figure(figsize=(14, 7.6))
    outer = fig.add_gridspec(2, 1, height_ratios=[1.15, 1], hspace=0.22)
    top = outer[0].subgridspec(1, 2, wspace=0.08)
    ax = fig.add_subplot(top[0, 0])
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1)
    for label, y, x, _ in placed:
        ax.text(x, y - CELL // 2 + 1, str(label), color="tab:blue", fontsize=9, ha="center", va="bottom")
    ax.set_title("the canvas (true labels above the digits)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax = fig.add_subplot(top[0, 1])
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1)
    rgba = ListedColormap([palette(k) for k in range(10)])(best)       # (h, w, 4), one colour per class
    rgba[..., 3] = 0.55 * conf
    ax.imshow(rgba, extent=extent, interpolation="nearest")
    for label, y, x, _ in placed:
        i, j = _cell(y, h), _cell(x, w)
        ok = best[i, j] == label
        ax.text(x, y, str(best[i, j]), color="black" if ok else "red", fontsize=13, fontweight="bold",
                ha="center", va="center")
    ax.set_title("predicted class per map cell, 3×3 average (colour; opacity = confidence);\n"
                 "the class read at each digit's centre in black (red: wrong)", fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    handles = [plt.Rectangle((0, 0), 1, 1, color=palette(k)) for k in range(10)]
    ax.legend(handles, [str(k) for k in range(10)], ncol=10, loc="upper center", bbox_to_anchor=(0.5, -0.02),
              fontsize=8, frameon=False, handlelength=1)
    bottom = outer[1].subgridspec(2, 5, hspace=0.3, wspace=0.08)
    for k in range(10):
        ax = fig.add_subplot(bottom[k // 5, k % 5])
        ax.imshow(probs[k], cmap="magma", vmin=0, vmax=1, extent=extent, interpolation="nearest")
        ax.set_title(f"P(class {k})", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"a fully convolutional net trained on 28×28 digits, applied to a {H}×{W} canvas: "
                 f"a {h}×{w} map of class probabilities (3×3 average)")
    save(fig, path)
