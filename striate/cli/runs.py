"""``striate train``, ``evaluate`` and ``predict``: a run of training, and using what it made.

    striate train lenet5                      train with the model's own recipe
    striate evaluate runs/lenet5-mnist        test accuracy, per class
    striate predict runs/lenet5-mnist my7.png what digit is this?
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

# The recipes, the optimizer, the data's preparation and the run folder are the training
# package's (striate.train); the command line adds its options and messages.
from ..train import (DATASET_NAMES, DEFAULT_DATASET, FALLBACK_RECIPE, RECIPES, check_recipe, format_bytes,
                     free_run_dir, load_run, make_optimizer, preprocess, preprocess_config, read_json, recipe_for,
                     run_state)
from .common import RAW, CLIError, model_name, plural

__all__ = ["add_commands", "cmd_train", "cmd_evaluate", "cmd_predict"]

# the recipe's keys that a command-line option can set, with the option's spelling
_OPTIONS = {"epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "optimizer": "--optimizer",
            "momentum": "--momentum", "weight_decay": "--weight-decay", "augment": "--augment"}


# ---------------------------------------------------------------------------
# helpers of these commands


def _load_dataset(name: str, train: bool, data_dir: str | None):
    """The data set, from ``data_dir`` alone when given (your own IDX files: no checksum, no download)."""
    from ..data import DATASETS, get_dataset
    if data_dir is None:
        return get_dataset(name, train=train)
    folder = Path(data_dir)
    if not folder.is_dir():
        raise CLIError(f"--data-dir {folder}: no such folder")
    cls = DATASETS[name]
    split = "train" if train else "t10k"
    expected = f"{split}-images-idx3-ubyte[.gz] and {split}-labels-idx1-ubyte[.gz]"
    missing = CLIError(f"--data-dir {folder}: no {cls.__name__} {'training' if train else 'test'} files there "
                       f"(expected {expected} in {folder} or {folder / name})")
    from ..data import DatasetNotFoundError
    try:
        dataset = cls(root=folder, train=train, download=False, verify=False)
    except DatasetNotFoundError:
        raise missing from None
    # the class also searches its usual places: files found elsewhere are not the ones asked for
    if Path(dataset.root).resolve() not in (folder.resolve(), (folder / name).resolve()):
        raise missing
    return dataset


# ---------------------------------------------------------------------------
# commands


def cmd_train(args) -> int:
    from .. import models
    from .. import random as st_random
    from ..data import DATASETS, DataLoader
    from ..functional import cross_entropy
    from ..optim import lr_scheduler
    from ..train import CHECKPOINT, CONFIG, NotEnoughMemory, TrainingInterrupted, fit

    name = model_name(args.model)
    if args.limit is not None and args.limit < 1:
        raise CLIError(f"--limit must be a positive number of images, got {args.limit}")
    if args.seed is not None and args.seed < 0:
        raise CLIError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.checkpoint_every is not None and not args.checkpoint_every >= 0:
        raise CLIError(f"--checkpoint-every must be a number of seconds >= 0, got {args.checkpoint_every}")
    given = {key: getattr(args, key) for key in _OPTIONS if getattr(args, key) is not None}

    default_dataset = args.dataset or DEFAULT_DATASET.get(name, "mnist")
    out = Path(args.out) if args.out else Path("runs") / f"{name}-{default_dataset}"
    if out.exists() and not out.is_dir():
        raise CLIError(f"{out} is a file, not a run folder; choose another --out")
    if args.resume:
        # A resumed run keeps every setting of the first one: they are in its config.json.
        state = run_state(out)
        if state == "empty" or not (out / CONFIG).exists():
            raise CLIError(f"--resume: no interrupted run in {out} (no {CHECKPOINT}); "
                           f"start it without --resume, or name its folder with --out")
        saved = read_json(out / CONFIG)
        saved_name = (saved.get("model") or {}).get("name") if isinstance(saved.get("model"), dict) else None
        if saved_name != name:
            raise CLIError(f"--resume: {out} holds a run of model {saved_name!r}, not {name!r}")
        if not all(k in saved for k in ("recipe", "dataset", "seed")) or not isinstance(saved["recipe"], dict):
            raise CLIError(f"--resume: {out / CONFIG} lacks the run's recipe, data set or seed")
        recipe = dict(saved["recipe"])
        dataset, seed, limit = saved["dataset"], saved["seed"], saved.get("limit")
        conflicts = [f"{_OPTIONS[k]} {v} (the run has {recipe.get(k)})" for k, v in given.items()
                     if recipe.get(k) != v]
        for option, mine, theirs in (("--dataset", args.dataset, dataset), ("--seed", args.seed, seed),
                                     ("--limit", args.limit, limit)):
            if mine is not None and mine != theirs:
                conflicts.append(f"{option} {mine} (the run has {theirs})")
        if conflicts:
            raise CLIError(f"--resume continues {out} with its own settings; these options differ: "
                           f"{', '.join(conflicts)}")
        if state == "finished":
            raise CLIError(f"--resume: the run in {out} is finished, there is nothing to continue; "
                           f"start a new one (a new --out, or leave --out out)")
        note = ""
    else:
        recipe = recipe_for(name)
        recipe.update(given)
        dataset, seed, limit = default_dataset, args.seed if args.seed is not None else 0, args.limit
        state = run_state(out)
        if state == "unfinished":
            raise CLIError(f"{out} holds an unfinished run: continue it with --resume, "
                           f"or choose another folder with --out")
        note = ""
        if state == "finished":
            if args.out:
                raise CLIError(f"{out} holds a finished run, which is never overwritten; choose another --out")
            chosen = free_run_dir(out)
            note = f"{out} holds a finished run; this one goes to {chosen}\n"
            out = chosen
    check_recipe(recipe, _OPTIONS)

    st_random.manual_seed(seed)
    model = models.get(name)
    shape = tuple(model.input_shape)
    if len(shape) == 3 and (shape[0] != 1 or shape[1] < 28 or shape[1] != shape[2]):
        raise CLIError(f"model {name!r} takes {shape[0]}×{shape[1]}×{shape[2]} inputs, which {dataset}'s "
                       f"28×28 one-channel images cannot be made into; the models with a recipe for them are "
                       f"{', '.join(RECIPES)}")
    train_set = _load_dataset(dataset, True, args.data_dir)
    test_set = _load_dataset(dataset, False, args.data_dir)
    if limit:
        n_test = max(limit // 6, 100)
        train_set = (train_set.images[:limit], train_set.labels[:limit])
        test_set = (test_set.images[:n_test], test_set.labels[:n_test])
    classes = list(DATASETS[dataset].classes)
    train_loader = DataLoader(train_set, batch_size=recipe["batch_size"], shuffle=True, seed=seed,
                              transform=preprocess(dataset, model.input_shape, recipe["augment"]))
    test_loader = DataLoader(test_set, batch_size=1000, shuffle=False, seed=seed,
                             transform=preprocess(dataset, model.input_shape, False))
    optimizer = make_optimizer(recipe["optimizer"], model.parameters(), recipe["lr"], recipe["momentum"],
                               recipe["weight_decay"])
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe["epochs"]) \
        if recipe.get("schedule") == "cosine" else None

    config = {"model": model.config, "dataset": dataset, "classes": classes, "seed": seed, "limit": limit,
              "recipe": recipe, "preprocess": preprocess_config(dataset, model.input_shape, False),
              "title": f"{name} on {dataset}"}
    verb = "resuming" if args.resume else "training"
    print(f"{note}{verb} {name} ({model.num_parameters():,} parameters) on {dataset}: "
          f"{len(train_loader.labels):,} training and {len(test_loader.labels):,} test images, "
          f"{plural(recipe['epochs'], 'epoch')}, batch {recipe['batch_size']}, {recipe['optimizer']} "
          f"lr {recipe['lr']:g}{', augmented' if recipe['augment'] else ''}; run folder {out}", flush=True)
    t0 = time.perf_counter()
    try:
        result = fit(model, cross_entropy, optimizer, train_loader, test_loader, epochs=recipe["epochs"],
                     scheduler=scheduler, out_dir=out, resume=args.resume,
                     progress=not args.quiet and sys.stderr.isatty(), class_names=classes, config=config,
                     checkpoint_seconds=args.checkpoint_every, log=lambda line: print(line, flush=True),
                     check_memory=not args.no_memory_check)
    except NotEnoughMemory as exc:
        advice = f"try --batch-size {exc.fits}" if exc.fits else "this model does not fit even one image at a time"
        raise CLIError(f"not enough memory: {name} at batch size {exc.batch_size:,} needs about "
                       f"{format_bytes(exc.needed)}, only {format_bytes(exc.available)} is available; "
                       f"{advice} (or --no-memory-check to try anyway)") from None
    except TrainingInterrupted as exc:
        where = f"after batch {exc.batch} of epoch {exc.epoch}" if exc.batch else f"at the start of epoch {exc.epoch}"
        again = f"striate train {name} --out {out}" + (f" --data-dir {args.data_dir}" if args.data_dir else "")
        print(f"striate: interrupted; checkpoint saved {where} in {exc.checkpoint}. "
              f"Continue with: {again} --resume", file=sys.stderr)
        return 130
    wall = time.perf_counter() - t0
    test = result["test"]
    print(f"test accuracy: {100 * test['acc']:.2f}% ({int(round(test['acc'] * test['n']))}/{test['n']}) "
          f"— {name} on {dataset}, {wall:.0f} s")
    print(f"wrote {out}/: metrics.json, model.safetensors, curves.png, confusion.png, config.json")
    print(f"next: striate evaluate {out}   |   striate predict {out} IMAGE.png")
    return 0


def cmd_evaluate(args) -> int:
    from ..data import DATASETS, DataLoader
    from ..train import evaluate

    run = load_run(args.path)
    model, config = run.model, run.config
    dataset = args.dataset or config.get("dataset", "mnist")
    if dataset not in DATASETS:
        raise CLIError(f"{args.path}: the run names an unknown data set {dataset!r}; pass --dataset")
    test_set = _load_dataset(dataset, False, args.data_dir)
    classes = DATASETS[dataset].classes
    loader = DataLoader(test_set, batch_size=1000, seed=0, transform=preprocess(dataset, model.input_shape, False))
    result = evaluate(model, loader, num_classes=len(classes), progress=sys.stderr.isatty())
    print(f"{config['model']['name']} on the {dataset} test set ({result['n']:,} images): "
          f"accuracy {100 * result['acc']:.2f}%, loss {result['loss']:.4f}")
    width = max(len(c) for c in classes)
    for name, acc, row in zip(classes, result["per_class_acc"], result["confusion"]):
        print(f"  {name:>{width}}  {100 * acc:6.2f}%  ({row.sum()} images)")
    return 0


_SHADES = " .:-=+*#%@"


def _ascii(digit: np.ndarray) -> str:
    """A 28×28 image in [0, 1] as 14 lines of text (two rows per line)."""
    rows = (digit[0::2] + digit[1::2]) / 2
    index = np.clip((rows * len(_SHADES)).astype(int), 0, len(_SHADES) - 1)
    return "\n".join("    " + "".join(_SHADES[i] for i in line) for line in index)


def cmd_predict(args) -> int:
    from ..data.images import mnist_style

    if args.top < 1:
        raise CLIError(f"--top must be at least 1, got {args.top}")
    run = load_run(args.path)
    classes = run.classes
    for path in args.images:
        digit = mnist_style(path)                                 # (28, 28) white on black, in [0, 1]
        probs = run.predict(digit[None])[0]                       # prepared as in training
        top = np.argsort(-probs, kind="stable")[:args.top]
        best = ", ".join(f"{classes[k]} {100 * probs[k]:.1f}%" for k in top)
        print(f"{path}: {classes[top[0]]}   ({best})")
        if args.show:
            print(_ascii(digit))
    return 0


# ---------------------------------------------------------------------------
# parsers


def add_commands(sub) -> None:
    """Register ``train``, ``evaluate`` and ``predict`` on the ``striate`` sub-command parser."""
    from .. import models
    raw = RAW
    recipes = "\n".join(f"  {k}: " + ", ".join(f"{key}={value}" for key, value in v.items())
                        for k, v in list(RECIPES.items()) + [("other models", FALLBACK_RECIPE)])
    t = sub.add_parser(
        "train", help="train a model on MNIST or Fashion-MNIST", formatter_class=raw,
        description="Train a model with its own recipe (see below; any option overrides that part of it).\n"
                    "The run folder gets config.json, a checkpoint after every epoch, metrics.json,\n"
                    "model.safetensors, curves.png and confusion.png. Ctrl-C saves a checkpoint and\n"
                    "--resume continues from it; the result is the same as an uninterrupted run.",
        epilog="examples:\n  striate train lenet5\n  striate train lenet5-modern --epochs 3\n"
               "  striate train lenet5-modern --dataset fashion-mnist --augment\n"
               "  striate train mlp --limit 3000 --epochs 1        (a quick trial)\n"
               "  striate train lenet5 --resume                    (continue an interrupted run)\n\n"
               "recipes:\n" + recipes)
    t.add_argument("model", help=f"one of {', '.join(models.names())} ('striate summary MODEL' shows its layers)")
    t.add_argument("--dataset", choices=DATASET_NAMES, help="default: mnist")
    t.add_argument("--epochs", type=int, metavar="N", help="passes over the training set")
    t.add_argument("--batch-size", type=int, dest="batch_size", metavar="B")
    t.add_argument("--lr", type=float, help="learning rate (cosine-annealed over the epochs)")
    t.add_argument("--optimizer", choices=("sgd", "adam"))
    t.add_argument("--momentum", type=float, metavar="M", help="for sgd (Nesterov when > 0)")
    t.add_argument("--weight-decay", type=float, dest="weight_decay", metavar="WD")
    aug = t.add_mutually_exclusive_group()
    aug.add_argument("--augment", action="store_true", default=None, help="random ±2-pixel translations")
    aug.add_argument("--no-augment", action="store_false", dest="augment")
    t.add_argument("--seed", type=int, help="fixes initial weights, data order and augmentation (default 0); "
                                            "the same seed on the same machine gives the same weights")
    t.add_argument("--out", metavar="DIR", help="run folder (default runs/MODEL-DATASET; a finished run there "
                                                "is kept and a new folder runs/MODEL-DATASET-2, ... is used)")
    t.add_argument("--resume", action="store_true",
                   help="continue the interrupted run in the run folder, with its own settings")
    t.add_argument("--data-dir", dest="data_dir", metavar="DIR",
                   help="take the IDX files from DIR (or DIR/DATASET) only, unchecked: any number of images "
                        "in MNIST's file names; default: the usual search and download")
    t.add_argument("--limit", type=int, metavar="N",
                   help="use the first N training images and N/6 test images (at least 100): quick trials")
    t.add_argument("--checkpoint-every", type=float, dest="checkpoint_every", metavar="SECONDS",
                   help="also checkpoint mid-epoch this often")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--no-memory-check", action="store_true", dest="no_memory_check",
                   help="start even if the estimated memory need exceeds the available memory "
                        "(by default such a run is refused before it starts)")
    t.add_argument("--threads", type=int, default=1,
                   help="BLAS threads for the matrix products (default 1: LeNet's small products gain little "
                        "from a second thread, and lose badly when another program shares the cores)")
    t.set_defaults(run=cmd_train)

    e = sub.add_parser("evaluate", help="test accuracy of a trained model, per class", formatter_class=raw,
                       description="Accuracy and loss on the test set, and the accuracy of each class.",
                       epilog="examples:\n  striate evaluate runs/lenet5-mnist\n"
                              "  striate evaluate runs/lenet5-mnist/model.safetensors\n"
                              "  striate evaluate runs/lenet5-mnist --dataset fashion-mnist")
    e.add_argument("path", metavar="DIR_OR_FILE", help="a run folder, or its model.safetensors")
    e.add_argument("--dataset", choices=DATASET_NAMES, help="default: the one it was trained on")
    e.add_argument("--data-dir", dest="data_dir", metavar="DIR", help="take the IDX files from DIR only")
    e.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("predict", help="classify your own images", formatter_class=raw,
                       description="Classify image files (PNG, JPEG, ...; any size, dark-on-light or "
                                   "light-on-dark), prepared the MNIST way: grayscale, cropped, fitted to "
                                   "20×20 and centred by mass in 28×28. One picture, one digit.",
                       epilog="examples:\n  striate predict runs/lenet5-mnist seven.png three.jpg\n"
                              "  striate predict runs/lenet5-mnist seven.png --top 5 --show")
    p.add_argument("path", metavar="DIR_OR_FILE", help="a run folder, or its model.safetensors")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=int, default=3, help="how many classes to list (default 3)")
    p.add_argument("--show", action="store_true", help="also print the 28×28 image the model sees")
    p.set_defaults(run=cmd_predict)
