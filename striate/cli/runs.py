"""``striate train``, ``evaluate`` and ``predict``: a run of training, and using what it made.

    striate train lenet5                      train with the model's own recipe
    striate evaluate runs/lenet5-mnist        test accuracy, per class
    striate predict runs/lenet5-mnist my7.png what digit is this?
    striate train lenet5-modern --data-dir pets   your own images: pets/train/<class>/, pets/test/<class>/
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

# The recipes, the optimizer, the data's preparation and the run folder are the training
# package's (striate.train); the command line adds its options and messages.
from ..train import (
    DATASET_NAMES,
    DEFAULT_DATASET,
    FALLBACK_RECIPE,
    IMAGE_MODELS,
    RECIPES,
    check_recipe,
    format_bytes,
    free_run_dir,
    image_preprocess,
    image_preprocess_config,
    load_run,
    make_optimizer,
    model_for_images,
    preprocess,
    preprocess_config,
    read_json,
    recipe_for,
    run_state,
)
from .common import RAW, CLIError, add_threads_argument, model_name, plural

__all__ = ["add_commands", "cmd_train", "cmd_evaluate", "cmd_predict"]

# the recipe's keys that a command-line option can set, with the option's spelling
_OPTIONS = {"epochs": "--epochs", "batch_size": "--batch-size", "lr": "--lr", "optimizer": "--optimizer",
            "momentum": "--momentum", "weight_decay": "--weight-decay", "augment": "--augment"}
# the "dataset" of a run trained on class folders (its config also records "data_dir" and "images")
FOLDERS = "folders"
DEFAULT_VAL_SPLIT = 0.2
STATS_IMAGES = 2000          # the normalisation's mean and std come from up to this many training images


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


def _holds_class_folders(data_dir: str) -> bool:
    """Whether --data-dir names class folders (DIR/train/<class>/..., or DIR/<class>/...) rather than IDX files."""
    from ..data import DATASETS
    folder = Path(data_dir)
    if not folder.is_dir():
        return False
    for place in [folder] + [folder / name for name in DATASETS]:
        if place.is_dir() and any(place.glob("*-ubyte*")):
            return False
    return any(e.is_dir() and not e.name.startswith(".") for e in folder.iterdir())


def _warn_skipped(message: str) -> None:
    print(f"striate: warning: {message}", file=sys.stderr, flush=True)


def _folder_sets(data_dir, val_split: float | None, seed: int, size, channels, resize: str, cache_mb: float,
                 skip_bad: bool, classes=None, test_only: bool = False):
    """(training set or None, test set, a sentence saying where each comes from) for class folders in ``data_dir``.

    ``DIR/train`` with ``DIR/test`` (or ``DIR/val``); else ``DIR/<class>`` split by ``val_split``,
    stratified, with ``seed``. ``classes`` (a run's) names the labels of a test set alone.
    """
    from ..data import ImageFolder, split_indices
    root = Path(data_dir)
    options = dict(size=size, resize=resize, cache_bytes=int(cache_mb * 2 ** 20), skip_bad=skip_bad,
                   on_skip=_warn_skipped)
    train_dir = root / "train"
    if train_dir.is_dir():
        if val_split is not None and not test_only:
            raise CLIError(f"--val-split splits DIR/<class> folders, but {root} has its own train/ and test/ (or "
                           f"val/) sets; leave --val-split out")
        test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
        if test_dir is None:
            raise CLIError(f"--data-dir {root}: has train/ but neither test/ nor val/ beside it; add one, or put the "
                           f"class folders in {root} itself to split them with --val-split")
        train = None if test_only else ImageFolder(train_dir, channels=channels, classes=classes, **options)
        if train is not None:
            channels, classes = train.channels, train.classes
        test = ImageFolder(test_dir, channels=channels, classes=classes, **options)
        return train, test, f"{train_dir} and {test_dir}"
    if not val_split or not 0 < val_split < 1:
        raise CLIError(f"--val-split must be a fraction between 0 and 1, got {val_split}")
    whole = ImageFolder(root, channels=channels, classes=classes, **options)
    train_idx, test_idx = split_indices(whole.labels, val_split, seed)
    if len(test_idx) == 0:
        raise CLIError(f"--data-dir {root}: too few images to hold out {val_split:g} of each class for testing")
    where = (f"{root}, {len(test_idx):,} images held out for testing ({val_split:g} of each class, "
             f"stratified, seed {seed})")
    return (None if test_only else whole.subset(train_idx)), whole.subset(test_idx), where


def _limited(data, limit: int, seed: int):
    """The first ``limit`` samples of a seeded permutation (all when there are fewer)."""
    if limit >= len(data):
        return data
    pick = np.sort(np.random.default_rng(seed).permutation(len(data))[:limit])
    if hasattr(data, "subset"):
        return data.subset(pick)
    return data.folder.subset(data.indices[pick])


# ---------------------------------------------------------------------------
# commands


def cmd_train(args) -> int:
    from .. import models
    from .. import random as st_random
    from ..data import DATASETS, DataLoader
    from ..optim import lr_scheduler
    from ..train import CHECKPOINT, CONFIG

    name = model_name(args.model)
    comm = _communicator(args)
    if comm is None:                          # --workers N: this process starts the N that train
        return _launch_workers(args)
    args.comm = comm
    if args.limit is not None and args.limit < 1:
        raise CLIError(f"--limit must be a positive number of images, got {args.limit}")
    if args.seed is not None and args.seed < 0:
        raise CLIError(f"--seed must be a non-negative integer, got {args.seed}")
    if args.checkpoint_every is not None and not args.checkpoint_every >= 0:
        raise CLIError(f"--checkpoint-every must be a number of seconds >= 0, got {args.checkpoint_every}")
    given = {key: getattr(args, key) for key in _OPTIONS if getattr(args, key) is not None}

    folders = args.data_dir is not None and _holds_class_folders(args.data_dir)
    if folders and args.dataset:
        raise CLIError(f"--dataset names MNIST or Fashion-MNIST, but --data-dir {args.data_dir} holds class folders "
                       f"of your own images: leave --dataset out")
    if not folders and args.val_split is not None:
        raise CLIError("--val-split splits class folders of images; --data-dir names none")
    default_dataset = FOLDERS if folders else args.dataset or DEFAULT_DATASET.get(name, "mnist")
    run_name = Path(args.data_dir).resolve().name if folders else default_dataset
    out = Path(args.out) if args.out else Path("runs") / f"{name}-{run_name}"
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
        if dataset == FOLDERS and not folders:
            raise CLIError(f"--resume: {out} is a run on the class folders in {saved.get('data_dir')}; "
                           f"pass them again with --data-dir")
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
        saved = {}
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

    if dataset == FOLDERS:
        return _train_on_folders(args, name, recipe, seed, limit, out, note, saved)
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
          f"{train_loader.num_samples:,} training and {test_loader.num_samples:,} test images, "
          f"{plural(recipe['epochs'], 'epoch')}, batch {recipe['batch_size']}, {recipe['optimizer']} "
          f"lr {recipe['lr']:g}{', augmented' if recipe['augment'] else ''}; run folder {out}", flush=True)
    return _fit_and_report(args, name, model, optimizer, scheduler, train_loader, test_loader, recipe, out,
                           config, classes, dataset)


def _communicator(args):
    """This process's communicator; None when it is to start ``--workers`` processes itself.

    Under ``mpiexec`` with several ranks: the MPI communicator, with the abort hook,
    and rank 0 alone printing (the others' stdout goes nowhere; errors still show).
    """
    import os

    from ..dist import get_communicator, install_abort_hook, launched_by_mpi
    if args.workers is not None and args.workers < 1:
        raise CLIError(f"--workers must be at least 1, got {args.workers}")
    if not launched_by_mpi():
        return None if args.workers is not None and args.workers > 1 else get_communicator()
    try:
        comm = get_communicator()
    except ImportError as exc:
        raise CLIError(str(exc)) from None
    if args.workers is not None and args.workers != comm.size:
        raise CLIError(f"--workers {args.workers}, but mpiexec started {comm.size} processes; leave --workers out "
                       f"under mpiexec")
    install_abort_hook(comm)
    if comm.rank != 0:
        sys.stdout = open(os.devnull, "w")        # for the life of the process
    return comm


def _launch_workers(args) -> int:
    """``striate train ... --workers N``: run the same command on N processes under mpiexec; its exit code."""
    from ..dist import DistUnavailable, launch
    try:
        return launch(args.workers, _without_workers(args.argv), args.threads or 1)
    except DistUnavailable as exc:
        raise CLIError(str(exc)) from None


def _without_workers(argv: list[str]) -> list[str]:
    """The command line's arguments less ``--workers N`` (or ``--workers=N``)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == "--workers":
            skip = True
        elif not a.startswith("--workers="):
            out.append(a)
    return out


def _fit_and_report(args, name, model, optimizer, scheduler, train_loader, test_loader, recipe, out, config, classes,
                    data_name, skipped=None) -> int:
    """``fit`` with the command line's messages: progress, the test accuracy, what was written, what next."""
    from ..dist import DataParallel
    from ..functional import cross_entropy
    from ..train import NotEnoughMemory, TrainingInterrupted, fit

    comm = args.comm
    config["workers"] = comm.size
    config["sync_batchnorm"] = bool(args.sync_batchnorm)
    parallel = DataParallel(model, optimizer, comm, sync_batchnorm=args.sync_batchnorm)   # one process: as it is
    train_loader, test_loader = parallel.loader(train_loader), parallel.loader(test_loader)
    comm.barrier()                  # every process has read the run folder before rank 0 writes to it
    t0 = time.perf_counter()
    try:
        result = fit(model, cross_entropy, optimizer, train_loader, test_loader, epochs=recipe["epochs"],
                     scheduler=scheduler, out_dir=out, resume=args.resume,
                     progress=not args.quiet and sys.stderr.isatty(), class_names=classes, config=config,
                     checkpoint_seconds=args.checkpoint_every, log=lambda line: print(line, flush=True),
                     check_memory=not args.no_memory_check, **parallel.fit_arguments())
    except NotEnoughMemory as exc:
        advice = f"try --batch-size {exc.fits}" if exc.fits else "this model does not fit even one image at a time"
        raise CLIError(f"not enough memory: {name} at batch size {exc.batch_size:,} needs about "
                       f"{format_bytes(exc.needed)}, only {format_bytes(exc.available)} is available; "
                       f"{advice} (or --no-memory-check to try anyway)") from None
    except TrainingInterrupted as exc:
        where = f"after batch {exc.batch} of epoch {exc.epoch}" if exc.batch else f"at the start of epoch {exc.epoch}"
        again = f"striate train {name} --out {out}" + (f" --data-dir {args.data_dir}" if args.data_dir else "")
        if comm.rank != 0:
            return 130
        print(f"striate: interrupted; checkpoint saved {where} in {exc.checkpoint}. "
              f"Continue with: {again} --resume", file=sys.stderr)
        return 130
    wall = time.perf_counter() - t0
    if comm.rank != 0:
        return 0
    test = result["test"]
    print(f"test accuracy: {100 * test['acc']:.2f}% ({int(round(test['acc'] * test['n']))}/{test['n']}) "
          f"— {name} on {data_name}, {wall:.0f} s")
    if skipped is not None:
        skipped()
    print(f"wrote {out}/: metrics.json, model.safetensors, curves.png, confusion.png, config.json")
    print(f"next: striate evaluate {out}   |   striate predict {out} IMAGE.png")
    return 0


def _train_on_folders(args, name: str, recipe: dict, seed: int, limit, out: Path, note: str, saved: dict) -> int:
    """``striate train MODEL --data-dir DIR`` where DIR holds class folders of images."""
    from .. import models
    from .. import random as st_random
    from ..data import DataLoader, channel_stats
    from ..optim import lr_scheduler

    if name not in IMAGE_MODELS:
        raise CLIError(f"model {name!r} has no recipe for image folders; choose one of {', '.join(IMAGE_MODELS)}")
    if saved and args.val_split is not None and args.val_split != saved.get("val_split"):
        raise CLIError(f"--resume continues {out} with its own settings; --val-split {args.val_split} differs "
                       f"(the run has {saved.get('val_split')})")
    recorded = saved.get("images") or {}
    size = tuple(recorded["size"]) if recorded else tuple(models.get(name).input_shape[-2:])
    resize = recorded.get("resize") or args.resize
    val_split = saved.get("val_split") if saved else args.val_split
    if val_split is None and not (Path(args.data_dir) / "train").is_dir():
        val_split = DEFAULT_VAL_SPLIT
    train_set, test_set, where = _folder_sets(args.data_dir, val_split, seed, size, recorded.get("channels"), resize,
                                              args.cache_mb, args.skip_bad_images)
    classes, channels = list(train_set.classes), train_set.channels
    if limit:
        train_set = _limited(train_set, limit, seed)
        test_set = _limited(test_set, max(limit // 6, 100), seed)
    try:
        st_random.manual_seed(seed)
        model = model_for_images(name, channels, len(classes), size[0])
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    mean, std = channel_stats(train_set, STATS_IMAGES, seed)
    n_stats = min(len(train_set), STATS_IMAGES)
    train_loader = DataLoader(train_set, batch_size=recipe["batch_size"], shuffle=True, seed=seed,
                              transform=image_preprocess(mean, std, recipe["augment"]))
    test_loader = DataLoader(test_set, batch_size=256, shuffle=False, seed=seed, transform=image_preprocess(mean, std))
    optimizer = make_optimizer(recipe["optimizer"], model.parameters(), recipe["lr"], recipe["momentum"],
                               recipe["weight_decay"])
    scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=recipe["epochs"]) \
        if recipe.get("schedule") == "cosine" else None
    described, data_name = train_set.describe(), Path(args.data_dir).resolve().name
    config = {"model": model.config, "dataset": FOLDERS, "data_dir": str(Path(args.data_dir).resolve()),
              "val_split": val_split, "classes": classes, "images": described, "seed": seed, "limit": limit,
              "recipe": recipe, "preprocess": image_preprocess_config(mean, std, False, n_stats),
              "title": f"{name} on {data_name}"}
    H, W = size
    verb = "resuming" if args.resume else "training"
    print(f"{note}{verb} {name} ({model.num_parameters():,} parameters) on {len(classes)} classes of images from "
          f"{where}: {len(train_set):,} training and {len(test_set):,} test images, made "
          f"{'RGB' if channels == 3 else 'grayscale'} {H}×{W} ({resize}, bilinear), normalised with the mean "
          f"and std of {n_stats:,} training images; {plural(recipe['epochs'], 'epoch')}, batch "
          f"{recipe['batch_size']}, {recipe['optimizer']} lr {recipe['lr']:g}"
          f"{', augmented' if recipe['augment'] else ''}; run folder {out}", flush=True)
    return _fit_and_report(args, name, model, optimizer, scheduler, train_loader, test_loader, recipe, out, config,
                           classes, data_name, skipped=lambda: _report_skipped(train_set, test_set))


def _report_skipped(*sets) -> None:
    folders = {id(f): f for f in (getattr(s, "folder", s) for s in sets)}.values()
    skipped = sum(len(f.skipped) for f in folders)
    if skipped:
        print(f"skipped {plural(skipped, 'unreadable image')} (named in the warnings above)")


def _evaluate_folders(args, run) -> int:
    from ..data import DataLoader
    from ..train import evaluate

    config, images = run.config, run.images
    data_dir = args.data_dir or config.get("data_dir")
    if not data_dir or not Path(data_dir).is_dir():
        raise CLIError(f"{args.path}: trained on class folders in {data_dir}, which are not there; "
                       f"pass --data-dir DIR (DIR/test/<class>/..., or the class folders themselves)")
    if args.dataset:
        raise CLIError(f"{args.path}: the run was trained on class folders of images, not {args.dataset}; "
                       f"leave --dataset out")
    root = Path(data_dir)
    size, channels, resize = tuple(images["size"]), int(images["channels"]), images["resize"]
    trained_here = config.get("data_dir") is not None and root.resolve() == Path(config["data_dir"])
    test_dir = next((root / n for n in ("test", "val") if (root / n).is_dir()), None)
    if (root / "train").is_dir() or (trained_here and config.get("val_split")):
        # the run's own test images: DIR/test (or val), or the part of DIR/<class> it held out
        _, test_set, where = _folder_sets(root, config.get("val_split"), int(config.get("seed", 0)), size, channels,
                                          resize, args.cache_mb, args.skip_bad_images, classes=run.classes,
                                          test_only=True)
    else:
        # other images: DIR/test (or val) alone, or all of DIR/<class>
        from ..data import ImageFolder
        folder = test_dir or root
        test_set = ImageFolder(folder, size=size, channels=channels, resize=resize, classes=run.classes,
                               cache_bytes=int(args.cache_mb * 2 ** 20), skip_bad=args.skip_bad_images,
                               on_skip=_warn_skipped)
        where = str(folder)
    loader = DataLoader(test_set, batch_size=256, seed=0, transform=run.transform)
    result = evaluate(run.model, loader, num_classes=len(run.classes), progress=sys.stderr.isatty(),
                      compiled=not args.eager)
    print(f"{config['model']['name']} on {where} ({result['n']:,} images): "
          f"accuracy {100 * result['acc']:.2f}%, loss {result['loss']:.4f}")
    width = max(len(c) for c in run.classes)
    for name, acc, row in zip(run.classes, result["per_class_acc"], result["confusion"]):
        print(f"  {name:>{width}}  {100 * acc:6.2f}%  ({row.sum()} images)")
    _report_skipped(test_set)
    return 0


def cmd_evaluate(args) -> int:
    from ..data import DATASETS, DataLoader
    from ..train import evaluate

    run = load_run(args.path)
    if run.images is not None:
        return _evaluate_folders(args, run)
    model, config = run.model, run.config
    dataset = args.dataset or config.get("dataset", "mnist")
    if dataset not in DATASETS:
        raise CLIError(f"{args.path}: the run names an unknown data set {dataset!r}; pass --dataset")
    test_set = _load_dataset(dataset, False, args.data_dir)
    classes = DATASETS[dataset].classes
    loader = DataLoader(test_set, batch_size=1000, seed=0, transform=preprocess(dataset, model.input_shape, False))
    result = evaluate(model, loader, num_classes=len(classes), progress=sys.stderr.isatty(), compiled=not args.eager)
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
        if run.images is not None:                        # prepared as the run's training images were
            x = run.load_images([path])                    # (1, H, W, C) uint8
            probs = run.predict(x, compiled=not args.eager)[0]
            top = np.argsort(-probs, kind="stable")[:args.top]
            best = ", ".join(f"{classes[k]} {100 * probs[k]:.1f}%" for k in top)
            print(f"{path}: {classes[top[0]]}   ({best})")
            if args.show and x.shape[1] % 2 == 0:
                print(_ascii(x[0].mean(axis=2) / 255.0))
            continue
        digit = mnist_style(path)                                 # (28, 28) white on black, in [0, 1]
        probs = run.predict(digit[None], compiled=not args.eager)[0]      # prepared as in training
        top = np.argsort(-probs, kind="stable")[:args.top]
        best = ", ".join(f"{classes[k]} {100 * probs[k]:.1f}%" for k in top)
        print(f"{path}: {classes[top[0]]}   ({best})")
        if args.show:
            print(_ascii(digit))
    return 0


# ---------------------------------------------------------------------------
# parsers


def _eager_option(parser) -> None:
    parser.add_argument("--eager", action="store_true",
                        help="run the model op by op instead of through st.compile (which plans each batch "
                             "shape once, without timing anything; the results agree to float32 rounding)")


def _folder_options(parser) -> None:
    parser.add_argument("--cache-mb", type=float, default=512, dest="cache_mb", metavar="MB",
                        help="memory for decoded images, per folder (default 512): when a set fits, later "
                             "epochs decode nothing")
    parser.add_argument("--skip-bad-images", action="store_true", dest="skip_bad_images",
                        help="leave out unreadable image files with a warning (default: stop, naming the file)")


def add_commands(sub) -> None:
    """Register ``train``, ``evaluate`` and ``predict`` on the ``striate`` sub-command parser."""
    from .. import models
    raw = RAW
    recipes = "\n".join(f"  {k}: " + ", ".join(f"{key}={value}" for key, value in v.items())
                        for k, v in list(RECIPES.items()) + [("other models", FALLBACK_RECIPE)])
    t = sub.add_parser(
        "train", help="train a model on MNIST, Fashion-MNIST or your own images", formatter_class=raw,
        description="Train a model with its own recipe (see below; any option overrides that part of it).\n"
                    "The run folder gets config.json, a checkpoint after every epoch, metrics.json,\n"
                    "model.safetensors, curves.png and confusion.png. Ctrl-C saves a checkpoint and\n"
                    "--resume continues from it; the result is the same as an uninterrupted run.",
        epilog="examples:\n  striate train lenet5\n  striate train lenet5-modern --epochs 3\n"
               "  striate train lenet5-modern --dataset fashion-mnist --augment\n"
               "  striate train mlp --limit 3000 --epochs 1        (a quick trial)\n"
               "  striate train lenet5 --resume                    (continue an interrupted run)\n"
               "  striate train lenet5-modern --data-dir pets      (pets/train/<class>/*.jpg, pets/test/<class>/...)\n"
               "  striate train alexnet-small --data-dir photos --val-split 0.1   (photos/<class>/*.png)\n"
               "  striate train lenet5-modern --workers 2        (2 processes; or: mpiexec -n 2 python -m mpi4py "
               "-m striate train lenet5-modern)\n\n"
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
                   help="your own images in class folders: DIR/train/<class>/ and DIR/test/<class>/ (or val/), "
                        "or DIR/<class>/ split by --val-split (PNG, JPEG, BMP, GIF, WebP; any size, gray or "
                        "colour); or IDX files in DIR (or DIR/DATASET), unchecked: any number of images in "
                        "MNIST's file names; default: the usual search and download")
    t.add_argument("--val-split", type=float, dest="val_split", metavar="FRACTION",
                   help=f"with --data-dir DIR holding class folders DIR/<class>/ and no DIR/train, DIR/test: the "
                        f"fraction of each class held out for testing, drawn with --seed (default "
                        f"{DEFAULT_VAL_SPLIT})")
    t.add_argument("--resize", choices=("stretch", "pad"), default="stretch",
                   help="how images of other sizes are made the model's size: stretch (whole image, aspect ratio "
                        "not kept; the default) or pad (fitted inside, black around)")
    _folder_options(t)
    t.add_argument("--limit", type=int, metavar="N",
                   help="use the first N training images and N/6 test images (at least 100): quick trials")
    t.add_argument("--checkpoint-every", type=float, dest="checkpoint_every", metavar="SECONDS",
                   help="also checkpoint mid-epoch this often")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.add_argument("--no-memory-check", action="store_true", dest="no_memory_check",
                   help="start even if the estimated memory need exceeds the available memory "
                        "(by default such a run is refused before it starts)")
    add_threads_argument(t)
    t.add_argument("--workers", type=int, metavar="N",
                   help="train on N processes of this machine, data-parallel over MPI (extra striate[dist]): "
                        "starts mpiexec -n N PYTHON -m mpi4py -m striate train ...; --batch-size stays the "
                        "global batch, each process takes 1/N of it")
    t.add_argument("--sync-batchnorm", action="store_true", dest="sync_batchnorm",
                   help="with several processes, batch norm uses the statistics of the whole global batch "
                        "(by default each process normalises its own share, as PyTorch's DDP)")
    t.set_defaults(run=cmd_train)

    e = sub.add_parser("evaluate", help="test accuracy of a trained model, per class", formatter_class=raw,
                       description="Accuracy and loss on the test set, and the accuracy of each class.",
                       epilog="examples:\n  striate evaluate runs/lenet5-mnist\n"
                              "  striate evaluate runs/lenet5-mnist/model.safetensors\n"
                              "  striate evaluate runs/lenet5-mnist --dataset fashion-mnist\n"
                              "  striate evaluate runs/lenet5-mnist --eager     (op by op, not compiled)")
    e.add_argument("path", metavar="DIR_OR_FILE", help="a run folder, or its model.safetensors")
    e.add_argument("--dataset", choices=DATASET_NAMES, help="default: the one it was trained on")
    e.add_argument("--data-dir", dest="data_dir", metavar="DIR",
                   help="take the IDX files from DIR only; for a run on class folders, the test images "
                        "(DIR/test/<class>/ or DIR/val/<class>/, or the held-out part of DIR/<class>/); "
                        "default: the run's own")
    _folder_options(e)
    _eager_option(e)
    e.set_defaults(run=cmd_evaluate)

    p = sub.add_parser("predict", help="classify your own images", formatter_class=raw,
                       description="Classify image files (PNG, JPEG, ...; any size, dark-on-light or "
                                   "light-on-dark), prepared the MNIST way: grayscale, cropped, fitted to "
                                   "20×20 and centred by mass in 28×28. One picture, one digit.",
                       epilog="examples:\n  striate predict runs/lenet5-mnist seven.png three.jpg\n"
                              "  striate predict runs/lenet5-mnist seven.png --top 5 --show\n"
                              "  striate predict runs/lenet5-mnist seven.png --eager   (op by op, not compiled)")
    p.add_argument("path", metavar="DIR_OR_FILE", help="a run folder, or its model.safetensors")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=int, default=3, help="how many classes to list (default 3)")
    p.add_argument("--show", action="store_true", help="also print the 28×28 image the model sees")
    _eager_option(p)
    p.set_defaults(run=cmd_predict)
