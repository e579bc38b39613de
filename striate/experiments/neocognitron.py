"""The neocognitron's experiments: Fukushima's "0"–"4", MNIST at 16×16, and the pictures.

The network itself is :mod:`striate.models.neocognitron`; this module shows it
patterns and reads out what it organised:

* ``run_digits``: the paper's experiment. Organise without labels on the five
  16×16 patterns "0"–"4", then check that each has a UC3 cell of its own and
  that shifted and deformed versions drive the same cell.
* ``run_mnist``: self-organise on MNIST digits shrunk to 16×16 and read the last
  C-layer out with a nearest class mean and a linear classifier, next to the
  same readouts on the raw pixels.
* ``plot_planes`` and ``plot_digits``: the organised S-planes, and which cell
  answers each variant of each pattern.

``striate neocognitron digits|mnist|planes`` runs them from the command line.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..models.neocognitron import Neocognitron
from ..random import get_rng
from ..tensor import Tensor

__all__ = ["DIGIT_PATTERNS", "digit_patterns", "shift", "deform", "run_digits", "run_mnist", "shrink",
           "nearest_mean_accuracy", "linear_accuracy", "load_organised", "plot_planes", "plot_digits"]


# ---------------------------------------------------------------------------
# the paper's experiment: the digits "0"–"4"

#: 16×16 stroke drawings of the digits 0–4 ('#' lit), our own, in the spirit of the paper's figure
DIGIT_PATTERNS = """
................ ................ ................ ................ ................
................ ................ ................ ................ ................
................ ................ ................ ................ ................
......####...... .......#........ .....#####...... .....#####...... .........#......
.....#....#..... ......##........ ....#.....#..... ....#.....#..... ........##......
....#......#.... .......#........ ..........#..... ..........#..... .......#.#......
....#......#.... .......#........ ..........#..... .........#...... ......#..#......
....#......#.... .......#........ .........#...... .......##....... .....#...#......
....#......#.... .......#........ ........#....... .........#...... ....#....#......
....#......#.... .......#........ .......#........ ..........#..... ....########....
....#......#.... .......#........ ......#......... ..........#..... .........#......
.....#....#..... .......#........ .....#.......... ....#.....#..... .........#......
......####...... .......#........ ....#######..... .....#####...... .........#......
................ ................ ................ ................ ................
................ ................ ................ ................ ................
................ ................ ................ ................ ................
"""


def digit_patterns() -> np.ndarray:
    """The five training patterns "0"–"4": (5, 16, 16) float32 of 0 and 1."""
    lines = [line.split() for line in DIGIT_PATTERNS.strip("\n").splitlines()]
    if len(lines) != 16 or any(len(row) != 5 or any(len(g) != 16 for g in row) for row in lines):
        raise RuntimeError("DIGIT_PATTERNS must be 16 lines of five 16-wide glyphs")
    grid = np.array([[[ch == "#" for ch in glyph] for glyph in row] for row in lines])   # (16, 5, 16)
    return grid.transpose(1, 0, 2).astype(np.float32)


def shift(patterns: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move (..., H, W) images by (dy, dx) pixels, filling with 0 (nothing wraps around)."""
    out = np.zeros_like(patterns)
    H, W = patterns.shape[-2:]
    src = patterns[..., max(0, -dy):H - max(0, dy), max(0, -dx):W - max(0, dx)]
    out[..., max(0, dy):H - max(0, -dy), max(0, dx):W - max(0, -dx)] = src
    return out


def deform(patterns: np.ndarray, rng=None, angle: float = 10.0, scale: float = 0.1,
           shear: float = 0.15) -> np.ndarray:
    """Slightly deformed copies of binary (P, H, W) patterns, still binary.

    Each pattern is rotated by up to ±``angle`` degrees, stretched by up to
    ±``scale`` along each axis and sheared by up to ±``shear`` about its centre.
    The warp runs on a 4× finer grid (bilinear), and a pixel of the result is
    lit when 40% of it is ink, so one-pixel strokes stay unbroken.
    """
    rng = get_rng(rng)
    patterns = np.asarray(patterns, dtype=np.float32)
    P, H, W = patterns.shape
    f = 4
    fine = np.repeat(np.repeat(patterns, f, axis=1), f, axis=2)                # (P, fH, fW)
    theta = np.deg2rad(rng.uniform(-angle, angle, P))
    sy, sx = rng.uniform(1 - scale, 1 + scale, (2, P))
    k = rng.uniform(-shear, shear, P)
    # forward map A = R(θ) · [[sy, 0], [k, sx]] in (y, x) order, about the centre;
    # each output point reads the input at A⁻¹ (point − centre) + centre
    cos, sin = np.cos(theta), np.sin(theta)
    A = np.stack([np.stack([cos * sy - sin * k, -sin * sx], -1),
                  np.stack([sin * sy + cos * k, cos * sx], -1)], -2)          # (P, 2, 2)
    inv = np.linalg.inv(A)
    c = (f * H - 1) / 2
    grid = np.stack(np.meshgrid(np.arange(f * H) - c, np.arange(f * W) - c, indexing="ij"))
    src = np.einsum("pij,jhw->pihw", inv, grid) + c                            # (P, 2, fH, fW)
    y0, x0 = np.floor(src[:, 0]).astype(np.intp), np.floor(src[:, 1]).astype(np.intp)
    wy, wx = src[:, 0] - y0, src[:, 1] - x0
    padded = np.pad(fine, ((0, 0), (1, 1), (1, 1)))                           # zeros beyond the edge
    idx = np.arange(P)[:, None, None]

    def at(y, x):
        return padded[idx, np.clip(y + 1, 0, f * H + 1), np.clip(x + 1, 0, f * W + 1)]
    warped = ((at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx) * (1 - wy)
              + (at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx) * wy)
    coarse = warped.reshape(P, H, f, W, f).mean(axis=(2, 4))
    return (coarse >= 0.4).astype(np.float32)


def _responses(model: Neocognitron, patterns: np.ndarray) -> np.ndarray:
    return model.features(patterns[:, None], "uc3")                    # (P, K3)


def run_digits(rounds: int = 20, seed: int = 0, layerwise: bool = True, out_dir=None, progress: bool = False,
               print_fn=print, **model_kwargs) -> dict:
    """The paper's experiment: organise on "0"–"4" without labels, then test shifts and deformations.

    Prints, for each pattern and each variant (shifted by up to 3 pixels, deformed),
    which UC3 cell answers most strongly and how strongly. Writes ``digits.png``
    (and the organised network, ``neocognitron-digits.safetensors``) to ``out_dir``
    when given.

    Returns a dict with the winners per variant and whether each pattern has a
    cell of its own that all its variants drive.
    """
    rng = np.random.default_rng(seed)
    model = Neocognitron(rng=rng, **model_kwargs)
    patterns = digit_patterns()
    t0 = time.perf_counter()
    model.organise(patterns, rounds=rounds, layerwise=layerwise, rng=rng, progress=progress)
    seconds = time.perf_counter() - t0

    variants = {"original": patterns}
    for dy, dx in ((0, 2), (0, -2), (2, 0), (-2, 0), (1, 1), (-3, 1), (2, -3)):
        variants[f"shift ({dy:+d},{dx:+d})"] = shift(patterns, dy, dx)
    for i in range(3):
        variants[f"deformed {i + 1}"] = deform(patterns, rng=rng)
    responses = {name: _responses(model, v) for name, v in variants.items()}
    # the strongest UC3 cell, or −1 where no cell answers at all
    winners = {name: np.where(r.max(axis=1) > 0, r.argmax(axis=1), -1) for name, r in responses.items()}
    own = winners["original"]
    distinct = len(set(own.tolist())) == len(own) and bool((own >= 0).all())
    agree = {name: (w == own) & (w >= 0) for name, w in winners.items()}

    say = print_fn or (lambda *_: None)
    say(f"self-organised on the five patterns, {rounds} rounds per stage, no labels ({seconds:.1f} s); "
        f"planes used per stage: {[int((s.wins > 0).sum()) for s, _ in model.stages]}")
    head = f"{'variant':<16}" + "".join(f"  pattern {d}   " for d in range(len(patterns)))
    say(head)
    for name, r in responses.items():
        cells = "".join((f"  UC3#{w:<2d} {r[p, w]:.2f}" if w >= 0 else "  (none)    ")
                        + (" " if agree[name][p] else "*") for p, w in enumerate(winners[name]))
        say(f"{name:<16}{cells}")
    hits = sum(int(a.sum()) for a in agree.values())
    total = sum(a.size for a in agree.values())
    say(f"each pattern its own UC3 cell: {'yes' if distinct else 'NO'}; variants answered by their "
        f"pattern's cell: {hits}/{total} (* marks the others)")
    result = {"winners": {k: v.tolist() for k, v in winners.items()}, "distinct": distinct,
              "agreement": hits / total, "seconds": seconds, "model": model, "variants": variants,
              "responses": responses}
    if out_dir is not None:
        from ..serialization import save
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        plot_digits(result, out / "digits.png")
        plot_planes(model, out / "planes.png")
        save(model, out / "neocognitron-digits.safetensors", metadata={"config": {"model": model_kwargs}})
        say(f"wrote {out / 'digits.png'}, {out / 'planes.png'}")
    return result


# ---------------------------------------------------------------------------
# real data: MNIST at 16×16


def shrink(images: np.ndarray, size: int = 16) -> np.ndarray:
    """Area-average (N, H, W) images down to (N, size, size), float32 in [0, 1] (uint8 is divided by 255).

    Each output pixel averages the input pixels it overlaps, weighted by the
    overlap (an exact box filter, as two small matrix products).
    """
    x = np.asarray(images)
    x = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32)
    N, H, W = x.shape

    def box(n_in: int, n_out: int) -> np.ndarray:                       # (n_out, n_in), rows sum to 1
        edges_out = np.arange(n_out + 1) * n_in / n_out
        lo, hi = edges_out[:-1, None], edges_out[1:, None]
        i = np.arange(n_in)[None, :]
        overlap = np.clip(np.minimum(hi, i + 1) - np.maximum(lo, i), 0, None)
        return (overlap / overlap.sum(axis=1, keepdims=True)).astype(np.float32)

    return box(H, size) @ x @ box(W, size).T


def _class_means(features: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    sums = np.zeros((classes, features.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, features)
    return sums / np.maximum(np.bincount(labels, minlength=classes), 1)[:, None]


def nearest_mean_accuracy(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray,
                          test_labels: np.ndarray, classes: int = 10) -> float:
    """Accuracy of assigning each test vector to the class whose training mean is nearest (Euclidean)."""
    means = _class_means(train, train_labels, classes)
    d = (test ** 2).sum(1)[:, None] - 2 * test @ means.T + (means ** 2).sum(1)[None, :]
    return float((d.argmin(axis=1) == test_labels).mean())


def linear_accuracy(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray,
                    classes: int = 10, epochs: int = 15, lr: float = 0.01, batch_size: int = 256,
                    seed: int = 0) -> float:
    """Accuracy of a softmax-regression layer (striate's Linear + Adam) trained on frozen features.

    Features are standardised with the training set's mean and spread first.
    """
    from .. import functional as F
    from .. import nn, optim
    mean, std = train.mean(0), train.std(0) + 1e-6
    xtr = ((train - mean) / std).astype(np.float32)
    xte = ((test - mean) / std).astype(np.float32)
    layer = nn.Linear(xtr.shape[1], classes, rng=seed)
    opt = optim.Adam(layer.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(len(xtr))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            loss = F.cross_entropy(layer(Tensor(xtr[idx])), train_labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    pred = layer(Tensor(xte)).data.argmax(axis=1)
    return float((pred == test_labels).mean())


def run_mnist(organise_on: int = 3000, rounds: int = 1, train_size: int = 10000, test_size: int = 10000,
              seed: int = 0, data_dir=None, out_dir=None, progress: bool = False, print_fn=print,
              **model_kwargs) -> dict:
    """Self-organise on MNIST digits shrunk to 16×16 (labels unused), then read UC3 out.

    The network organises on ``organise_on`` training digits (``rounds`` passes per
    stage). Then its UC3 outputs (24 numbers per digit) for ``train_size``
    training and ``test_size`` test digits are classified two ways, each next to
    the same classifier on the raw 16×16 pixels (256 numbers):

    * nearest class mean (Euclidean), and
    * a linear softmax layer trained on the frozen features.

    UC2 (24 planes of 6×6) is reported too: it shows how much of the loss is the
    last stage squeezing everything into 24 cells.
    """
    from ..data import get_dataset
    say = print_fn or (lambda *_: None)
    rng = np.random.default_rng(seed)
    train_set = get_dataset("mnist", train=True, root=data_dir)
    test_set = get_dataset("mnist", train=False, root=data_dir)
    order = rng.permutation(len(train_set.labels))
    pool = order[:max(organise_on, train_size)]
    x_org = shrink(train_set.images[order[:organise_on]])
    x_tr, y_tr = shrink(train_set.images[pool[:train_size]]), train_set.labels[pool[:train_size]]
    x_te, y_te = shrink(test_set.images[:test_size]), test_set.labels[:test_size]

    model = Neocognitron(rng=rng, **model_kwargs)
    t0 = time.perf_counter()
    model.organise(x_org, rounds=rounds, rng=rng, shuffle=True, progress=progress)
    organise_seconds = time.perf_counter() - t0
    say(f"self-organised on {organise_on} MNIST digits (16×16, no labels), {rounds} pass(es) per stage: "
        f"{organise_seconds:.0f} s; planes used per stage: {[int((s.wins > 0).sum()) for s, _ in model.stages]}")

    t0 = time.perf_counter()
    feats = {}
    for layer in ("uc2", "uc3"):
        feats[layer] = (model.features(x_tr[:, None], layer), model.features(x_te[:, None], layer))
    feats["pixels"] = (x_tr.reshape(len(x_tr), -1), x_te.reshape(len(x_te), -1))
    rows: list[dict[str, Any]] = []
    for name, (ftr, fte) in (("raw pixels 16×16", feats["pixels"]), ("UC3 (last C-layer)", feats["uc3"]),
                             ("UC2", feats["uc2"])):
        ncm = nearest_mean_accuracy(ftr, y_tr, fte, y_te)
        lin = linear_accuracy(ftr, y_tr, fte, y_te, seed=seed)
        rows.append({"features": name, "dims": int(ftr.shape[1]), "nearest_mean": ncm, "linear": lin})
    readout_seconds = time.perf_counter() - t0
    say(f"readout trained on {train_size} training digits, tested on {test_size} test digits:")
    say(f"  {'features':<20} {'dims':>5}  {'nearest class mean':>18}  {'linear (softmax)':>16}")
    for row in rows:
        say(f"  {row['features']:<20} {row['dims']:>5}  {100 * row['nearest_mean']:>17.2f}%  "
            f"{100 * row['linear']:>15.2f}%")
    dead = int((feats["uc3"][1].max(axis=1) == 0).sum())
    say(f"  test digits to which no UC3 cell answers at all: {dead} of {test_size}")
    result = {"rows": rows, "organise_seconds": organise_seconds, "readout_seconds": readout_seconds,
              "planes_used": [int((s.wins > 0).sum()) for s, _ in model.stages], "silent_test_digits": dead,
              "model": model}
    if out_dir is not None:
        from ..serialization import save
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        plot_planes(model, out / "planes-mnist.png")
        save(model, out / "neocognitron-mnist.safetensors", metadata={"config": {"model": model_kwargs}})
        (out / "mnist-readout.json").write_text(json.dumps(
            {k: v for k, v in result.items() if k != "model"}, indent=2) + "\n")
        say(f"wrote {out / 'planes-mnist.png'}, {out / 'mnist-readout.json'}")
    return result


# ---------------------------------------------------------------------------
# pictures


def _mosaic(tiles: np.ndarray, columns: int, gap: int = 1, fill: float = np.nan,
            row_gap: int | None = None) -> np.ndarray:
    """(T, h, w) tiles laid out in rows of ``columns``, separated by ``gap`` (between rows
    ``row_gap``) cells of ``fill``; the first tile starts at (row_gap, gap)."""
    T, h, w = tiles.shape
    rg = gap if row_gap is None else row_gap
    rows = -(-T // columns)
    out = np.full((rows * (h + rg) + rg, columns * (w + gap) + gap), fill, dtype=np.float32)
    for t in range(T):                                                  # a few dozen tiles
        i, j = divmod(t, columns)
        y, x = rg + i * (h + rg), gap + j * (w + gap)
        out[y:y + h, x:x + w] = tiles[t]
    return out


def plot_planes(model: Neocognitron, path, title: str = "") -> None:
    """The self-organised S-planes of each stage, as a PNG.

    Top: each US1 plane's 5×5 input weights a (scaled to its own maximum), with
    how often it was reinforced. Bottom: for US2 and US3, how strongly each plane
    reads each plane of the stage below (Σ_ν a, a K_l × K_{l−1} matrix).
    """
    from ..viz.mpl import plt, save
    s1 = model.us1
    K, k = s1.planes, s1.area
    kernels = s1.a.sum(axis=1)                                          # (K, k, k)
    kernels = kernels / np.maximum(kernels.max(axis=(1, 2), keepdims=True), 1e-12)
    columns = (K + 1) // 2
    fig = plt.figure(figsize=(12, 7.5))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 2.6], hspace=0.2)
    ax = fig.add_subplot(grid[0, :])
    cmap = plt.get_cmap("gray_r").with_extremes(bad="#b8cbe0")         # bad (NaN): the gaps between kernels
    ax.imshow(_mosaic(kernels, columns), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    for t in range(K):
        i, j = divmod(t, columns)
        ax.text(1 + j * (k + 1) + k / 2 - 0.5, i * (k + 1) + 0.4, f"{t}: ×{int(s1.wins[t])}",
                ha="center", va="bottom", fontsize=6)
    ax.set_axis_off()
    ax.set_title("US1 planes: 5×5 input weights a (×: times reinforced)", fontsize=10)
    for i, s in enumerate((model.us2, model.us3)):
        ax = fig.add_subplot(grid[1, i])
        ax.imshow(s.a.sum(axis=(2, 3)), cmap="viridis", aspect="auto", interpolation="nearest")
        ax.set_xlabel(f"UC{i + 1} plane read")
        ax.set_ylabel(f"US{i + 2} plane")
        ax.set_title(f"US{i + 2}: Σ_ν a per plane below; {int((s.wins > 0).sum())} of {s.planes} "
                     f"planes reinforced", fontsize=9)
    fig.suptitle(title or "the self-organised S-planes")
    save(fig, path)


def plot_digits(result: dict, path) -> None:
    """Each variant of each digit pattern with the UC3 cell it drives most (green: its pattern's own cell).

    Below the patterns, each variant's UC3 responses: one column per pattern, one row per cell.
    """
    from ..viz.mpl import plt, save
    variants, responses = result["variants"], result["responses"]
    names = list(variants)
    own = responses["original"].argmax(axis=1)
    P, H, W = variants["original"].shape
    V = len(names)
    tiles = np.stack([variants[name][p] for p in range(P) for name in names])        # (P·V, H, W)
    fig = plt.figure(figsize=(1.25 * V + 1, 1.3 * P + 2.6))
    grid = fig.add_gridspec(2, 1, height_ratios=[1.3 * P, 2.2], hspace=0.25)
    ax = fig.add_subplot(grid[0])
    ax.imshow(_mosaic(tiles, V, gap=3, fill=0.0, row_gap=7), cmap="gray_r", vmin=0, vmax=1,
              interpolation="nearest")
    for p in range(P):
        for j, name in enumerate(names):
            r = responses[name][p]
            w = int(r.argmax())
            x0, y0 = 3 + j * (W + 3), 7 + p * (H + 7)
            label = f"UC3#{w} {r[w]:.2f}" if r[w] > 0 else "no answer"
            color = "green" if r[w] > 0 and w == own[p] else "red"
            ax.add_patch(plt.Rectangle((x0 - 1.5, y0 - 1.5), W + 2, H + 2, fill=False, color=color, lw=1.5))
            ax.text(x0 + W / 2, y0 - 2.2, label, ha="center", va="bottom", fontsize=6, color=color)
    for j, name in enumerate(names):
        ax.text(3 + j * (W + 3) + W / 2, -0.5, name, ha="center", va="bottom", fontsize=7)
    ax.set_axis_off()
    ax = fig.add_subplot(grid[1])
    blocks = np.stack([responses[name].T for name in names])                          # (V, K3, P)
    ax.imshow(_mosaic(blocks, V, gap=1), cmap="magma", aspect="auto", vmin=0, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title("UC3 responses of each variant (columns: patterns 0–4, rows: the 24 cells)", fontsize=8)
    fig.suptitle('neocognitron self-organised on "0"–"4" without labels: the strongest UC3 cell per input')
    save(fig, path)


def load_organised(path) -> Neocognitron:
    """A network saved by ``run_digits``/``run_mnist`` (its a, b, c, d and reinforcement counts)."""
    from ..serialization import load
    state, metadata = load(path, with_metadata=True)
    kwargs = dict(((metadata or {}).get("config") or {}).get("model") or {})
    planes = state["us1.a"].shape[0] if "us1.a" in state else 24
    model = Neocognitron(planes=kwargs.pop("planes", planes), **kwargs)
    model.load_state_dict(state)
    return model
