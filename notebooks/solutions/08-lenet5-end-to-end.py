"""Solutions to the exercises of notebook 8 (LeNet-5 end to end).

Trains a smaller run than the notebook (5,000 digits) so that it runs in seconds.
"""
import numpy as np
from PIL import Image

import striate as st
import striate.functional as F
from striate import optim
from striate.data import MNIST, DataLoader
from striate.train import fit, make_optimizer, preprocess, recipe_for


# 1. count each (true, predicted) pair
def confusion_matrix(true, predicted, k=10):
    m = np.zeros((k, k), dtype=np.int64)
    np.add.at(m, (np.asarray(true), np.asarray(predicted)), 1)
    return m


train, test = MNIST(train=True), MNIST(train=False)
recipe = recipe_for("lenet5-modern")


def build():
    """Model, optimizer, scheduler and loaders, built the same way for the first run and for the resume."""
    st.manual_seed(0)
    model = st.models.get("lenet5-modern")
    opt = make_optimizer("sgd", model.parameters(), lr=recipe["lr"], momentum=recipe["momentum"],
                         weight_decay=recipe["weight_decay"])
    schedule = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=2)
    train_loader = DataLoader((train.images[:5000], train.labels[:5000]), batch_size=64, shuffle=True, seed=0,
                              transform=preprocess("mnist", model.input_shape, augment=True))
    test_loader = DataLoader(test, batch_size=1000, transform=preprocess("mnist", model.input_shape))
    return model, opt, schedule, train_loader, test_loader


model, opt, schedule, train_loader, test_loader = build()
config = {"model": model.config, "dataset": "mnist", "classes": [str(d) for d in range(10)]}
result = fit(model, F.cross_entropy, opt, train_loader, test_loader, epochs=1, scheduler=schedule,
             out_dir="runs/lenet5-small", config=config, class_names=config["classes"], progress=False)
run = st.load_run("runs/lenet5-small")
predicted = run.predict(test.images).argmax(axis=1)
mine = confusion_matrix(test.labels, predicted)
assert np.array_equal(mine, result["test"]["confusion"])
print("exercise 1: the confusion matrix matches fit's")

# 2. per-class accuracy: the diagonal over the row sums
per_class = mine.diagonal() / mine.sum(axis=1)
assert np.allclose(per_class, run.metrics["per_class_acc"])
print(f"exercise 2: worst digit {per_class.argmin()} ({100 * per_class.min():.1f}%), best {per_class.argmax()} "
      f"({100 * per_class.max():.1f}%)")

# 3. an image file: here a test digit drawn dark on light, larger, as a paint program would save it
digit = test.images[0]
Image.fromarray(255 - digit).resize((140, 140), Image.BILINEAR).save("my-digit.png")
probs = run.predict(["my-digit.png"])
print(f"exercise 3: my-digit.png is read as {probs.argmax()} ({100 * probs.max():.0f}%); it shows a {test.labels[0]}")

# 4. one more epoch, resumed from the checkpoint: everything built again exactly as for the first run
model, opt, schedule, train_loader, test_loader = build()
resumed = fit(model, F.cross_entropy, opt, train_loader, test_loader, epochs=2, scheduler=schedule,
              out_dir="runs/lenet5-small", config=config, class_names=config["classes"], resume=True, progress=False)
print(f"exercise 4: after epoch 2 (resumed), test accuracy {100 * resumed['test_acc']:.2f}% "
      f"(after epoch 1: {100 * result['test_acc']:.2f}%)")
assert [e["epoch"] for e in resumed["epochs"]] == [1, 2]
