"""The commands that show the chapter's ideas: ``summary``, ``filters``, ``explain`` and ``show``.

    striate summary lenet5                       layers, output shapes, parameter counts
    striate filters                              hand-made kernels on a sample photo
    striate filters cat.jpg --kernels sobel-x,emboss --flip
    striate explain conv                         the chapter's digit "0", step by step
    striate explain conv --kernel sobel-x --flip --out pictures
    striate explain pool | channels | layers | dropout | batchnorm | winograd
    striate show runs/lenet5-mnist --kernels     first-layer kernels of a trained model
    striate show runs/lenet5-mnist --image 7.png feature maps and probabilities

``add_commands(subparsers)`` registers them on the ``striate`` parser; errors a
user can cause raise :class:`striate.cli.common.CLIError`, printed as one line.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..checks import normalize_name
from .common import RAW, CLIError, model_name, out_dir

__all__ = ["add_commands", "cmd_summary", "cmd_filters", "cmd_explain", "cmd_show", "DEFAULT_FILTERS"]

#: What ``striate filters`` applies when no --kernels are given.
DEFAULT_FILTERS = ("gaussian", "sharpen", "laplacian-8", "sobel-x", "sobel-y", "sobel", "emboss", "line-45")


def _picture(image: str | None, sample: str | None, mode: str = "RGB") -> tuple[np.ndarray, str]:
    """A user's image file or a named sample, float32 in [0, 1], and a short name for it."""
    from ..data.images import load_image
    from ..data.samples import load_sample

    if image and sample:
        raise CLIError("give an image file or --sample NAME, not both")
    if image:
        return load_image(image, mode=mode), Path(image).stem
    name = sample or "grace-hopper"
    return load_sample(name, mode=mode), normalize_name(name)   # ImageError names the choices


def _is_gray(image: np.ndarray) -> bool:
    return image.ndim == 2 or bool(np.array_equal(image[..., 0], image[..., 1])
                                   and np.array_equal(image[..., 1], image[..., 2]))


def _kernel_arg(text: str, what: str):
    """A kernel name, "gaussian:σ", or numbers written as rows: "1 0 -1; 2 0 -2; 1 0 -1"."""
    from .. import filters
    text = text.strip()
    if ";" in text or text[:1].isdigit() or text[:1] in "-+./":            # numbers, not a name
        try:
            return filters.parse_kernel(text, dtype=np.float64), "your kernel"
        except ValueError as exc:
            raise CLIError(f"{what}: {exc}") from None
    try:
        return filters.get_kernel(text, dtype=np.float64), normalize_name(text)
    except ValueError as exc:
        if normalize_name(text) in filters.MAGNITUDES:
            return text, normalize_name(text)
        raise CLIError(f"{what}: {exc}") from None


# ---------------------------------------------------------------------------
# striate summary


def cmd_summary(args) -> int:
    from .. import models
    from ..summary import summary
    model = models.get(model_name(args.model))
    summary(model, (1,) + tuple(model.input_shape))          # the table shows the batch axis as N
    print()
    print(model)
    return 0


# ---------------------------------------------------------------------------
# striate filters


def cmd_filters(args) -> int:
    from .. import filters
    from ..data.images import to_grayscale
    from ..data.samples import resize
    from ..explain import format_matrix
    from ..viz.images import FilterResult, map_kind, plot_filter_grid

    picture, stem = _picture(args.image, args.sample)
    if args.size < 8:
        raise CLIError(f"--size must be at least 8 pixels, got {args.size}")
    picture = resize(picture, args.size)
    gray = to_grayscale(picture)
    shown = gray if _is_gray(picture) else picture
    names = [n for n in (args.kernels.split(",") if args.kernels else DEFAULT_FILTERS) if n.strip()]
    chosen = [_kernel_arg(n, "--kernels") for n in names]
    chosen += [(_kernel_arg(text, "--custom")[0], f"custom {i + 1}") for i, text in enumerate(args.custom or [])]
    if not chosen:
        raise CLIError("no kernels to apply: give --kernels NAME,NAME,... or --custom 'ROWS'")

    results, lines = [], []
    H, W = shown.shape[:2]
    lines.append(f"{stem}: {W}×{H} pixels{'' if _is_gray(picture) else ', colour'}, border {args.border}; "
                 f"each kernel is slid over the image (a cross-correlation, as in CNNs)")
    lines.append("")
    for kernel, label in chosen:
        magnitude = isinstance(kernel, str)
        parts = ([(f"{p}", filters.get_kernel(p, dtype=np.float64)) for p in filters.MAGNITUDES[label]]
                 if magnitude else [("", kernel)])
        kind = map_kind(None if magnitude else kernel, magnitude)
        source = shown if kind == "photo" else gray          # signed maps are drawn from the luminance
        result = filters.apply(source, kernel, border=args.border)
        note = "" if kind == "photo" or source is shown else " (on gray)"
        subtitle = _short_description(label, kernel) + note
        results.append(FilterResult(label, result, kind, [(p or f"{kernel.shape[0]}×{kernel.shape[1]}", k)
                                                          for p, k in parts], subtitle))
        description = filters.describe(label) if label in filters.DESCRIPTIONS or label.startswith("gaussian:") \
            else "a kernel of your own"
        lines.append(f"{label}: {description}")
        for part, k in parts:
            relation = filters.flip_relation(k)
            block = format_matrix(k, 4 if k.shape[0] > 3 else 3) if max(k.shape) <= 7 else \
                [f"({k.shape[0]}×{k.shape[1]} values, too many to print)"]
            lines += [f"    {part + ': ' if part else ''}sum {float(k.sum()):+.4g}, turned by 180° it is "
                      f"{ {'same': 'the same', 'negated': 'its negative', 'different': 'different'}[relation] }"]
            lines += [f"      {row}" for row in block]
        if args.flip and not magnitude and filters.flip_relation(kernel) != "same":
            conv = filters.convolve(source, kernel, border=args.border)
            results.append(FilterResult(f"{label}, turned 180°", conv, kind,
                                        [("turned", filters.flip(kernel))],
                                        "true convolution" + note))
    lines += ["",
              "Correlation and convolution: CNN layers (and OpenCV's filter2D, scipy's correlate) lay the",
              "kernel on the image as written; the convolution of signal processing turns it by 180° first.",
              "Kernels that look the same turned (blur, sharpen, Laplacian, line detectors) give the same",
              "map either way; Sobel, Prewitt and emboss do not"
              + (" (the 'turned 180°' panels show the difference)." if args.flip else
                 " (add --flip to see both; 'striate explain conv --flip' shows the numbers).")]
    out = out_dir(args.out, Path("."))
    path = out / f"filters-{stem}.png"
    columns = args.columns or min(4, math.ceil(math.sqrt(len(results) + 1)))
    w, h = plot_filter_grid(shown, results, path, title=f"Hand-made kernels on {stem}", columns=columns)
    print("\n".join(lines))
    print(f"\nwrote {path} ({w}×{h} pixels)")
    return 0


def _short_description(label: str, kernel) -> str:
    from .. import filters
    if label in filters.SHORT_DESCRIPTIONS:
        return filters.SHORT_DESCRIPTIONS[label]
    if label.startswith("gaussian:"):
        return f"blur, σ = {label.split(':', 1)[1]}"
    total = float(np.sum(kernel))
    return "sums to 0: responds to changes" if abs(total) < 1e-9 else f"weights sum to {total:.3g}"


# ---------------------------------------------------------------------------
# striate explain


def _matrix_arg(text: str, what: str) -> np.ndarray:
    from .. import filters
    try:
        return filters.parse_kernel(text, dtype=np.float64, what="input")
    except ValueError as exc:
        raise CLIError(f"{what}: {exc}") from None


def _small_gray(args, size: int) -> tuple[np.ndarray, str]:
    """--image or --sample as a small grayscale array, values rounded to 2 decimals (so the text shows them exactly)."""
    from ..data.images import to_grayscale
    from ..data.samples import resize
    picture, stem = _picture(args.image, args.sample)
    small = resize(to_grayscale(picture), size)
    return np.round(small.astype(np.float64), 2), f"{stem} shrunk to {small.shape[1]}×{small.shape[0]}"


def cmd_explain(args) -> int:
    from .. import explain as ex

    topic = args.topic
    if topic == "conv":
        given = [v for v in (args.input, args.image, args.sample) if v]
        if len(given) > 1:
            raise CLIError("explain conv: give one of --input, --image or --sample")
        image, label = None, ""
        if args.input:
            image = _matrix_arg(args.input, "--input")
        elif args.image or args.sample:
            if not 3 <= args.size <= 12:
                raise CLIError(f"--size must be between 3 and 12 (every value is printed), got {args.size}")
            image, label = _small_gray(args, args.size)
        kernel, name = _kernel_arg(args.kernel, "--kernel")
        if isinstance(kernel, str):
            raise CLIError(f"--kernel {args.kernel}: a gradient magnitude combines two kernels; "
                         f"choose one of them, e.g. {name}-x")
        e = ex.explain_conv(image, kernel if name == "your kernel" else name, stride=args.stride,
                            padding=args.padding, pool=args.pool,
                            pool_stride=args.pool_stride, flip=args.flip, image_label=label)
    elif topic == "pool":
        x = _matrix_arg(args.input, "--input") if args.input else None
        e = ex.explain_pool(x, args.kernel_size, args.stride)
    elif topic == "channels":
        image, label = None, ""
        if args.image or args.sample:
            image, stem = _picture(args.image, args.sample, "RGB")
            label = stem
        if not 8 <= args.size <= 96:
            raise CLIError(f"--size must be between 8 and 96 pixels, got {args.size}")
        e = ex.explain_channels(image, size=args.size, image_label=label)
    elif topic == "layers":
        if args.model:
            model_name(args.model)                              # an unknown name is a one-line error
        e = ex.explain_layers(args.model)
    elif topic == "dropout":
        e = ex.explain_dropout(args.p, (args.batch, args.features), args.seed)
    elif topic == "winograd":
        e = ex.explain_winograd(args.seed)
    else:
        e = ex.explain_batchnorm(args.seed, args.momentum)
    print(e.text)
    if args.out:
        out = out_dir(args.out, Path("."))
        path = out / f"explain-{topic}.png"
        w, h = e.save_png(path)
        print(f"\nwrote {path} ({w}×{h} pixels)")
    return 0


# ---------------------------------------------------------------------------
# striate show


def cmd_show(args) -> int:
    from ..data.images import load_image, mnist_style
    from ..explain import format_matrix
    from ..train import load_run, preprocess
    from ..viz.kernels import feature_maps, first_conv_weight, plot_feature_maps, plot_kernels

    loaded = load_run(args.path)
    model, config = loaded.model, loaded.config
    run = Path(args.path)
    out = out_dir(args.out, run if run.is_dir() else run.parent)
    title = config.get("title") or config.get("model", {}).get("name", "model")
    want_kernels = args.kernels or not args.image
    if want_kernels:
        name, weight = first_conv_weight(model)
        path = out / "kernels.png"
        w, h = plot_kernels(weight, path, title=f"{title}: layer {name}")
        K, C, kh, kw = weight.shape
        print(f"{title}: first convolution {name}, {K} kernels of {C}×{kh}×{kw} "
              f"(values {weight.min():+.3f} to {weight.max():+.3f})")
        if K * C <= 16 and kh * kw <= 49:
            for k in range(K):
                for c in range(C):
                    print(f"  kernel {k}" + (f", input channel {c}" if C > 1 else ""))
                    print("\n".join(f"    {row}" for row in format_matrix(weight[k, c], 3)))
        print(f"wrote {path} ({w}×{h} pixels)")
    if args.image and loaded.images is not None:          # a run on class folders: its own preparation
        x = loaded.preprocess([args.image])                           # (1, C, H, W), as in training
        classes: list | None = list(loaded.classes)
    elif args.image:
        from ..data import DATASETS
        dataset = config.get("dataset", "mnist")
        classes = list(DATASETS[dataset].classes) if dataset in DATASETS else None
        input_shape = tuple(getattr(model, "input_shape", (1, 28, 28)))
        if input_shape[0] != 1:
            raise CLIError(f"show --image prepares digits the MNIST way (one channel); this model expects "
                         f"{input_shape[0]} channels")
        digit = mnist_style(load_image(args.image))                  # (28, 28), white on black, [0, 1]
        x = preprocess(dataset, input_shape, False)(digit[None, None], None)
    if args.image:
        layers, logits = feature_maps(model, x)
        shifted = logits[0] - logits[0].max()
        probs = np.exp(shifted) / np.exp(shifted).sum()
        classes = classes or [str(i) for i in range(probs.size)]
        stem = Path(args.image).stem
        path = out / f"feature-maps-{stem}.png"
        w, h = plot_feature_maps(x[0], layers, path, probs, classes,
                                 title=f"{title}: feature maps of {Path(args.image).name}")
        print(f"{args.image}: input {tuple(x.shape)} after preprocessing; layers:")
        for layer in layers:
            C, hh, ww = layer.maps.shape
            print(f"  {layer.name:10s} {layer.type:14s} (1, {C}, {hh}, {ww})  values "
                  f"{layer.maps.min():+.3f} to {layer.maps.max():+.3f}")
        order = np.argsort(-probs)[:args.top]
        print("prediction: " + ", ".join(f"{classes[i]} {100 * probs[i]:.1f}%" for i in order))
        print(f"wrote {path} ({w}×{h} pixels)")
    return 0


# ---------------------------------------------------------------------------
# parsers


def add_commands(subparsers) -> None:
    """Register ``summary``, ``filters``, ``explain`` and ``show`` on the ``striate`` sub-command parser."""
    from .. import filters, models
    from ..data.samples import SAMPLES
    raw = RAW

    s = subparsers.add_parser("summary", help="layers, output shapes and parameter counts of a model",
                              formatter_class=raw, description="Layers, output shapes and parameter counts.",
                              epilog="examples:\n  striate summary lenet5\n  striate summary lenet5-modern")
    s.add_argument("model", help=f"one of {', '.join(models.names())}")
    s.set_defaults(run=cmd_summary)

    f = subparsers.add_parser(
        "filters", help="hand-made kernels (blur, edges, emboss, lines) on a photo", formatter_class=raw,
        description="Apply hand-made kernels to a photo and write a grid PNG: the original and each "
                    "filtered image, with the kernel's values beside it.",
        epilog="kernels: " + ", ".join(filters.names()) + ", gaussian:SIGMA\n"
               "samples: " + ", ".join(SAMPLES) + " (the last eight need scikit-image)\n\n"
               "examples:\n  striate filters\n  striate filters --sample camera --kernels sobel-x,sobel-y,sobel\n"
               "  striate filters my.jpg --kernels emboss,line-45 --flip --out pictures\n"
               "  striate filters --custom '0 1 0; 1 -4 1; 0 1 0'")
    f.add_argument("image", nargs="?", help="an image file (PNG, JPEG, ...); default: --sample grace-hopper")
    f.add_argument("--sample", help="a sample photo shipped with matplotlib or scikit-image")
    f.add_argument("--kernels", help="comma-separated kernel names (default: " + ",".join(DEFAULT_FILTERS) + ")")
    f.add_argument("--custom", action="append", metavar="ROWS",
                   help="a kernel of your own, rows separated by ';' (repeatable)")
    f.add_argument("--size", type=int, default=256, help="shrink the longer side to this many pixels (default 256)")
    f.add_argument("--border", choices=("zeros", "reflect", "replicate"), default="reflect",
                   help="what lies past the image's edge (default reflect; CNN layers use zeros)")
    f.add_argument("--flip", action="store_true", help="also show the true convolution (kernel turned 180°)")
    f.add_argument("--columns", type=int, help="pictures per row")
    f.add_argument("--out", metavar="DIR", help="folder for the PNG (default: the current folder)")
    f.set_defaults(run=cmd_filters)

    e = subparsers.add_parser(
        "explain", help="step-by-step explanations with every number shown", formatter_class=raw,
        description="Explain one idea on a small example: text in the terminal, and a PNG with --out.",
        epilog="examples:\n  striate explain conv\n  striate explain conv --stride 2 --padding 1 --flip "
               "--kernel sobel-x\n  striate explain conv --sample camera --size 8 --kernel laplacian-4\n"
               "  striate explain pool --input '1 2 3; 4 5 6; 7 8 9' --kernel-size 2 --stride 1\n"
               "  striate explain layers --model lenet5 --out pictures")
    topics = e.add_subparsers(dest="topic", metavar="TOPIC", required=True)

    def topic(name, help_text, description):
        p = topics.add_parser(name, help=help_text, description=description, formatter_class=raw)
        p.add_argument("--out", metavar="DIR", help=f"also write explain-{name}.png into this folder")
        p.set_defaults(run=cmd_explain, topic=name)
        return p

    c = topic("conv", "a kernel sliding over an image, step by step",
              "Each window, its element-wise product with the kernel and the sum; the output-size\n"
              "formula; then max pooling. Default: the chapter's 5×5 digit '0' and an oblique-line kernel.")
    c.add_argument("--input", metavar="ROWS", help="your own small image, rows separated by ';'")
    c.add_argument("--image", help="an image file, shrunk to --size")
    c.add_argument("--sample", help="a sample photo, shrunk to --size")
    c.add_argument("--size", type=int, default=7, help="longer side for --image/--sample (3 to 12, default 7)")
    c.add_argument("--kernel", default="oblique", help="a kernel name or rows of numbers (default oblique)")
    c.add_argument("--stride", type=int, default=1, help="step between windows (default 1)")
    c.add_argument("--padding", type=int, default=0, help="rows and columns of zeros on each side (default 0)")
    c.add_argument("--pool", type=int, default=2, help="max-pooling window after the convolution (0: none)")
    c.add_argument("--pool-stride", type=int, default=1, dest="pool_stride")
    c.add_argument("--flip", action="store_true", help="compare with the true convolution (kernel turned 180°)")

    p = topic("pool", "max, average, sum, min and L2 pooling, and their gradients",
              "Five poolings of one input side by side, and where each sends its gradient.")
    p.add_argument("--input", metavar="ROWS", help="your own input, rows separated by ';'")
    p.add_argument("--kernel-size", type=int, default=2, dest="kernel_size", help="window size (default 2)")
    p.add_argument("--stride", type=int, help="default: the window size")

    ch = topic("channels", "colour channels, one kernel slice each, and the three fusions",
               "A colour image through two 3-channel kernels, fused by sum, concat and product.")
    ch.add_argument("--image", help="a colour image file")
    ch.add_argument("--sample", help="a sample photo (default: grace-hopper)")
    ch.add_argument("--size", type=int, default=40, help="shrink the longer side to this (8 to 96, default 40)")

    la = topic("layers", "shapes and parameter counts of a LeNet-5-style stack",
               "The shape after every layer and the arithmetic of every parameter count.")
    la.add_argument("--model", help="a registered model instead (e.g. lenet5, the 1998 paper's)")

    d = topic("dropout", "the dropout mask on a small batch", "Inverted dropout, in numbers.")
    d.add_argument("--p", type=float, default=0.5, help="drop probability (default 0.5)")
    d.add_argument("--batch", type=int, default=4)
    d.add_argument("--features", type=int, default=8)
    d.add_argument("--seed", type=int, default=0)

    b = topic("batchnorm", "batch normalisation of a small batch", "Batch normalisation, channel by channel.")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--momentum", type=float, default=0.1)

    w = topic("winograd", "a 3×3 convolution with 16 multiplications instead of 36",
              "Winograd's F(2×2, 3×3) on one 4×4 tile, against the direct sums.")
    w.add_argument("--seed", type=int, default=0, help="for the tile and kernel (small integers)")

    s = subparsers.add_parser(
        "show", help="first-layer kernels and feature maps of a trained model", formatter_class=raw,
        description="Draw what a trained model has inside: its first-layer kernels (--kernels) and the "
                    "feature maps of one image after every conv and pooling layer, with the predicted "
                    "probabilities (--image).",
        epilog="examples:\n  striate show runs/lenet5-mnist --kernels\n"
               "  striate show runs/lenet5-mnist --image seven.png --out pictures")
    s.add_argument("path", metavar="DIR_OR_FILE", help="a run folder written by 'striate train' (or its weights)")
    s.add_argument("--kernels", action="store_true", help="draw the first-layer kernels (the default)")
    s.add_argument("--image", help="an image of a digit (or garment): draw its feature maps")
    s.add_argument("--top", type=int, default=3, help="how many classes to list")
    s.add_argument("--out", metavar="DIR", help="folder for the PNGs (default: the run folder)")
    s.set_defaults(run=cmd_show)
