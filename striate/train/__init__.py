"""Training: the loop, checkpoints, the memory check, the run folder, and the recipes.

    loop.py        train_step, evaluate, train_epoch (the one epoch loop), fit
    checkpoint.py  save_checkpoint / load_checkpoint: everything an exact resume needs
    memory.py      estimate_memory, available_memory, the check before training
    run.py         the run folder: its files and state; load_run -> Run (model, classes, predict)
    recipe.py      per-model recipes, make_optimizer, preprocess: shared by the command line
                   and the experiments

Imports run one way: recipe and memory use no other part; checkpoint neither;
run uses checkpoint and recipe; loop uses all of them.

>>> from striate.train import fit, load_run
"""
from .checkpoint import load_checkpoint, loader_identity, save_checkpoint
from .loop import EpochStats, TrainingDiverged, TrainingInterrupted, current_lr, evaluate, fit, train_epoch, train_step
from .memory import NotEnoughMemory, available_memory, check_memory, estimate_memory, format_bytes
from .recipe import (
                     DATASET_NAMES,
                     DEFAULT_DATASET,
                     FALLBACK_RECIPE,
                     IMAGE_MODELS,
                     RECIPES,
                     check_recipe,
                     image_preprocess,
                     image_preprocess_config,
                     make_optimizer,
                     model_for_images,
                     preprocess,
                     preprocess_config,
                     recipe_for,
)
from .run import (
                     CHECKPOINT,
                     CONFIG,
                     FINAL_WEIGHTS,
                     METRICS,
                     Run,
                     RunError,
                     RunWriter,
                     free_run_dir,
                     load_run,
                     read_json,
                     run_state,
)

__all__ = [
    # the loop
    "fit", "evaluate", "train_step", "train_epoch", "EpochStats", "current_lr", "TrainingDiverged",
    "TrainingInterrupted",
    # checkpoints
    "save_checkpoint", "load_checkpoint", "loader_identity",
    # memory
    "estimate_memory", "available_memory", "check_memory", "format_bytes", "NotEnoughMemory",
    # the run folder, and a run loaded back
    "CHECKPOINT", "FINAL_WEIGHTS", "METRICS", "CONFIG", "Run", "RunError", "RunWriter", "load_run", "run_state",
    "free_run_dir", "read_json",
    # recipes
    "RECIPES", "DEFAULT_DATASET", "FALLBACK_RECIPE", "DATASET_NAMES", "recipe_for", "check_recipe",
    "make_optimizer", "preprocess", "preprocess_config", "image_preprocess", "image_preprocess_config",
    "model_for_images", "IMAGE_MODELS",
]
