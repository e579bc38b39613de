"""Pictures of images, filtered images and small matrices of numbers.

The building blocks the other pictures share: :func:`draw_matrix` draws a grid
of numbers on shaded cells (a kernel, a window, a feature map), :func:`show_map`
draws an image or a signed response map with a fitting colour scale, and
:func:`save_png` writes a figure at exactly its own size (width × height in
inches × dpi), so the pixel size of every PNG is known in advance.
:func:`plot_filter_grid` is the picture of ``striate filters``.

Figures are laid out by hand in inches (see ``_Layout``): each picture is sized
to what it holds, and no label can overlap another.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .mpl import plt

__all__ = ["DPI", "save_png", "format_number", "draw_matrix", "colorbar", "show_map", "map_kind",
           "FilterResult", "plot_filter_grid", "filter_grid_size", "Matrix", "Picture", "Symbol", "plot_rows",
           "rows_size"]

DPI = 100

# ---------------------------------------------------------------------------
# writing and numbers


def save_png(fig, path, dpi: int = DPI) -> tuple[int, int]:
    """Write ``fig`` as a PNG of exactly its own size and close it; returns (width, height) in pixels."""
    w, h = fig.get_size_inches()
    size = round(w * dpi), round(h * dpi)
    fig.set_size_inches(size[0] / dpi, size[1] / dpi)     # whole pixels: the PNG is exactly this size
    fig.savefig(path, dpi=dpi, format="png")
    plt.close(fig)
    return size


def format_number(value: float, decimals: int = 2) -> str:
    """``3`` for whole numbers, else up to ``decimals`` decimals without trailing zeros (``0.25``, ``-1.5``)."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value == round(value) and abs(value) < 1e9:
        return str(int(round(value)))
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _text_colour(rgba) -> str:
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def draw_matrix(ax, values, *, cmap: str = "RdBu_r", vmin: float | None = None, vmax: float | None = None,
                decimals: int = 2, fontsize: float = 9, highlight=None, highlight_colour: str = "#e6550d",
                grey=None, title: str | None = None, numbers: bool = True) -> None:
    """A 2-D array as shaded cells with its numbers written in.

    Args:
        values: (rows, cols).
        cmap, vmin, vmax: the shading; by default a diverging map, pale enough for
            the numbers to stay readable (its limits are 2 × the largest |value|).
        highlight: (top, left, height, width) of a block to outline (a window).
        grey: a boolean (rows, cols) mask of cells drawn grey (padding).
        numbers: False draws only the shading (for kernels too large to read).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"draw_matrix expects a 2-D array, got shape {values.shape}")
    if vmin is None or vmax is None:
        top = float(np.max(np.abs(values))) if values.size else 1.0
        top = top * 2.0 if top > 0 else 1.0
        vmin, vmax = -top, top
    colours = plt.get_cmap(cmap)
    norm = plt.Normalize(vmin, vmax)
    rgba = colours(norm(values))
    if grey is not None:
        rgba[np.asarray(grey)] = (0.86, 0.86, 0.86, 1.0)
    ax.imshow(rgba, interpolation="nearest")
    rows, cols = values.shape
    if numbers:
        for i in range(rows):
            for j in range(cols):
                ax.text(j, i, format_number(values[i, j], decimals), ha="center", va="center",
                        fontsize=fontsize, color=_text_colour(rgba[i, j]))
    ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.0 if numbers else 0.0)   # no gaps in a picture
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if highlight is not None:
        top, left, h, w = highlight
        ax.add_patch(plt.Rectangle((left - 0.5, top - 0.5), w, h, fill=False, lw=2.5, ec=highlight_colour))
    if title:
        ax.set_title(title, fontsize=fontsize + 1)


# ---------------------------------------------------------------------------
# images and response maps


def map_kind(kernel: np.ndarray | None, magnitude: bool = False) -> str:
    """How a filtered image is best shown, from its kernel.

    ``"photo"`` (the weights sum to 1: a picture again, values in about [0, 1]),
    ``"signed"`` (they sum to 0: the response is 0 on flat areas, ± at changes),
    ``"magnitude"`` (a gradient length, ≥ 0), or ``"values"`` (anything else).
    """
    if magnitude:
        return "magnitude"
    if kernel is None:
        return "values"
    total = float(np.sum(kernel))
    scale = float(np.sum(np.abs(kernel))) or 1.0
    if abs(total - 1.0) <= 1e-5 * scale:
        return "photo"
    if abs(total) <= 1e-5 * scale:
        return "signed"
    return "values"


def show_map(ax, image: np.ndarray, kind: str = "photo"):
    """Draw ``image`` (H, W) or (H, W, 3) on ``ax``; returns the artist (for a colour bar) or None.

    photo: RGB or gray, clipped to [0, 1], no colour bar needed; signed: a diverging
    scale symmetric around 0 (its limit the 99th percentile of |values|, so a few
    extreme pixels do not wash out the rest); magnitude and values: a sequential scale.
    """
    image = np.asarray(image, dtype=np.float32)
    ax.set_xticks([])
    ax.set_yticks([])
    if kind == "photo":
        if image.ndim == 3:
            ax.imshow(np.clip(image, 0, 1), interpolation="nearest")
        else:
            ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        return None
    if image.ndim == 3:
        raise ValueError(f"show_map: a {kind!r} map must be (H, W), got shape {image.shape}")
    if kind == "signed":
        top = float(np.percentile(np.abs(image), 99)) or float(np.abs(image).max()) or 1.0
        return ax.imshow(image, cmap="RdBu_r", vmin=-top, vmax=top, interpolation="nearest")
    if kind == "magnitude":
        top = float(np.percentile(image, 99.5)) or float(image.max()) or 1.0
        return ax.imshow(image, cmap="magma", vmin=0, vmax=top, interpolation="nearest")
    low, high = float(image.min()), float(image.max())
    return ax.imshow(image, cmap="gray", vmin=low, vmax=high if high > low else low + 1,
                     interpolation="nearest")


def colorbar(fig, mappable, rect, label: str = "") -> None:
    """A small horizontal colour bar for ``mappable`` in ``rect`` (figure fractions), with ``label``."""
    cax = fig.add_axes(rect)
    bar = fig.colorbar(mappable, cax=cax, orientation="horizontal")
    bar.ax.tick_params(labelsize=7, length=2, pad=1)
    width_in = rect[2] * fig.get_figwidth()
    bar.locator = plt.MaxNLocator(5 if width_in > 1.6 else 3)     # narrow bars: fewer, unclashing ticks
    bar.update_ticks()
    if label:
        bar.set_label(label, fontsize=7, labelpad=1)


# ---------------------------------------------------------------------------
# the filters grid


@dataclass
class FilterResult:
    """One panel of the filters grid."""
    name: str                          # the kernel's name (or "your kernel")
    image: np.ndarray                  # the filtered image, (H, W) or (H, W, 3)
    kind: str                          # "photo", "signed", "magnitude" or "values" (see map_kind)
    kernels: list[tuple[str, np.ndarray]]  # the kernel(s) to print beside it, with labels
    subtitle: str = ""                 # a few words on what it finds


class _Layout:
    """Sizes, in inches, of the filters grid: one cell per image, its kernel printed to the right."""
    IMAGE_W = 2.5           # width of each picture
    KERNEL_CELL = 0.26      # width and height of one printed kernel value
    KERNEL_MIN = 0.9        # the narrowest kernel column
    KERNEL_LARGE = 1.1      # the width given to kernels too large to print
    TITLE_H = 0.48          # two title lines above each picture
    BAR_H = 0.42            # colour bar strip and its labels below each picture
    GAP_W, GAP_H = 0.35, 0.25
    MARGIN = 0.25
    HEADER_H = 0.45         # the figure title

    def __init__(self, n_panels: int, image_shape, kernels, columns: int):
        H, W = image_shape[:2]
        self.columns = max(1, min(columns, n_panels))
        self.rows = math.ceil(n_panels / self.columns)
        self.image_w = self.IMAGE_W
        self.image_h = min(max(self.IMAGE_W * H / W, 0.8), 3.6)
        widest = max([max(self.KERNEL_MIN, self.kernel_box(k)[0]) for k in kernels] or [self.KERNEL_MIN])
        self.kernel_w = widest
        self.cell_w = self.image_w + 0.15 + self.kernel_w
        self.cell_h = self.TITLE_H + self.image_h + self.BAR_H
        self.width = 2 * self.MARGIN + self.columns * self.cell_w + (self.columns - 1) * self.GAP_W
        self.height = (2 * self.MARGIN + self.HEADER_H + self.rows * self.cell_h
                       + (self.rows - 1) * self.GAP_H)

    @classmethod
    def printable(cls, shape) -> bool:
        return shape[0] <= 7 and shape[1] <= 7

    @classmethod
    def kernel_box(cls, kernel) -> tuple[float, float, float]:
        """(width, height, font size) of a printed kernel: each cell as wide as its longest number."""
        kernel = np.asarray(kernel)
        if not cls.printable(kernel.shape):
            return cls.KERNEL_LARGE, cls.KERNEL_LARGE, 0.0
        font = 6.5 if kernel.shape[1] > 3 else 7.5
        chars = max(len(format_number(v, cls.decimals(kernel))) for v in kernel.ravel())
        cell_w = max(cls.KERNEL_CELL, chars * font * 0.62 / 72 + 0.08)
        return kernel.shape[1] * cell_w, kernel.shape[0] * cls.KERNEL_CELL, font

    @staticmethod
    def decimals(kernel) -> int:
        return 3 if np.asarray(kernel).shape[1] > 3 else 2

    def cell_origin(self, index: int) -> tuple[float, float]:
        """Bottom-left corner (inches) of cell ``index``, filled row by row from the top."""
        r, c = divmod(index, self.columns)
        x = self.MARGIN + c * (self.cell_w + self.GAP_W)
        y = self.height - self.MARGIN - self.HEADER_H - (r + 1) * self.cell_h - r * self.GAP_H
        return x, y


def filter_grid_size(n_panels: int, image_shape, kernels, columns: int = 4,
                     dpi: int = DPI) -> tuple[int, int]:
    """The (width, height) in pixels of the PNG :func:`plot_filter_grid` writes.

    ``n_panels`` counts the original too; ``kernels`` lists every kernel printed beside a picture.
    """
    layout = _Layout(n_panels, image_shape, kernels, columns)
    return round(layout.width * dpi), round(layout.height * dpi)


def plot_filter_grid(original: np.ndarray, results: Sequence[FilterResult], path, title: str = "",
                     columns: int = 4, dpi: int = DPI) -> tuple[int, int]:
    """The original picture and each filtered one, titled, its kernel printed beside it.

    Pictures that are photos again (blur, sharpen) are shown as photos; signed
    responses (edges, lines: kernels summing to 0) on a blue–white–red scale
    centred on 0, and magnitudes on a dark-to-bright scale, each with a colour
    bar. Returns the PNG's (width, height) in pixels.
    """
    panels = [FilterResult("original", original, "photo", [], f"{original.shape[1]}×{original.shape[0]} px")]
    panels += list(results)
    layout = _Layout(len(panels), original.shape, [k for p in panels for _, k in p.kernels], columns)
    fig = plt.figure(figsize=(layout.width, layout.height))
    W, H = layout.width, layout.height

    def rect(x, y, w, h):                                   # inches → figure fraction
        return [x / W, y / H, w / W, h / H]

    for index, panel in enumerate(panels):
        x0, y0 = layout.cell_origin(index)
        image_y = y0 + layout.BAR_H
        ax = fig.add_axes(rect(x0, image_y, layout.image_w, layout.image_h))
        ax.set_anchor("S")
        artist = show_map(ax, panel.image, panel.kind)
        fig.text((x0 + layout.image_w / 2) / W, (image_y + layout.image_h + 0.27) / H, panel.name,
                 ha="center", va="bottom", fontsize=10, fontweight="bold")
        if panel.subtitle:
            fig.text((x0 + layout.image_w / 2) / W, (image_y + layout.image_h + 0.06) / H, panel.subtitle,
                     ha="center", va="bottom", fontsize=8, color="#444444")
        if artist is not None:
            label = {"signed": "response (0 = no change)", "magnitude": "edge strength"}.get(panel.kind, "")
            colorbar(fig, artist, rect(x0 + 0.2, y0 + 0.25, layout.image_w - 0.4, 0.09), label)
        _draw_kernels(fig, panel.kernels, rect, x0 + layout.image_w + 0.15, image_y, layout)

    if title:
        fig.text(0.5, 1 - (layout.MARGIN + 0.05) / H, title, ha="center", va="top", fontsize=12)
    return save_png(fig, path, dpi)


def _draw_kernels(fig, kernels, rect, x, image_y, layout: _Layout) -> None:
    """The kernel(s) of one panel, stacked and centred beside its picture."""
    if not kernels:
        return
    boxes = [layout.kernel_box(k) for _, k in kernels]
    label_h = 0.2
    total = sum(h for _, h, _ in boxes) + label_h * len(kernels) + 0.15 * (len(kernels) - 1)
    y = image_y + (layout.image_h + total) / 2
    for (label, k), (w, h, font) in zip(kernels, boxes):
        w = min(w, layout.kernel_w)
        left = x + (layout.kernel_w - w) / 2
        y -= label_h
        fig.text((x + layout.kernel_w / 2) / fig.get_figwidth(), (y + 0.03) / fig.get_figheight(), label,
                 ha="center", va="bottom", fontsize=7, color="#444444")
        y -= h
        ax = fig.add_axes(rect(left, y, w, h))
        draw_matrix(ax, k, numbers=font > 0, fontsize=font or 7, decimals=layout.decimals(k))
        ax.set_aspect("auto")
        y -= 0.15


# ---------------------------------------------------------------------------
# rows of matrices, pictures and symbols: the pictures of ``striate explain``


@dataclass
class Matrix:
    """A grid of numbers in a picture row (see :func:`draw_matrix` for the arguments)."""
    values: np.ndarray
    title: str = ""
    caption: str = ""
    highlight: tuple | None = None
    highlight_colour: str = "#e6550d"
    grey: np.ndarray | None = None
    cmap: str = "RdBu_r"
    vmin: float | None = None
    vmax: float | None = None
    decimals: int = 2
    numbers: bool = True
    cell: float | None = None            # inches per value; None: the row's default


@dataclass
class Picture:
    """An image in a picture row: ``size`` inches along its longer side."""
    image: np.ndarray
    title: str = ""
    caption: str = ""
    kind: str = "photo"                   # see show_map
    size: float = 1.6
    colorbar: bool = False


@dataclass
class Symbol:
    """An operator between items: "⋆", "=", "→", "+", ..."""
    text: str


_TITLE_PT, _CAPTION_PT, _HEAD_PT = 8.5, 7.5, 10


def _text_width(text: str, points: float) -> float:
    """A generous estimate of a line's width in inches (DejaVu Sans averages ~0.6 em per character)."""
    return max((len(line) for line in text.split("\n")), default=0) * points * 0.6 / 72


def _lines(text: str) -> int:
    return text.count("\n") + 1 if text else 0


def _content_size(item, cell: float) -> tuple[float, float]:
    if isinstance(item, Matrix):
        c = item.cell or cell
        rows, cols = np.asarray(item.values).shape
        return cols * c, rows * c
    if isinstance(item, Picture):
        H, W = item.image.shape[:2]
        scale = item.size / max(H, W)
        return W * scale, H * scale + (0.38 if item.colorbar else 0.0)
    return _text_width(item.text, 16) + 0.1, 0.3


def _item_width(item, cell: float) -> float:
    w, _ = _content_size(item, cell)
    if isinstance(item, Symbol):
        return w
    return max(w, _text_width(item.title, _TITLE_PT), _text_width(item.caption, _CAPTION_PT))


_GAP, _ROW_GAP, _MARGIN, _TITLE_H, _HEAD_H = 0.18, 0.3, 0.3, 0.45, 0.32


def _row_height(label: str, items, cell: float) -> float:
    content = max((_content_size(i, cell)[1] for i in items), default=0.0)
    titles = max((_lines(i.title) for i in items if not isinstance(i, Symbol)), default=0)
    captions = max((_lines(i.caption) for i in items if not isinstance(i, Symbol)), default=0)
    return ((_HEAD_H if label else 0) + titles * _TITLE_PT * 1.45 / 72 + 0.05 + content
            + (0.06 + captions * _CAPTION_PT * 1.45 / 72 if captions else 0))


def rows_size(rows, title: str = "", cell: float = 0.3, dpi: int = DPI) -> tuple[int, int]:
    """The (width, height) in pixels of the PNG :func:`plot_rows` writes for these rows."""
    w, h = _rows_inches(rows, title, cell)
    return round(w * dpi), round(h * dpi)


def _rows_inches(rows, title: str, cell: float) -> tuple[float, float]:
    width = max([sum(_item_width(i, cell) for i in items) + _GAP * (len(items) - 1)
                 for _, items in rows] + [_text_width(label, _HEAD_PT) for label, _ in rows]
                + [_text_width(title, 12)])
    height = sum(_row_height(label, items, cell) for label, items in rows) + _ROW_GAP * (len(rows) - 1)
    return width + 2 * _MARGIN, height + 2 * _MARGIN + (_TITLE_H if title else 0)


def plot_rows(rows: Sequence[tuple[str, Sequence]], path, title: str = "", cell: float = 0.3,
              dpi: int = DPI) -> tuple[int, int]:
    """Rows of matrices, pictures and symbols, left to right, each row under its label.

    Args:
        rows: ``[(label, [Matrix | Picture | Symbol, ...]), ...]``; the label may be "".
        cell: inches per matrix value (each Matrix may set its own).

    The figure is sized to its contents: nothing is scaled down to fit and no
    text runs into another. Returns the PNG's (width, height) in pixels.
    """
    W, H = _rows_inches(rows, title, cell)
    fig = plt.figure(figsize=(W, H))

    def rect(x, y, w, h):
        return [x / W, y / H, w / W, h / H]

    top = H - _MARGIN
    if title:
        fig.text(0.5, top / H, title, ha="center", va="top", fontsize=12, fontweight="bold")
        top -= _TITLE_H
    for label, items in rows:
        row_h = _row_height(label, items, cell)
        if label:
            fig.text(_MARGIN / W, (top - 0.05) / H, label, ha="left", va="top", fontsize=_HEAD_PT,
                     fontweight="bold", color="#222222")
        titles = max((_lines(i.title) for i in items if not isinstance(i, Symbol)), default=0)
        content_top = top - (_HEAD_H if label else 0) - titles * _TITLE_PT * 1.45 / 72 - 0.05
        content_h = max((_content_size(i, cell)[1] for i in items), default=0.0)
        middle = content_top - content_h / 2
        x = _MARGIN
        for item in items:
            slot = _item_width(item, cell)
            w, h = _content_size(item, cell)
            centre = x + slot / 2
            if isinstance(item, Symbol):
                size = 24 if item.text in ("⋆", "⊙", "·") else 16     # small glyphs drawn larger
                fig.text(centre / W, middle / H, item.text, ha="center", va="center", fontsize=size)
            else:
                y = middle - h / 2
                if isinstance(item, Matrix):
                    ax = fig.add_axes(rect(centre - w / 2, y, w, h))
                    draw_matrix(ax, item.values, cmap=item.cmap, vmin=item.vmin, vmax=item.vmax,
                                decimals=item.decimals, highlight=item.highlight, grey=item.grey,
                                highlight_colour=item.highlight_colour,
                                numbers=item.numbers, fontsize=_matrix_font(item, cell))
                else:
                    bar_h = 0.38 if item.colorbar else 0.0
                    ax = fig.add_axes(rect(centre - w / 2, y + bar_h, w, h - bar_h))
                    artist = show_map(ax, item.image, item.kind)
                    if item.colorbar and artist is not None:
                        colorbar(fig, artist, rect(centre - w / 2 + 0.05, y + 0.2, w - 0.1, 0.08))
                if item.title:
                    fig.text(centre / W, (content_top + 0.03) / H, item.title, ha="center", va="bottom",
                             fontsize=_TITLE_PT)
                if item.caption:
                    fig.text(centre / W, (content_top - content_h - 0.06) / H, item.caption, ha="center",
                             va="top", fontsize=_CAPTION_PT, color="#333333")
            x += slot + _GAP
        top -= row_h + _ROW_GAP
    return save_png(fig, path, dpi)


def _matrix_font(item: Matrix, cell: float) -> float:
    """A font that fits the widest number in one cell."""
    c = item.cell or cell
    values = np.asarray(item.values, dtype=np.float64)
    widest = max((len(format_number(v, item.decimals)) for v in values.ravel()), default=1)
    return float(min(10.0, c * 72 / max(widest * 0.62, 1.6)))
