"""Make a folder of colour images of mixed sizes and formats from Fashion-MNIST, to train on as class folders.

    python docs/make_colour_folder.py OUT [--train 10000] [--test 2000] [--seed 0]
    striate train lenet5-modern --data-dir OUT --epochs 3

Writes ``OUT/train/<class>/*.png|jpg`` and ``OUT/test/<class>/...`` from the
first ``--train`` training and ``--test`` test images of Fashion-MNIST (found as
``striate train`` finds it). Each 28×28 gray garment is tinted: a random colour
for the garment, another for the background, blended by the gray value, plus a
little noise; then resized to a random width and height from 20 to 60 pixels
(aspect ratio not kept) and saved as PNG, JPEG (quality 90), BMP, GIF or WebP in
turn. The colours say nothing about the class: a model has to learn the shapes.
Class names are Fashion-MNIST's, with "/" (not allowed in a folder name) written
as " or ": "T-shirt or top".
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from striate.data import FashionMNIST

FORMATS = (("png", "PNG"), ("jpg", "JPEG"), ("png", "PNG"), ("jpg", "JPEG"), ("bmp", "BMP"), ("gif", "GIF"),
           ("webp", "WEBP"))


def folder_name(class_name: str) -> str:
    return class_name.replace("/", " or ")


def tinted(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(28, 28) uint8 → (28, 28, 3) uint8: garment and background in two random colours that differ."""
    while True:
        ink, paper = rng.integers(0, 256, (2, 3))
        if np.abs(ink - paper).sum() > 200:          # enough contrast to see the garment
            break
    a = gray[..., None] / 255.0
    image = paper * (1 - a) + ink * a + rng.normal(0, 8, (28, 28, 3))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def write_split(images, labels, classes, folder: Path, rng: np.random.Generator) -> None:
    for name in classes:
        (folder / folder_name(name)).mkdir(parents=True, exist_ok=True)
    for i, (gray, label) in enumerate(zip(images, labels)):
        w, h = rng.integers(20, 61, 2)
        picture = Image.fromarray(tinted(gray, rng)).resize((int(w), int(h)), Image.Resampling.BICUBIC)
        ext, fmt = FORMATS[i % len(FORMATS)]
        if fmt == "GIF":
            picture = picture.quantize(256)
        options = {"quality": 90} if fmt in ("JPEG", "WEBP") else {}
        picture.save(folder / folder_name(classes[label]) / f"{i:05d}.{ext}", format=fmt, **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=int, default=10000, help="training images (default 10000)")
    parser.add_argument("--test", type=int, default=2000, help="test images (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for split, n, train in (("train", args.train, True), ("test", args.test, False)):
        data = FashionMNIST(train=train)
        write_split(data.images[:n], data.labels[:n], FashionMNIST.classes, args.out / split, rng)
        print(f"wrote {min(n, len(data))} images in {args.out / split}")


if __name__ == "__main__":
    main()
