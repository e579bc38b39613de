"""Step-by-step explanations: every number of a small example, as text and as a picture.

Each topic takes a small input (the chapter's own example by default, or one you
give), runs it through striate's ops and writes down each step::

    conv       a kernel sliding over an image: each window, its products, their sum;
               the output-size formula; then pooling of the feature map
    pool       max, average, sum, min and L2 pooling of one input, and where each
               sends its gradient
    channels   a colour image, one kernel slice per channel, and the three fusions
               (sum, concat, product) with their shapes
    layers     a LeNet-5-style stack: the shape after every layer and the arithmetic
               of every parameter count
    dropout    the random mask on a small batch, training and evaluation
    batchnorm  a small batch normalised channel by channel, and the running statistics
    winograd   one 4×4 tile and a 3×3 kernel: a 2×2 output with 16 multiplications
               instead of 36 (Winograd's F(2×2, 3×3), which conv2d uses for wide layers)

>>> from striate.explain import explain
>>> e = explain("conv")
>>> print(e.text)
Convolution, step by step: a 5×5 digit "0", kernel oblique (3×3), stride 1, padding 0
...
>>> e.arrays["pooled"].ravel().tolist()
[3.0, 2.0, 2.0, 3.0]
>>> e.save_png("conv.png")          # writes conv.png here  # doctest: +SKIP

The numbers come from the library's own ops (``F.conv2d``, ``F.max_pool2d``, ...,
in float64), so an explanation is also a check that the op does what the text
says; the tests compare them with PyTorch. The windows and the step-by-step sums
come from the textbook ops of :mod:`striate.functional.reference`, the same
arithmetic the text writes out.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import filters
from . import functional as F
from .checks import nonnegative_pair, normalize_name, positive_pair
from .functional import reference as R
from .tensor import Tensor, no_grad
from .viz.images import Matrix, Picture, Symbol, format_number, plot_rows, rows_size

Item = Matrix | Picture | Symbol
Row = tuple[str, list[Item]]          # a caption and the items drawn side by side under it

__all__ = ["Explanation", "explain", "TOPICS", "DIGIT_ZERO", "POOL_INPUT", "format_matrix",
           "explain_conv", "explain_pool", "explain_channels", "explain_layers", "explain_dropout",
           "explain_batchnorm"]

#: The chapter's example input: a 5×5 grayscale digit "0" (1 = ink).
DIGIT_ZERO = np.array([[0, 0, 1, 0, 0],
                       [0, 1, 0, 1, 0],
                       [1, 0, 0, 0, 1],
                       [0, 1, 0, 1, 0],
                       [0, 0, 1, 0, 0]], dtype=np.float64)

#: The default input of ``pool``: no two equal values in a window, some negative.
POOL_INPUT = np.array([[1, 3, 2, 1],
                       [4, 2, 0, 5],
                       [0, -1, 3, 2],
                       [2, 1, -2, 4]], dtype=np.float64)


@dataclass
class Explanation:
    """One explained example.

    Attributes:
        topic: "conv", "pool", ...
        title: one line.
        text: the whole explanation, every number written out.
        arrays: every array the text shows, by name (float64), for checks and reuse.
        rows: the picture, as rows of :class:`~striate.viz.images.Matrix`,
            ``Picture`` and ``Symbol`` items (see :func:`~striate.viz.images.plot_rows`).
    """
    topic: str
    title: str
    text: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    rows: list = field(default_factory=list)
    cell: float = 0.3
    draw: Callable | None = None          # a picture of its own instead of rows: draw(path) -> (w, h)

    def __str__(self) -> str:
        return self.text

    def png_size(self) -> tuple[int, int]:
        """The (width, height) in pixels that :meth:`save_png` writes."""
        if self.draw is not None:
            return self.draw(None)
        return rows_size(self.rows, self.title, self.cell)

    def save_png(self, path) -> tuple[int, int]:
        """Write the picture; returns its (width, height) in pixels."""
        if self.draw is not None:
            return self.draw(path)
        return plot_rows(self.rows, path, self.title, self.cell)


# ---------------------------------------------------------------------------
# text helpers


def format_matrix(values, decimals: int = 2) -> list[str]:
    """A 2-D array as lines of right-aligned numbers."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[None]
    cells = [[format_number(v, decimals) for v in row] for row in values]
    width = max((len(c) for row in cells for c in row), default=1)
    return [" ".join(c.rjust(width) for c in row) for row in cells]


def _side_by_side(blocks: list[list[str]], separators: list[str], indent: str = "  ") -> list[str]:
    """Blocks of lines next to each other, each separator centred vertically between two blocks."""
    height = max(len(b) for b in blocks)
    widths = [max((len(line) for line in b), default=0) for b in blocks]
    middle = (height - 1) // 2
    lines = []
    for r in range(height):
        parts = []
        for i, block in enumerate(blocks):
            top = (height - len(block)) // 2
            row = block[r - top] if 0 <= r - top < len(block) else ""
            parts.append(row.ljust(widths[i]))
            if i < len(separators):
                sep = separators[i]
                parts.append(f" {sep} " if r == middle else " " * (len(sep) + 2))
        lines.append((indent + "".join(parts)).rstrip())
    return lines


def _labelled(label: str, values, decimals: int = 2) -> list[str]:
    return [label] + format_matrix(values, decimals)


def _float64(array, what: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{what} must hold numbers, got dtype {array.dtype}")
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must hold finite numbers")
    return array


def _kernel(kernel) -> tuple[np.ndarray, str]:
    """A kernel and its label, from a name or an array."""
    if isinstance(kernel, str):
        return filters.get_kernel(kernel, dtype=np.float64), normalize_name(kernel)
    k = _float64(kernel, "the kernel")
    if k.ndim != 2 or k.size == 0:
        raise ValueError(f"the kernel must be 2-D (kh, kw), got shape {k.shape}")
    return k, "your kernel"


def _span(start: int, size: int) -> str:
    return f"{start}" if size == 1 else f"{start}–{start + size - 1}"


def _out_size_line(name: str, size: int, pad: int, k: int, s: int) -> tuple[int, str]:
    out = (size + 2 * pad - k) // s + 1
    return out, (f"{name} = ⌊({size} + 2·{pad} − {k}) / {s}⌋ + 1 = ⌊{size + 2 * pad - k}/{s}⌋ + 1 = {out}")


# ---------------------------------------------------------------------------
# conv


def explain_conv(image=None, kernel="oblique", stride=1, padding=0, pool: int = 2, pool_stride: int = 1,
                 flip: bool = False, image_label: str = "") -> Explanation:
    """A kernel sliding over a small image, step by step, then max pooling of the feature map.

    The default is the chapter's example: the 5×5 digit "0" (:data:`DIGIT_ZERO`),
    a 3×3 kernel that sums the pixels along a rising diagonal ("oblique"), a 3×3
    feature map, then 2×2 max pooling with stride 1: a 2×2 code, (3, 2, 2, 3),
    from 9 weights.

    Args:
        image: a small (H, W) array (default: the digit "0").
        kernel: a name from :mod:`striate.filters` or a 2-D array.
        stride, padding: ints or pairs, as in conv2d (zeros are padded).
        pool: the max-pooling window after the convolution (0: none).
        pool_stride: its stride.
        flip: also show the true convolution (the kernel turned by 180°).
    """
    x = DIGIT_ZERO if image is None else _float64(image, "the image")
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"explain conv expects a 2-D grayscale image (H, W), got shape {x.shape}")
    label = image_label or ('a 5×5 digit "0"' if image is None else f"{x.shape[0]}×{x.shape[1]} image")
    k, kname = _kernel(kernel)
    sh, sw = positive_pair(stride, "stride", "explain conv")
    ph, pw = nonnegative_pair(padding, "padding", "explain conv")
    H, W = x.shape
    kh, kw = k.shape
    if kh > H + 2 * ph or kw > W + 2 * pw:
        raise ValueError(f"explain conv: the {kh}×{kw} kernel does not fit the padded image "
                         f"{H + 2 * ph}×{W + 2 * pw}; use more --padding or a smaller kernel")
    if not isinstance(pool, (int, np.integer)) or pool < 0:
        raise ValueError(f"explain conv: pool must be a non-negative int (0 for none), got {pool!r}")

    with no_grad():
        fmap = F.conv2d(x[None, None], k[None, None], stride=(sh, sw), padding=(ph, pw)).data[0, 0]
    OH, OW = fmap.shape
    padded = np.pad(x, ((ph, ph), (pw, pw)))
    grey = np.ones_like(padded, dtype=bool)
    grey[ph:ph + H, pw:pw + W] = False
    if OH * OW > 64:
        raise ValueError(f"explain conv: {OH}×{OW} = {OH * OW} steps are too many to read; "
                         f"use a smaller image (at most 64 output positions)")
    # windows[i, j] = padded[i·sh : i·sh + kh, j·sw : j·sw + kw], the part the kernel lies on for
    # output (i, j); each step's sum is the textbook convolution's (reference.conv2d), fmap the fast op's
    cols = R.windows(x[None, None], (kh, kw), (sh, sw), (ph, ph, pw, pw))[0, 0]          # (kh, kw, OH, OW)
    windows = cols.transpose(2, 3, 0, 1)                                                 # (OH, OW, kh, kw)
    products = windows * k
    with no_grad():
        sums = R.conv2d(x[None, None], k[None, None], stride=(sh, sw), padding=(ph, pw)).data[0, 0]
    arrays = {"input": x, "padded": padded, "kernel": k, "windows": windows, "products": products,
              "sums": sums, "feature_map": fmap}

    lines = [f"Convolution, step by step: {label}, kernel {kname} ({kh}×{kw}), stride {sh}"
             + (f"×{sw}" if sw != sh else "") + f", padding {ph}" + (f"×{pw}" if pw != ph else ""),
             "",
             "In CNNs a 'convolution' is a cross-correlation: the kernel is laid on each window as it",
             "is written, with no flip (see --flip). Each output value is the sum of the element-wise",
             "products of the kernel and one window of the (padded) input.",
             ""]
    input_block = _labelled("input" + (f" (padded with {ph}×{pw} zeros)" if ph or pw else ""), padded, 3)
    lines += _side_by_side([input_block, _labelled(f"kernel {kname}", k, 3)], ["   "])
    if kname in filters.DESCRIPTIONS:
        lines += ["", f"  {kname}: {filters.describe(kname)}"]
    _, hline = _out_size_line("OH", H, ph, kh, sh)
    _, wline = _out_size_line("OW", W, pw, kw, sw)
    lines += ["", "Output size, ⌊(H + 2P − K) / S⌋ + 1 (H input size, P padding, K kernel size, S stride):",
              f"  {hline}", f"  {wline}", ""]
    step = 0
    for i in range(OH):
        for j in range(OW):
            step += 1
            r0, c0 = i * sh, j * sw
            lines.append(f"step {step}: output ({i}, {j}) ← window rows {_span(r0, kh)}, "
                         f"columns {_span(c0, kw)} of the {'padded ' if ph or pw else ''}input")
            blocks = [_labelled("window", windows[i, j], 3), _labelled("kernel", k, 3),
                      _labelled("products", products[i, j], 3), ["sum", format_number(sums[i, j], 3)]]
            lines += _side_by_side(blocks, ["⊙", "=", "→"])
            lines.append("")
    lines += _side_by_side([_labelled(f"feature map {OH}×{OW}", fmap, 3)], [])

    input_style = dict(cmap="YlGn", vmin=min(0.0, padded.min()) - 1e-9,
                       vmax=2.0 * max(np.abs(padded).max(), 1e-9))
    map_style = _map_style(fmap)
    rows: list[Row]
    rows = [("the kernel slides over the input" + (" (grey: zero padding)" if ph or pw else ""),
             [Matrix(padded, "input" + (" (padded)" if ph or pw else ""), grey=grey, **input_style),
              Symbol("⋆"), Matrix(k, f"kernel {kname}"), Symbol("="),
              Matrix(fmap, f"feature map {OH}×{OW}", caption=f"{hline}\n{wline}", **map_style)])]

    if pool:
        if OH < pool or OW < pool:
            lines += ["", f"(no {pool}×{pool} pooling: the feature map {OH}×{OW} is smaller than the window)"]
        else:
            pooled = F.max_pool2d(fmap[None, None], pool, pool_stride).data[0, 0]
            pool_windows = R.windows(fmap[None, None], (pool, pool), (pool_stride, pool_stride))[0, 0]
            arrays["pooled"] = pooled
            PH, PW = pooled.shape
            _, pline = _out_size_line("OH", OH, 0, pool, pool_stride)
            _, pwline = _out_size_line("OW", OW, 0, pool, pool_stride)
            lines += ["", f"Then {pool}×{pool} max pooling with stride {pool_stride}: each window of the feature map "
                      "keeps only its largest value.", f"  {pline}", f"  {pwline}"]
            for i in range(PH):
                for j in range(PW):
                    values = ", ".join(format_number(v, 3) for v in pool_windows[:, :, i, j].ravel())
                    lines.append(f"  rows {_span(i * pool_stride, pool)}, columns {_span(j * pool_stride, pool)}: "
                                 f"max({values}) = {format_number(pooled[i, j], 3)}")
            code = ", ".join(format_number(v, 3) for v in pooled.ravel())
            lines += ["", *_side_by_side([_labelled(f"pooled {PH}×{PW}", pooled, 3)], []), "",
                      f"Flattened, the image is encoded as ({code}): {x.size} pixels became {pooled.size} numbers",
                      f"using only the {k.size} weights of the kernel. The same {k.size} weights are used at every",
                      "position (weight sharing), and pooling has no weights at all."]
            rows[0][1].extend([Symbol("→"), Matrix(pooled, f"max pool {pool}×{pool}, stride {pool_stride}",
                                                   caption=f"code ({code})", **map_style)])

    steps: list[Item] = []
    shown = min(OH * OW, 12)
    for n in range(shown):
        i, j = divmod(n, OW)
        caption = _sum_caption(products[i, j], sums[i, j])
        steps.append(Matrix(padded, f"step {n + 1}: output ({i}, {j})", caption=caption, grey=grey,
                            highlight=(i * sh, j * sw, kh, kw), **input_style,
                            cell=min(0.3, 1.9 / max(padded.shape))))
    per_row = OW if OW <= 4 else (4 if padded.shape[1] <= 8 else 3)   # 3 steps a row mirror a 3×3 map
    for start in range(0, len(steps), per_row):
        heading = "each window ⊙ kernel, summed" + (f" (first {shown} of {OH * OW} steps)"
                                                     if shown < OH * OW else "")
        rows.append((heading if start == 0 else "", steps[start:start + per_row]))

    if flip:
        turned = filters.flip(k)
        with no_grad():
            true_conv = F.conv2d(x[None, None], turned[None, None], stride=(sh, sw), padding=(ph, pw)).data[0, 0]
        arrays["flipped_kernel"], arrays["convolution"] = turned, true_conv
        relation = filters.flip_relation(k)
        lines += ["", "The flip: a convolution in the mathematical sense turns the kernel by 180° first",
                  "(out[y, x] = Σ k[i, j]·img[y − i, x − j]). CNN layers skip the flip; for a learned",
                  "kernel this changes nothing (the network learns the turned kernel instead), but a",
                  "hand-made kernel that is not symmetric gives a different map.", ""]
        lines += _side_by_side([_labelled("kernel", k, 3), _labelled("turned 180°", turned, 3)], ["→"])
        lines += ["", *_side_by_side([_labelled("cross-correlation (CNN)", fmap, 3),
                                      _labelled("true convolution", true_conv, 3)], ["vs"]), ""]
        lines.append({"same": "This kernel is the same turned by 180°, so both give the same map.",
                      "negated": "This kernel turned by 180° is its negative: the convolution is the "
                                 "correlation with every sign reversed.",
                      "different": "This kernel changes when turned, so the two maps differ."}[relation])
        rows.append(("the flip: true convolution turns the kernel by 180°",
                     [Matrix(k, "kernel"), Symbol("→"), Matrix(turned, "turned 180°"), Symbol("⇒"),
                      Matrix(fmap, "cross-correlation (CNN)", **_map_style(fmap, true_conv)),
                      Matrix(true_conv, "true convolution",
                             caption={"same": "identical", "negated": "signs reversed",
                                      "different": "different"}[relation], **_map_style(fmap, true_conv))]))
    title = f"Convolution step by step: {label}, kernel {kname}"
    return Explanation("conv", title, "\n".join(lines), arrays, rows, cell=0.34)


def _map_style(*maps) -> dict:
    """Shading for feature maps: blues from 0 when nothing is negative, else blue–red around 0."""
    top = max(max(float(np.abs(m).max()) for m in maps), 1e-9)
    if min(float(m.min()) for m in maps) < 0:
        return dict(cmap="RdBu_r", vmin=-2.0 * top, vmax=2.0 * top)
    return dict(cmap="Blues", vmin=-1e-9, vmax=1.8 * top)


def _sum_caption(products: np.ndarray, total: float) -> str:
    """The products of one step, a line per kernel row, and their sum."""
    rows = ["(" + " + ".join(format_number(v, 3) for v in row) + ")" for row in products]
    if len(rows) <= 3 and sum(len(r) for r in rows) <= 36:
        return " + ".join(rows) + f" = {format_number(total, 3)}"
    return " +\n".join(rows) + f"\n= {format_number(total, 3)}"


def _term(value: float, decimals: int = 4) -> str:
    """A number for use inside a formula: negatives in parentheses."""
    text = format_number(value, decimals)
    return f"({text})" if value < 0 else text


# ---------------------------------------------------------------------------
# pool

_POOLS = [
    ("max", "max", lambda x, k, s: F.max_pool2d(x, k, s),
     "all of it goes to the largest value of the window (the first one on a tie, as in PyTorch)"),
    ("average", "avg", lambda x, k, s: F.avg_pool2d(x, k, s),
     "shared equally: 1/(window size) to every value"),
    ("sum", "sum", lambda x, k, s: F.sum_pool2d(x, k, s),
     "copied whole to every value of the window"),
    ("min", "min", lambda x, k, s: F.min_pool2d(x, k, s),
     "all of it goes to the smallest value"),
    ("L2", "L2", lambda x, k, s: F.l2_pool2d(x, k, s),
     "x / ‖window‖₂: in proportion to each value (negative values get a negative share)"),
]


def explain_pool(x=None, kernel_size: int = 2, stride: int | None = None) -> Explanation:
    """Five poolings of one input side by side, and the gradient each sends back.

    Args:
        x: a small (H, W) array (default :data:`POOL_INPUT`, 4×4).
        kernel_size: the window (int).
        stride: the step (default: the window, so windows do not overlap).
    """
    x = POOL_INPUT if x is None else _float64(x, "the input")
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"explain pool expects a 2-D input (H, W), got shape {x.shape}")
    k = positive_pair(kernel_size, "kernel_size", "explain pool")[0]
    s = k if stride is None else positive_pair(stride, "stride", "explain pool")[0]
    H, W = x.shape
    if k > H or k > W:
        raise ValueError(f"explain pool: the {k}×{k} window is larger than the {H}×{W} input")
    outputs: dict[str, np.ndarray] = {}
    grads: dict[str, np.ndarray] = {}
    for _, short, op, _ in _POOLS:
        t = Tensor(x[None, None], requires_grad=True, dtype=np.float64)
        out = op(t, k, s)
        out.backward(np.ones_like(out.data))               # an upstream gradient of 1 at every output
        assert t.grad is not None                          # backward has just filled it
        outputs[short], grads[short] = out.data[0, 0], t.grad[0, 0]
    OH, OW = outputs["max"].shape
    arrays = {"input": x, **{f"{short}": outputs[short] for _, short, _, _ in _POOLS},
              **{f"grad_{short}": grads[short] for _, short, _, _ in _POOLS}}
    _, line = _out_size_line("OH", H, 0, k, s)
    _, wline = _out_size_line("OW", W, 0, k, s)
    lines = [f"Pooling a {H}×{W} input with a {k}×{k} window, stride {s}",
             "", *_side_by_side([_labelled("input", x, 3)], []), "",
             f"Output size: {line};  {wline}",
             "Pooling has no weights: each window is reduced by a fixed function.", ""]
    cols = R.windows(x[None, None], (k, k), (s, s))[0, 0]                 # (k, k, OH, OW)
    for i in range(OH):
        for j in range(OW):
            win = cols[:, :, i, j]
            values = ", ".join(format_number(v, 3) for v in win.ravel())
            squares = " + ".join(format_number(v * v, 3) for v in win.ravel())
            lines.append(f"window rows {_span(i * s, k)}, columns {_span(j * s, k)}: ({values})")
            lines.append("    " + "   ".join(f"{short} {format_number(outputs[short][i, j], 3)}"
                                             for _, short, _, _ in _POOLS[:4])
                         + f"   L2 √({squares}) = {format_number(outputs['L2'][i, j], 3)}")
    lines += ["", *_side_by_side([_labelled(name, outputs[short], 3) for name, short, _, _ in _POOLS],
                                 ["  "] * 4), "",
              "Backward: the gradient of the loss arrives at each pooled value (here 1 everywhere) and",
              "is sent back to the input values of its window:"]
    for name, _, _, rule in _POOLS:
        lines.append(f"  {name:8s} {rule}")
    if s < k:
        lines.append("  (windows overlap here: a value in several windows receives the sum of their shares)")
    lines += ["", *_side_by_side([_labelled(f"∂/∂input, {name}", grads[short], 3) for name, short, _, _ in _POOLS],
                                 ["  "] * 4)]
    vmax = 1.8 * max(np.abs(x).max(), 1e-9)
    gmax = max(max(np.abs(g).max() for g in grads.values()), 1e-9)
    captions = {"max": "all to the maximum", "avg": f"1/{k * k} to each", "sum": "1 to each",
                "min": "all to the minimum", "L2": "x / ‖window‖"}
    rows = [("forward: each window reduced to one number",
             [Matrix(x, "input", highlight=(0, 0, k, k), vmin=-vmax, vmax=vmax), Symbol("→")]
             + [Matrix(outputs[short], f"{name} pool", vmin=-vmax * (k * k if short == "sum" else 1),
                       vmax=vmax * (k * k if short == "sum" else 1)) for name, short, _, _ in _POOLS]),
            ("backward: where a gradient of 1 at every output goes (outlined: the first window)",
             [Matrix(grads[short], name, highlight=(0, 0, k, k), highlight_colour="#222222", cmap="PuOr_r",
                     vmin=-1.6 * gmax, vmax=1.6 * gmax, caption=captions[short], decimals=3, cell=0.42)
              for name, short, _, _ in _POOLS])]
    return Explanation("pool", f"Pooling a {H}×{W} input: {k}×{k} window, stride {s}", "\n".join(lines),
                       arrays, rows, cell=0.36)


# ---------------------------------------------------------------------------
# channels


def _default_colour_image(size: int) -> tuple[np.ndarray, str]:
    from .data.samples import load_sample, resize
    photo = load_sample("grace-hopper", "RGB")
    face = photo[60:330, 120:400]                      # the face and cap, where the colours are
    return resize(face, size).astype(np.float64), "grace-hopper (face, from matplotlib's samples)"


def _fusion_weight() -> tuple[np.ndarray, list[str]]:
    """Two kernels of three slices each: brightness edges, and red against green."""
    sobel = filters.get_kernel("sobel-x", dtype=np.float64)
    box = filters.get_kernel("box-3", dtype=np.float64)
    weight = np.stack([np.stack([sobel, sobel, sobel]),            # the same slice for R, G and B
                       np.stack([box, -box, 0 * box])])            # + red, − green, blue ignored
    return weight, ["kernel 0: Sobel x in every slice (edges of brightness)",
                    "kernel 1: +box on red, −box on green, 0 on blue (red against green)"]


def explain_channels(image=None, size: int = 40, image_label: str = "") -> Explanation:
    """A colour image through a two-kernel convolution, with each of the three fusions.

    Each kernel has one 3×3 slice per input channel (R, G, B). Slice c of kernel k
    gives a response r[k, c] (the channel correlated with the slice); the fusion
    combines the three responses of a kernel: by sum (an ordinary convolution), by
    concatenation (all kept: a depthwise convolution) or by product.

    Args:
        image: (H, W, 3) in [0, 1] (default: a crop of the grace-hopper sample).
        size: the longer side the image is shrunk to (keep it small: every pixel is a value).
    """
    from .data.samples import resize
    if image is None:
        img, label = _default_colour_image(size)
    else:
        img = _float64(image, "the image")
        if img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"explain channels expects a colour image (H, W, 3), got shape {img.shape}")
        img, label = resize(img.astype(np.float32), size).astype(np.float64), image_label or "your image"
    H, W, _ = img.shape
    weight, kernel_notes = _fusion_weight()
    K, C, kh, kw = weight.shape
    x = img.transpose(2, 0, 1)[None]                                       # (1, 3, H, W)
    with no_grad():
        fused = {f: F.conv2d_fused(x, weight, fusion=f).data for f in ("sum", "concat", "product")}
    OH, OW = H - kh + 1, W - kw + 1                                        # no padding: no border artefacts
    responses = fused["concat"][0].reshape(K, C, OH, OW)                  # r[k, c]
    arrays = {"image": img, "weight": weight, "responses": responses, **fused}

    y0, x0 = OH // 2, OW // 2
    lines = [f"Colour channels and fusion: {label}, {H}×{W} pixels",
             "",
             f"input x: (N, C, H, W) = (1, 3, {H}, {W}): one plane each for red, green and blue.",
             f"weight: (K, C, kh, kw) = {weight.shape}: {K} kernels, each with one {kh}×{kw} slice per channel",
             f"  ({K}·{C}·{kh}·{kw} = {weight.size} weights).",
             *(f"  {note}" for note in kernel_notes),
             "",
             "Slice c of kernel k is correlated with channel c alone, giving a response map",
             f"r[k, c] ({OH}×{OW}: no padding). The fusion combines the {C} responses of each kernel:",
             f"  sum      out[k] = r[k, R] + r[k, G] + r[k, B]   shape {fused['sum'].shape}  (ordinary convolution)",
             f"  concat   all K·C responses kept, channel k·C + c   shape {fused['concat'].shape}  (depthwise)",
             f"  product  out[k] = r[k, R] · r[k, G] · r[k, B]   shape {fused['product'].shape}",
             "",
             "Summing is what the conv layers of LeNet-5, AlexNet and nearly every CNN do: a kernel's",
             "slices are weights over all input channels at once. Keeping channels apart (concat) is",
             "the depthwise convolution of later, lighter networks (usually followed by a 1×1",
             "convolution that mixes them). The product is not a standard layer: it is large only",
             "where every channel responds, and is here to compare.",
             "",
             f"Worked example: the output pixel at row {y0}, column {x0}."]
    for k in range(K):
        lines.append(f"kernel {k}:")
        for c, cname in enumerate("RGB"):
            window = img[y0:y0 + kh, x0:x0 + kw, c]
            lines += _side_by_side([_labelled(f"{cname} window", window, 3),
                                    _labelled(f"slice {cname}", weight[k, c], 3),
                                    ["sum of products", format_number(responses[k, c, y0, x0], 4)]],
                                   ["⊙", "→"], indent="    ")
        r = responses[k, :, y0, x0]
        terms = [_term(v) for v in r]
        lines += [f"    sum:     {' + '.join(terms)} = {format_number(fused['sum'][0, k, y0, x0], 4)}",
                  f"    product: {' · '.join(terms)} = {format_number(fused['product'][0, k, y0, x0], 6)}",
                  f"    concat:  channels {k * C}, {k * C + 1}, {k * C + 2} hold "
                  f"{', '.join(format_number(v, 4) for v in r)}",
                  ""]

    def bar_map(a):
        return Picture(a, kind="signed", size=1.25, colorbar=True)
    rows: list[Row]
    rows = [("input: one plane per colour",
             [Picture(img, "colour image", caption=f"(1, 3, {H}, {W})", size=1.25),
              *(Picture(img[..., c], f"{name} plane", size=1.25, kind="photo") for c, name in
                enumerate(("red", "green", "blue")))])]
    for k in range(K):
        items: list[Item] = []
        for c, cname in enumerate("RGB"):
            items.append(Matrix(weight[k, c], f"slice {cname}", decimals=2, cell=0.3))
        items.append(Symbol("→"))
        for c, cname in enumerate("RGB"):
            p = bar_map(responses[k, c])
            p.title = f"r[{k}, {cname}]"
            items.append(p)
        items.append(Symbol("⇒"))
        s = bar_map(fused["sum"][0, k])
        s.title, s.caption = "sum", f"channel {k} of {fused['sum'].shape}"
        pr = bar_map(fused["product"][0, k])
        pr.title, pr.caption = "product", f"channel {k} of {fused['product'].shape}"
        if not np.any(fused["product"][0, k]):
            pr.caption += "\n0 everywhere: one slice is 0"
        items += [s, pr]
        rows.append((f"{kernel_notes[k]}; concat keeps the three r maps as channels "
                     f"{k * C}–{k * C + C - 1} of {fused['concat'].shape}", items))
    return Explanation("channels", f"Colour channels and their fusion: {label}", "\n".join(lines), arrays, rows)


# ---------------------------------------------------------------------------
# layers


def _lenet_style():
    """LeNet-5's layout with every step a module: conv → ReLU → pool, twice, then three dense layers."""
    from collections import OrderedDict

    from . import nn
    net = nn.Sequential(OrderedDict([
        ("c1", nn.Conv2d(1, 6, 5, rng=0)), ("relu1", nn.ReLU()), ("s2", nn.MaxPool2d(2)),
        ("c3", nn.Conv2d(6, 16, 5, rng=0)), ("relu3", nn.ReLU()), ("s4", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()),
        ("f5", nn.Linear(400, 120, rng=0)), ("relu5", nn.ReLU()),
        ("f6", nn.Linear(120, 84, rng=0)), ("relu6", nn.ReLU()),
        ("output", nn.Linear(84, 10, rng=0))]))
    net.input_shape = (1, 32, 32)
    return net


def _param_formula(module, in_shape) -> str:
    """The arithmetic of a layer's parameter count, e.g. "(5·5·1 + 1)·6 = 156"."""
    name = type(module).__name__
    own = {n: p for n, p in module._parameters.items() if p is not None}
    total = int(sum(p.size for p in own.values()))
    if total == 0:
        return "0 (no weights)" if name not in ("RBF",) else "0 (fixed centres, not trained)"
    weight = own.get("weight")
    bias = "bias" in own
    if name in ("Conv2d",) and weight is not None:
        K, Cg, kh, kw = weight.shape
        inner = f"{kh}·{kw}·{Cg}" + (" + 1" if bias else "")
        return f"({inner})·{K} = {total:,}" if bias else f"{inner}·{K} = {total:,}"
    if name == "Linear" and weight is not None:
        out_f, in_f = weight.shape
        return f"({in_f} + 1)·{out_f} = {total:,}" if bias else f"{in_f}·{out_f} = {total:,}"
    if name == "PartialConv2d":
        kh, kw = module.kernel_size
        links = int(np.asarray(module.connections).sum())
        return f"{links} connections·{kh}·{kw} + {module.out_channels} biases = {total:,}"
    if name == "Subsampling":
        return f"(1 coefficient + 1 bias)·{module.channels} = {total:,}"
    if name.startswith("BatchNorm"):
        return f"2·{own['weight'].size} (scale γ and shift β) = {total:,}"
    parts = " + ".join(f"{n} {'×'.join(str(d) for d in p.shape)}" for n, p in own.items())
    return f"{parts} = {total:,}"


def _pair_attr(module, name: str, default):
    value = getattr(module, name, None)
    if value is None:
        return default
    if isinstance(value, str):
        return value
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _shape_formula(module, in_shape, out_shape) -> str:
    """How the layer's output size follows from its input, e.g. "⌊(32 + 2·0 − 5)/1⌋ + 1 = 28"."""
    conv_like = any(p is not None and p.ndim == 4 for p in module._parameters.values())
    kernel = _pair_attr(module, "kernel_size", None)
    if len(in_shape) == 4 and len(out_shape) == 4:
        H, OH = in_shape[2], out_shape[2]
        if kernel is not None and (conv_like or in_shape[2:] != out_shape[2:]):
            k = kernel[0]
            s = _pair_attr(module, "stride", (1, 1) if conv_like else kernel)[0]   # pools step by their window
            p = _pair_attr(module, "padding", (0, 0))
            d = _pair_attr(module, "dilation", (1, 1))[0]
            if isinstance(p, str):
                return f"padding '{p}': {H} → {OH}"
            if d == 1:
                return f"⌊({H} + 2·{p[0]} − {k})/{s}⌋ + 1 = {OH}"
            return f"⌊({H} + 2·{p[0]} − {d}·({k} − 1) − 1)/{s}⌋ + 1 = {OH}"     # dilated: the kernel reaches further
        if in_shape[2:] != out_shape[2:]:
            return f"{H}×{in_shape[3]} → {OH}×{out_shape[3]}"
    if len(in_shape) == 4 and len(out_shape) == 2:
        return f"{in_shape[1]}·{in_shape[2]}·{in_shape[3]} = {out_shape[1]}"
    if type(module).__name__ == "Linear":
        return f"{out_shape[-1]} outputs"
    if tuple(in_shape) == tuple(out_shape):
        return "same shape"
    return f"{in_shape[-1]} → {out_shape[-1]} values"


def explain_layers(model=None) -> Explanation:
    """Shapes and parameter counts, layer by layer, with their arithmetic.

    Args:
        model: None for a LeNet-5-style stack with every step a module (the
            layout of ``lenet5-modern``: 61,706 parameters), a registered model
            name (``"lenet5"``, the 1998 paper's own, has 60,000), or a Module with
            an ``input_shape``.
    """
    from . import models
    if model is None:
        net, label = _lenet_style(), "LeNet-5-style stack (the layout of lenet5-modern)"
    elif isinstance(model, str):
        net, label = models.get(model, rng=0), f"model {normalize_name(model, 'model')}"
    else:
        net, label = model, type(model).__name__
    input_shape = (1,) + tuple(getattr(net, "input_shape", (1, 32, 32)))
    names = {id(m): n for n, m in net.named_modules()}
    records = []

    def hook(module, inputs, output):
        if module._modules:
            return
        in_shape = tuple(inputs[0].shape) if inputs and hasattr(inputs[0], "shape") else ()
        records.append((names.get(id(module), ""), module, in_shape, tuple(output.shape)))

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    was_training = net.training
    try:
        net.eval()
        with no_grad():
            net(Tensor(np.zeros(input_shape, dtype=np.float32)))
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)

    def shape_text(shape):
        return "(N, " + ", ".join(str(d) for d in shape[1:]) + ")"

    rows_text = []
    for name, module, in_shape, out_shape in records:
        params = int(sum(p.size for p in module._parameters.values() if p is not None))
        rows_text.append((name, type(module).__name__, shape_text(out_shape),
                          _shape_formula(module, in_shape, out_shape),
                          _param_formula(module, in_shape), params, int(np.prod(out_shape[1:]))))
    total = sum(r[5] for r in rows_text)
    widths = [max(len(str(r[i])) for r in rows_text + [("layer", "type", "output shape", "why", "parameters")])
              for i in range(5)]
    header = ("layer".ljust(widths[0]), "type".ljust(widths[1]), "output shape".ljust(widths[2]),
              "size arithmetic".ljust(widths[3]), "parameters")
    lines = [f"Layers of the {label}: input {shape_text(input_shape)}", "",
             "  " + "  ".join(header), "  " + "-" * (sum(widths) + 8 + 10)]
    for r in rows_text:
        lines.append("  " + "  ".join(str(v).ljust(w) for v, w in zip(r[:4], widths[:4])) + "  " + r[4])
    lines += ["", f"Total: {total:,} trainable parameters."]
    first_conv = next((r for r in records if any(p is not None and p.ndim == 4
                                                   for p in r[1]._parameters.values())), None)
    if first_conv is not None:
        _, module, in_shape, out_shape = first_conv
        n_in, n_out = int(np.prod(in_shape[1:])), int(np.prod(out_shape[1:]))
        conv_params = int(sum(p.size for p in module._parameters.values() if p is not None))
        lines += ["", f"Why so few: {first_conv[0]} maps {n_in:,} input values to {n_out:,} outputs with "
                      f"{conv_params:,} parameters, because",
                  "each output sees only a small window (locality) and every position uses the same kernel",
                  f"(weight sharing). A dense layer for the same map would need ({n_in:,} + 1)·{n_out:,} = "
                  f"{(n_in + 1) * n_out:,}."]
    dense = [r for r in rows_text if r[1] == "Linear"]
    if dense and total:
        share = sum(r[5] for r in dense) / total
        lines.append(f"The dense layers hold {100 * share:.0f}% of all parameters; pooling and activations hold none.")
    if model is None:
        lines += ["", "The 1998 LeNet-5 (striate explain layers --model lenet5) differs: tanh-like squashing,",
                  "trainable subsampling instead of max pooling, a C3 layer reading only some S2 maps",
                  "(60 connections), and an RBF output: 60,000 parameters in all."]

    def draw(path):
        return _draw_layers(rows_text, f"{label}: output size and parameters per layer", path)
    return Explanation("layers", f"Layers of the {label}", "\n".join(lines),
                       {"params": np.array([r[5] for r in rows_text], dtype=np.float64),
                        "values": np.array([r[6] for r in rows_text], dtype=np.float64)}, [], draw=draw)


def _draw_layers(rows_text, title: str, path) -> tuple[int, int]:
    """Two bar charts side by side: values in each layer's output, and its parameters."""
    from .viz.images import DPI, save_png
    from .viz.mpl import plt
    n = len(rows_text)
    labels = [f"{r[0]}  {r[1]}  {r[2]}" for r in rows_text]
    label_w = max(len(label) for label in labels) * 8 * 0.6 / 72 + 0.3     # inches for the longest label
    width, height = 8.6 + label_w, 1.3 + 0.32 * n
    if path is None:
        return round(width * DPI), round(height * DPI)
    fig, (left, right) = plt.subplots(1, 2, figsize=(width, height), sharey=True,
                                      gridspec_kw=dict(left=label_w / width, right=1 - 0.3 / width,
                                                       top=1 - 0.75 / height, bottom=0.55 / height, wspace=0.08))
    y = np.arange(n)
    values = np.array([r[6] for r in rows_text], dtype=float)
    params = np.array([r[5] for r in rows_text], dtype=float)
    left.barh(y, values, color="#6baed6")
    right.barh(y, params, color="#fd8d3c")
    left.set_yticks(y, labels=labels, fontsize=8)
    left.invert_yaxis()
    left.set_title("values in the layer's output (per image)", fontsize=9)
    right.set_title("trainable parameters, with their arithmetic", fontsize=9)
    formulas = [r[4] if r[5] else "0" for r in rows_text]

    def compact(v, _):
        return f"{v / 1e6:g}M" if v >= 1e6 else (f"{v / 1e3:g}k" if v >= 1e3 else f"{v:g}")
    for ax, data, notes, room in ((left, values, [f"{int(v):,}" for v in values], 1.25),
                                  (right, params, formulas, 1.9)):
        top = max(data.max(), 1.0)
        ax.set_xlim(0, top * room)
        for yi, v, note in zip(y, data, notes):
            ax.text(v + top * 0.015, yi, note, va="center", fontsize=7.5)
        ax.tick_params(axis="x", labelsize=7.5)
        ax.grid(axis="x", alpha=0.3)
        ax.xaxis.set_major_locator(plt.MaxNLocator(5))
        ax.xaxis.set_major_formatter(plt.FuncFormatter(compact))
    fig.suptitle(title, fontsize=11)
    return save_png(fig, path)


# ---------------------------------------------------------------------------
# dropout


def explain_dropout(p: float = 0.5, shape=(4, 8), seed: int = 0) -> Explanation:
    """Inverted dropout on a small batch: the mask, the scaling, and evaluation mode.

    Args:
        p: the probability of dropping each value.
        shape: (N, features) of the example activations.
        seed: for the example values and the mask.
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"explain dropout: p must be in [0, 1), got {p!r}")
    N, D = positive_pair(tuple(shape), "shape", "explain dropout")
    x = np.round(np.random.default_rng(seed).uniform(0.1, 2.0, (N, D)), 1)   # activations after a ReLU
    scaled_mask = F.dropout(np.ones_like(x), p, training=True, rng=seed).data
    t = Tensor(x, requires_grad=True, dtype=np.float64)
    out = F.dropout(t, p, training=True, rng=seed)         # the same seed draws the same mask
    out.backward(np.ones_like(x))
    assert t.grad is not None                          # backward has just filled it
    evaluated = F.dropout(x, p, training=False).data
    keep = scaled_mask > 0
    scale = 1 / (1 - p)
    arrays = {"input": x, "mask": keep.astype(np.float64), "scaled_mask": scaled_mask, "output": out.data,
              "grad": t.grad, "eval_output": evaluated}
    lines = [f"Dropout with p = {format_number(p, 3)} on a batch of {N} × {D} activations (seed {seed})", "",
             "Training: each value is kept with probability 1 − p and zeroed otherwise (a Bernoulli",
             f"mask), and the kept values are multiplied by 1/(1 − p) = {format_number(scale, 4)}:", ""]
    lines += _side_by_side([_labelled("x", x, 3), _labelled("mask (1 = kept)", keep.astype(float), 0),
                            _labelled("out", out.data, 3)], ["⊙", f"× {format_number(scale, 3)} ="])
    kept = int(keep.sum())
    lines += ["", f"Kept {kept} of {keep.size} values ({100 * kept / keep.size:.0f}%; "
                  f"{100 * (1 - p):.0f}% on average).",
              "The scaling keeps each activation's expected value: (1 − p)·x/(1 − p) = x. In this one",
              f"draw the mean of x is {x.mean():.3f} and the mean of out {out.data.mean():.3f}; "
              "over many draws they agree.",
              "", "Backward: the gradient goes through the same mask and scale (dropped values get 0):", ""]
    lines += _side_by_side([_labelled("∂out/∂x", t.grad, 3)], [])
    lines += ["", "Evaluation (model.eval()): dropout does nothing, out = x; no rescaling is needed because",
              "training already scaled by 1/(1 − p) ('inverted' dropout, as PyTorch does).", "",
              "Other conventions: the 2014 dropout paper (Srivastava et al.) writes p for the probability",
              "of *keeping* a unit, drops without rescaling while training, and multiplies the weights by",
              "p at test time instead. Both give the same expected activations; a mask alone, without",
              "either scaling, would make test-time activations larger than those seen in training."]
    vmax = 1.8 * x.max()
    rows = [("training: x ⊙ mask × 1/(1 − p)",
             [Matrix(x, "activations x", vmin=-vmax, vmax=vmax), Symbol("⊙"),
              Matrix(keep.astype(float), "mask (1 kept, 0 dropped)", cmap="Greens", vmin=-0.6, vmax=2.5),
              Symbol(f"× {format_number(scale, 3)} ="),
              Matrix(out.data, "output", caption=f"kept {kept} of {keep.size}", vmin=-vmax * scale,
                     vmax=vmax * scale)]),
            ("backward (gradient of 1 at every output), and evaluation",
             [Matrix(t.grad, "∂out/∂x: the same mask and scale", cmap="Greens", vmin=-0.6 * scale,
                     vmax=2.5 * scale),
              Matrix(evaluated, "model.eval(): out = x", vmin=-vmax, vmax=vmax)])]
    return Explanation("dropout", f"Dropout, p = {format_number(p, 3)}", "\n".join(lines), arrays, rows, cell=0.36)


# ---------------------------------------------------------------------------
# batch norm


def explain_batchnorm(seed: int = 0, momentum: float = 0.1, eps: float = 1e-5) -> Explanation:
    """Batch normalisation of a (4, 2, 2, 2) batch in training mode, channel by channel.

    Shows each channel's mean and variance over the batch and the positions,
    the normalised values, the scale and shift, and the running statistics.
    """
    rng = np.random.default_rng(seed)
    N, C, H, W = 4, 2, 2, 2
    centres, spreads = np.array([3.0, -1.0]), np.array([1.5, 0.5])
    x = np.round(rng.normal(centres[None, :, None, None], spreads[None, :, None, None], (N, C, H, W)), 1)
    gamma, beta = np.array([1.0, 2.0]), np.array([0.0, 0.5])
    running_mean, running_var = np.zeros(C), np.ones(C)
    out = F.batch_norm(x, running_mean, running_var, gamma, beta, training=True, momentum=momentum, eps=eps).data
    n = N * H * W
    mean = x.mean(axis=(0, 2, 3))
    var = x.var(axis=(0, 2, 3))
    xhat = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + eps)
    arrays = {"input": x, "mean": mean, "var": var, "xhat": xhat, "output": out, "gamma": gamma, "beta": beta,
              "running_mean": running_mean.copy(), "running_var": running_var.copy()}
    lines = [f"Batch normalisation (training mode) of a batch x of shape (N, C, H, W) = {x.shape}", "",
             f"Each channel is normalised over the batch and the positions: {N}·{H}·{W} = {n} values per channel.",
             "  mean_c = average,  var_c = average of (x − mean_c)² (the biased variance),",
             f"  x̂ = (x − mean_c) / √(var_c + ε),  out = γ_c · x̂ + β_c   (ε = {eps:g})",
             "γ and β are learned (a new layer starts at γ = 1, β = 0; here γ = (1, 2), β = (0, 0.5) to show",
             "their effect). Rows below: the N images; columns: the H·W positions.", ""]
    rows = []
    vmax = 1.6 * np.abs(x).max()
    for c in range(C):
        xc = x[:, c].reshape(N, H * W)
        lines += [f"channel {c}:"]
        lines += _side_by_side([_labelled("x", xc, 3), _labelled("x̂", xhat[:, c].reshape(N, H * W), 3),
                                _labelled(f"out = {format_number(gamma[c])}·x̂ + {format_number(beta[c])}",
                                          out[:, c].reshape(N, H * W), 3)], ["→", "→"], indent="    ")
        std = np.sqrt(var[c] + eps)
        lines += [f"    mean = {format_number(xc.sum(), 3)} / {n} = {format_number(mean[c], 4)}",
                  f"    var  = {format_number(var[c], 4)},  √(var + ε) = {format_number(std, 4)}",
                  f"    e.g. x̂[0, {c}, 0, 0] = ({format_number(x[0, c, 0, 0], 3)} − {_term(mean[c])}) / "
                  f"{format_number(std, 4)} = {format_number(xhat[0, c, 0, 0], 4)}", ""]
        rows.append((f"channel {c}: mean {format_number(mean[c], 3)}, variance {format_number(var[c], 3)}",
                     [Matrix(xc, "x (rows: images)", vmin=-vmax, vmax=vmax), Symbol("→"),
                      Matrix(xhat[:, c].reshape(N, H * W), "x̂ = (x − mean)/√(var + ε)", vmin=-3.2, vmax=3.2),
                      Symbol("→"),
                      Matrix(out[:, c].reshape(N, H * W),
                             f"out = {format_number(gamma[c])}·x̂ + {format_number(beta[c])}", vmin=-5, vmax=5)]))
    lines += [f"Running statistics (used by model.eval() instead of the batch's), momentum {format_number(momentum)}:",
              "  running_mean = (1 − m)·running_mean + m·mean",
              "  running_var  = (1 − m)·running_var + m·var·n/(n − 1)   (the unbiased variance, n = "
              f"{n})"]
    for c in range(C):
        lines.append(f"  channel {c}: mean 0 → {format_number(running_mean[c], 5)},  "
                     f"var 1 → {format_number(running_var[c], 5)}")
    rows.append((f"running statistics after this batch (momentum {format_number(momentum)}; model.eval() uses them)",
                 [Matrix(np.stack([np.zeros(C), np.ones(C)]), "before (rows: mean, var)", decimals=4, cell=0.55),
                  Symbol("→"),
                  Matrix(np.stack([running_mean, running_var]), "after (rows: mean, var)", decimals=4, cell=0.55,
                         caption="one column per channel")]))
    lines += ["", "Where it goes: the batch-norm paper (Ioffe & Szegedy, 2015) normalises the weighted sums",
              "*before* the nonlinearity (conv → batch norm → activation; the conv's bias is then",
              "redundant, β takes its place). Placing it after the activation is also common in practice."]
    return Explanation("batchnorm", "Batch normalisation, channel by channel", "\n".join(lines), arrays, rows,
                       cell=0.42)


# ---------------------------------------------------------------------------
# Winograd


def explain_winograd(seed: int = 0) -> Explanation:
    """Winograd's F(2×2, 3×3) on one 4×4 tile and one 3×3 kernel, against the direct sums.

    Small integers (drawn with ``seed``) keep every number readable; the output is computed
    three ways: directly (the textbook sum, ``reference.conv2d``), with the matrices written
    out here, and by ``F.conv2d(..., algorithm="winograd")``.
    """
    from .functional import winograd
    rng = np.random.default_rng(seed)
    d = rng.integers(-3, 4, (4, 4)).astype(np.float64)
    g = rng.integers(-2, 3, (3, 3)).astype(np.float64)
    BT, G, AT = (np.array(m, dtype=np.float64) for m in (winograd._BT, winograd._G, winograd._AT))
    direct = R.conv2d(d[None, None], g[None, None]).data[0, 0]
    ours = F.conv2d(d[None, None], g[None, None], algorithm="winograd").data[0, 0]
    V = BT @ d @ BT.T                        # the input tile, transformed: additions only
    U = G @ g @ G.T                          # the kernel, transformed once
    M = U * V                                # the 16 multiplications
    Y = AT @ M @ AT.T                        # back to 2×2: additions only
    arrays = {"tile": d, "kernel": g, "direct": direct, "V": V, "U": U, "M": M, "winograd": Y, "conv2d": ours}

    def sums(a, b):
        terms = [f"{_term(g[i, j], 0)}·{_term(d[a + i, b + j], 0)}" for i in range(3) for j in range(3)]
        return " + ".join(terms) + f" = {format_number(direct[a, b], 4)}"

    lines = [f"Winograd's F(2×2, 3×3) on one 4×4 tile d and one 3×3 kernel g (seed {seed})", ""]
    lines += _side_by_side([_labelled("tile d", d, 0), _labelled("kernel g", g, 0)], ["⋆"])
    lines += ["", "Directly, each of the 2×2 outputs is a sum of 9 products: 36 multiplications.", ""]
    lines += [f"  y[{a},{b}] = {sums(a, b)}" for a in range(2) for b in range(2)]
    lines += ["", "Winograd: transform the tile with Bᵀ d B (entries of Bᵀ are 0 and ±1: additions only)",
              "and the kernel with G g Gᵀ (once per kernel, reused for every tile), multiply them",
              "element by element (16 multiplications), and transform back with Aᵀ · A (additions):", ""]
    lines += _side_by_side([_labelled("Bᵀ", BT, 0), _labelled("G", G, 1)], [""])
    lines += [""] + _labelled("Aᵀ", AT, 0) + [""]
    lines += _side_by_side([_labelled("V = Bᵀ d B", V, 0), _labelled("U = G g Gᵀ", U, 2),
                            _labelled("M = U ⊙ V", M, 2)], ["", ""])
    lines += [""]
    lines += _side_by_side([_labelled("Aᵀ M A", Y, 2), _labelled("direct", direct, 2),
                            _labelled("conv2d, winograd", ours, 2)], ["=", "="])
    lines += ["", "Why it is exact: each output is a linear function of the 16 tile values and the 9 kernel",
              "values, and the three matrices are chosen (from polynomial interpolation at the points",
              "0, 1, −1 and ∞) so that Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A is the same function. In floating",
              "point the two differ only by round-off.", "",
              "In a layer with C input channels and K kernels, the transformed tiles of all channels",
              "meet the transformed kernels in 16 matrix products, one per position of the 4×4 tile:",
              "16·C·K multiply-adds per 2×2 outputs instead of 36·C·K (2.25× fewer). The transforms",
              "add 32 additions per tile for each input channel (Bᵀ d B) and 24 for each kernel",
              "(Aᵀ M A). On paper that pays from a few channels on; in practice the products run at",
              "the processor's peak while the transforms move four times the data through memory, and",
              "it pays from about 32 channels. striate's conv2d uses it for 3×3 layers with at least",
              "32 input and output channels (algorithm=\"auto\"); benchmarks/RESULTS.md has the numbers."]
    vmax = max(np.abs(M).max(), np.abs(V).max(), 1.0)
    ymax = max(np.abs(direct).max(), 1.0)
    rows = [("transform the tile and the kernel",
             [Matrix(d, "tile d", decimals=0, vmin=-4, vmax=4), Symbol("→"),
              Matrix(V, "V = Bᵀ d B", caption="additions only", decimals=0, vmin=-vmax, vmax=vmax),
              Matrix(g, "kernel g", decimals=0, vmin=-4, vmax=4), Symbol("→"),
              Matrix(U, "U = G g Gᵀ", caption="once per kernel", decimals=2, vmin=-vmax, vmax=vmax)]),
            ("16 multiplications, then back to 2×2",
             [Matrix(M, "M = U ⊙ V", caption="16 products", decimals=2, vmin=-vmax, vmax=vmax), Symbol("→"),
              Matrix(Y, "Aᵀ M A", decimals=2, vmin=-ymax, vmax=ymax), Symbol("="),
              Matrix(direct, "direct: 36 products", decimals=2, vmin=-ymax, vmax=ymax)])]
    return Explanation("winograd", "Winograd's F(2×2, 3×3): 16 multiplications instead of 36",
                       "\n".join(lines), arrays, rows, cell=0.36)


# ---------------------------------------------------------------------------

TOPICS: dict[str, Callable[..., Explanation]] = {
    "conv": explain_conv, "pool": explain_pool, "channels": explain_channels, "layers": explain_layers,
    "dropout": explain_dropout, "batchnorm": explain_batchnorm, "winograd": explain_winograd}


def explain(topic: str, **options) -> Explanation:
    """The explanation of ``topic`` (one of :data:`TOPICS`), with that topic's options."""
    key = normalize_name(topic, "topic")
    if key not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}; choose one of: {', '.join(TOPICS)}")
    return TOPICS[key](**options)
