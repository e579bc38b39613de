"""fit / evaluate / train_step: a real training run, the run folder, exact resumption (also after Ctrl-C),
divergence."""
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import striate as st
import striate.functional as F
from striate import nn, optim
from striate.data import DataLoader, RandomTranslate, mnist_preprocess
from striate.optim.lr_scheduler import StepLR
from striate.train import CHECKPOINT, TrainingDiverged, TrainingInterrupted, evaluate, fit, load_checkpoint, train_step
from tests.compile.helpers import record_plan_batches
from tests.reliability.killable_run import toy_data

SHARED_MNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


class Tiny(nn.Module):
    """conv 4@3×3 → ReLU → max pool 2 → dropout → linear: (N, 1, 12, 12) → (N, 10)."""

    def __init__(self, width=4, rng=None):
        super().__init__()
        self.conv = nn.Conv2d(1, width, 3, rng=rng)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(0.3)              # draws from striate's default generator
        self.fc = nn.Linear(width * 5 * 5, 10, rng=rng)

    def forward(self, x):
        x = self.pool(F.relu(self.conv(x)))       # (N, width, 5, 5)
        return self.fc(self.drop(F.flatten(x)))   # (N, 10)


TRAIN, VAL = toy_data(200, 0), toy_data(60, 1)


def loaders(seed=3, batch_size=16):
    train = DataLoader(TRAIN, batch_size=batch_size, shuffle=True, seed=seed,
                       transform=mnist_preprocess(pad_to=None, augment=RandomTranslate(1)))
    val = DataLoader(VAL, batch_size=32, transform=mnist_preprocess(pad_to=None))
    return train, val


def setup(seed=0, adam=False, width=4):
    """A fresh model, optimizer and scheduler; the model's weights depend on ``seed`` only."""
    st.manual_seed(seed)
    model = Tiny(width)
    opt = optim.Adam(model.parameters(), lr=0.01) if adam else \
        optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    return model, opt, StepLR(opt, step_size=1, gamma=0.5)


def weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert list(a) == list(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), f"{k} differs"


def strip_times(history):
    return [{k: v for k, v in e.items() if k not in ("seconds", "images_per_second")} for e in history]


def run(out=None, epochs=2, resume=False, seed=0, adam=False, train_loader=None, **kwargs):
    model, opt, sched = setup(seed, adam)
    train, val = loaders()
    result = fit(model, F.cross_entropy, opt, train_loader or train, val, epochs=epochs, scheduler=sched,
                 out_dir=out, resume=resume, progress=False, log=lambda line: None, **kwargs)
    return model, result


@pytest.fixture(scope="module")
def reference():
    """Two uninterrupted epochs with SGD and with Adam: the weights every resumed run must end with."""
    refs = {}
    for adam in (False, True):
        model, result = run(adam=adam)
        refs[adam] = (weights(model), result)
    return refs


# -- exact resumption ---------------------------------------------------------------------------


def test_same_seed_same_weights(reference):
    model, result = run()
    assert_same_weights(weights(model), reference[False][0])
    assert strip_times(result["epochs"]) == strip_times(reference[False][1]["epochs"])
    other, _ = run(seed=1)
    assert not np.array_equal(weights(other)["fc.weight"], reference[False][0]["fc.weight"])


def test_resume_after_an_epoch_gives_identical_weights(tmp_path, reference):
    run(tmp_path, epochs=1)
    # a new process would rebuild everything from another state: model, RNG, optimizer
    model, result = run(tmp_path, epochs=2, resume=True, seed=123)
    assert_same_weights(weights(model), reference[False][0])
    assert strip_times(result["epochs"]) == strip_times(reference[False][1]["epochs"])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2] and metrics["finished"]


class SendsCtrlC:
    """The training loader, sending this process SIGINT (Ctrl-C) while making the batches in ``at``."""

    def __init__(self, loader, at):
        self.loader, self.at = loader, list(at)

    def __len__(self):
        return len(self.loader)

    def state_dict(self):
        return self.loader.state_dict()

    def iter_epoch(self, epoch, start_batch=0):
        for b, batch in enumerate(self.loader.iter_epoch(epoch, start_batch), start=start_batch):
            for _ in range(self.at.count((epoch, b))):
                os.kill(os.getpid(), signal.SIGINT)
            yield batch


@pytest.mark.parametrize("adam", [False, True])
def test_ctrl_c_mid_epoch_saves_and_resumes_exactly(tmp_path, reference, adam):
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(TrainingInterrupted, match=r"epoch 2, batch 6/13") as info:
        run(tmp_path, adam=adam, train_loader=SendsCtrlC(loaders()[0], at=[(2, 5)]))
    assert (info.value.epoch, info.value.batch) == (2, 6)
    assert signal.getsignal(signal.SIGINT) is before            # the handler is put back
    model, opt, sched = setup(7, adam)
    position, history = load_checkpoint(tmp_path / CHECKPOINT, model, opt, sched)
    assert (position["epoch"], position["batch"]) == (2, 6) and len(history) == 1
    model, result = run(tmp_path, adam=adam, resume=True, seed=7)
    assert_same_weights(weights(model), reference[adam][0])
    assert strip_times(result["epochs"]) == strip_times(reference[adam][1]["epochs"])


def test_ctrl_c_during_the_last_step_of_an_epoch_stops_at_the_epoch_end(tmp_path, reference):
    with pytest.raises(TrainingInterrupted, match="the start of epoch 2") as info:
        run(tmp_path, train_loader=SendsCtrlC(loaders()[0], at=[(1, 12)]))
    assert (info.value.epoch, info.value.batch) == (2, 0)
    model, _ = run(tmp_path, resume=True)
    assert_same_weights(weights(model), reference[False][0])


def test_a_second_ctrl_c_stops_at_once_and_the_last_checkpoint_survives(tmp_path, reference):
    with pytest.raises(KeyboardInterrupt, match="interrupted twice") as info:
        run(tmp_path, train_loader=SendsCtrlC(loaders()[0], at=[(2, 3), (2, 3)]))
    assert not isinstance(info.value, TrainingInterrupted)
    model, _ = run(tmp_path, resume=True)                 # from the end of epoch 1
    assert_same_weights(weights(model), reference[False][0])


def test_mid_epoch_checkpoints_resume_exactly(tmp_path, reference):
    """A run killed right after any mid-epoch checkpoint resumes to the same end."""
    class Killed(Exception):
        pass

    saves = []
    import striate.train.checkpoint as checkpoint_module
    real_save = checkpoint_module.save_checkpoint

    def save_then_die(path, model, optimizer, scheduler, position, *args):
        real_save(path, model, optimizer, scheduler, position, *args)
        saves.append((position["epoch"], position["batch"]))
        if position["epoch"] == 2 and position["batch"] == 9:
            raise Killed                                   # as if the process died just after writing it

    checkpoint_module.save_checkpoint = save_then_die
    try:
        with pytest.raises(Killed):
            run(tmp_path, checkpoint_seconds=0)
    finally:
        checkpoint_module.save_checkpoint = real_save
    assert saves[:3] == [(1, 1), (1, 2), (1, 3)] and (2, 0) in saves
    model, _ = run(tmp_path, resume=True, seed=5)
    assert_same_weights(weights(model), reference[False][0])


def test_a_failed_checkpoint_write_leaves_the_previous_one_intact(tmp_path, reference, monkeypatch):
    real_replace = os.replace
    writes = []

    def replace(src, dst):
        if str(dst).endswith(CHECKPOINT):
            writes.append(dst)
            if len(writes) == 2:                       # the checkpoint at the end of epoch 2
                raise OSError("No space left on device (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="simulated"):
        run(tmp_path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []    # no temporary file
    model, opt, sched = setup()
    assert load_checkpoint(tmp_path / CHECKPOINT, model, opt, sched)[0]["epoch"] == 2
    model, _ = run(tmp_path, resume=True)
    assert_same_weights(weights(model), reference[False][0])


def test_layer_generators_are_checkpointed_too(tmp_path):
    def build():
        st.manual_seed(0)
        model = Tiny()
        model.drop = nn.Dropout(0.5, rng=np.random.default_rng(42))       # a generator of its own
        opt = optim.SGD(model.parameters(), lr=0.05)
        return model, opt

    train, val = loaders()
    a, opt = build()
    fit(a, F.cross_entropy, opt, train, val, epochs=2, progress=False, log=lambda s: None)
    b, opt = build()
    fit(b, F.cross_entropy, opt, train, val, epochs=1, out_dir=tmp_path, progress=False, log=lambda s: None)
    b, opt = build()
    fit(b, F.cross_entropy, opt, train, val, epochs=2, out_dir=tmp_path, resume=True, progress=False,
        log=lambda s: None)
    assert_same_weights(weights(a), weights(b))


# -- what a resume refuses ------------------------------------------------------------------------


def test_resume_refuses_what_does_not_match(tmp_path):
    run(tmp_path, epochs=1)
    ckpt = tmp_path / CHECKPOINT
    with pytest.raises(FileNotFoundError, match="cannot resume: .*checkpoint.safetensors does not exist"):
        run(tmp_path / "elsewhere", resume=True)
    with pytest.raises(ValueError, match="needs out_dir"):
        run(None, resume=True)
    st.manual_seed(0)
    wide = Tiny(width=5)
    opt = optim.SGD(wide.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"does not fit this model: .*conv.weight"):
        load_checkpoint(ckpt, wide, opt, StepLR(opt, 1))
    model, opt, sched = setup()
    with pytest.raises(ValueError, match="scheduler's state but no scheduler"):
        load_checkpoint(ckpt, model, opt, None)
    other_seed = loaders(seed=4)[0]
    with pytest.raises(ValueError, match=r"other training data .*seed 3 there, 4 here"):
        load_checkpoint(ckpt, model, opt, sched, other_seed)
    with pytest.raises(ValueError, match=r"batch_size 16 there, 20 here"):
        load_checkpoint(ckpt, model, opt, sched, loaders(batch_size=20)[0])
    adam = optim.Adam(model.parameters())
    with pytest.raises(ValueError, match="made with the optimizer SGD, not Adam"):
        load_checkpoint(ckpt, model, adam, StepLR(adam, 1))
    with pytest.raises(ValueError, match="made with the scheduler StepLR, not CosineAnnealingLR"):
        load_checkpoint(ckpt, model, opt, optim.lr_scheduler.CosineAnnealingLR(opt, 3))
    with pytest.raises(ValueError, match=r"not a training checkpoint"):
        load_checkpoint(tmp_path / "model.safetensors", model, opt, sched)


def test_a_folder_holding_a_run_is_not_overwritten(tmp_path):
    run(tmp_path, epochs=1)
    with pytest.raises(FileExistsError, match="already holds a training run; continue it with resume=True"):
        run(tmp_path, epochs=1)


def test_resume_past_the_end_is_refused(tmp_path):
    run(tmp_path, epochs=2)
    with pytest.raises(ValueError, match=r"epochs=1: it is at epoch 3, batch 0, past the end"):
        run(tmp_path, epochs=1, resume=True)
    model, result = run(tmp_path, epochs=2, resume=True)      # a finished run: nothing left to do
    assert len(result["epochs"]) == 2


def test_fit_checks_its_arguments():
    model, opt, sched = setup()
    train, val = loaders()
    with pytest.raises(TypeError, match="train_loader must be a striate DataLoader"):
        fit(model, F.cross_entropy, opt, [(np.zeros((1, 1, 12, 12), np.float32), np.zeros(1))], epochs=1)
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"):
        fit(model, F.cross_entropy, opt, train, epochs=0)


# -- the run folder ---------------------------------------------------------------------------------


def test_run_folder(tmp_path):
    config = {"model": {"name": "tiny"}, "dataset": "toy", "title": "tiny on toy"}
    model, result = run(tmp_path, config=config, class_names=[f"c{i}" for i in range(10)])
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint.safetensors", "config.json", "confusion.png", "curves.png", "metrics.json",
                     "model.safetensors"]                       # no temporary files left behind
    assert json.loads((tmp_path / "config.json").read_text()) == config
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["finished"] is True
    assert len(metrics["epochs"]) == 2
    for e, lr in zip(metrics["epochs"], (0.05, 0.025)):
        assert {"epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "lr"} <= set(e)
        assert e["lr"] == pytest.approx(lr) and e["seconds"] > 0
        assert 0 <= e["train_acc"] <= 1 and 0 <= e["test_acc"] <= 1 and e["train_loss"] > 0
    assert metrics["final_test_acc"] == result["test_acc"] == metrics["epochs"][-1]["test_acc"]
    assert len(metrics["per_class_acc"]) == 10
    # the weights: plain st.load + load_state_dict
    state, meta = st.load(tmp_path / "model.safetensors", with_metadata=True)
    assert meta["config"] == config
    fresh = Tiny()
    fresh.load_state_dict(state)
    assert_same_weights(weights(fresh), weights(model))
    for png in ("curves.png", "confusion.png"):
        with Image.open(tmp_path / png) as img:
            assert img.format == "PNG" and img.size[0] > 300 and img.size[1] > 300


def test_metrics_and_checkpoint_after_every_epoch(tmp_path):
    seen = []

    def log(line):       # called at each epoch's end, before its checkpoint is written
        seen.append(line)
        if len(seen) == 2:
            model, opt, sched = setup()
            position, history = load_checkpoint(tmp_path / CHECKPOINT, model, opt, sched)
            assert (position["epoch"], position["batch"], len(history)) == (2, 0, 1)
            assert not json.loads((tmp_path / "metrics.json").read_text())["finished"]

    model, opt, sched = setup()
    train, val = loaders()
    fit(model, F.cross_entropy, opt, train, val, epochs=2, scheduler=sched, out_dir=tmp_path,
        progress=False, log=log)
    assert len(seen) == 2 and seen[0].startswith("epoch 1/2  train loss") and "test loss" in seen[0]


# -- divergence ----------------------------------------------------------------------------------


def test_nan_loss_stops_with_epoch_step_and_lr(tmp_path):
    images = TRAIN[0].astype(np.float32) / 255
    images[40, 3, 3] = np.nan                      # sample 40 is in the third batch of 16 (no shuffle)
    train = DataLoader((images, TRAIN[1]), batch_size=16)
    model, opt, sched = setup()
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 3 of 13 \(learning rate 0.05\): the loss is nan"):
        fit(model, F.cross_entropy, opt, train, epochs=1, out_dir=tmp_path, progress=False)
    assert all(np.isfinite(v).all() for v in model.state_dict().values())    # the bad step was not taken


def test_exploding_learning_rate_is_caught():
    model, opt, _ = setup()
    for group in opt.param_groups:
        group["lr"] = 1e12
    train, _ = loaders()
    expected = r"training diverged at epoch 1, step \d+ of 13 \(learning rate 1e\+12\)"
    with pytest.raises(TrainingDiverged, match=expected):
        fit(model, F.cross_entropy, opt, train, epochs=3, progress=False, log=lambda s: None)


def test_train_step_leaves_the_weights_alone_when_the_loss_or_a_gradient_is_not_finite():
    model, opt, _ = setup()
    before = weights(model)
    x = np.ones((2, 1, 12, 12), np.float32)
    y = np.array([1, 2])
    x[0, 0, 0, 0] = np.inf
    with pytest.raises(TrainingDiverged, match="the loss is nan"):
        train_step(model, F.cross_entropy, opt, x, y)

    def finite_loss_infinite_gradient(logits, target, reduction="mean"):
        def backward(g):
            return (np.full(logits.shape, np.inf, dtype=logits.data.dtype),)
        return st.Tensor.from_op(np.array(1.0, dtype=np.float32), (logits,), backward, "bad_loss")

    with pytest.raises(TrainingDiverged, match=r"the gradient of conv.weight is not finite \(loss 1\)"):
        train_step(model, finite_loss_infinite_gradient, opt, np.ones((2, 1, 12, 12), np.float32), y)
    assert_same_weights(weights(model), before)


# -- the seams for training in several processes ------------------------------------------------------


def one_step(lr, transform_grads=None):
    """One plain-SGD step of a fresh Tiny on the first training batch: (model, loss)."""
    st.manual_seed(0)                              # the same weights and the same dropout mask every time
    model = Tiny()
    opt = optim.SGD(model.parameters(), lr=lr)     # the update is exactly -lr × grad
    x, y = next(iter(loaders()[0]))
    loss, _ = train_step(model, F.cross_entropy, opt, x, y, transform_grads=transform_grads)
    return model, loss


def test_transform_grads_runs_between_backward_and_the_step():
    calls = []

    def halve(params):
        calls.append([(p, p.grad.copy(), p.data.copy()) for p in params])
        for p in params:
            p.grad = p.grad * np.float32(0.5)

    model, loss = one_step(0.1, halve)
    plain, plain_loss = one_step(0.1)
    assert len(calls) == 1 and [p for p, _, _ in calls[0]] == list(model.parameters())
    start = [p.data for p in one_step(0.0)[0].parameters()]      # lr 0: the initial weights
    for (_, grad, data), q, initial in zip(calls[0], plain.parameters(), start):
        np.testing.assert_array_equal(data, initial)            # before the step
        np.testing.assert_array_equal(grad, q.grad)             # after backward: the gradient as computed
    # the step used the halved gradients: the same as a half learning rate
    halved_lr, _ = one_step(0.05)
    for k, v in weights(model).items():
        np.testing.assert_allclose(v, weights(halved_lr)[k], rtol=1e-6, atol=1e-7, err_msg=k)
    assert not np.array_equal(weights(model)["fc.weight"], weights(plain)["fc.weight"])
    assert loss == plain_loss


def test_transform_grads_that_zeroes_leaves_the_weights_and_a_nonfinite_one_is_caught():
    def zero(params):
        for p in params:
            p.grad[...] = 0

    model, _ = one_step(0.1, zero)
    assert_same_weights(weights(model), weights(one_step(0.0)[0]))

    def poison(params):
        params[0].grad[0] = np.nan

    with pytest.raises(TrainingDiverged, match=r"the gradient of conv.weight is not finite"):
        one_step(0.1, poison)


def test_fit_passes_transform_grads_to_every_step():
    train, val = loaders()
    steps = []

    def zero(params):
        steps.append(len(params))
        for p in params:
            p.grad[...] = 0

    st.manual_seed(0)
    model = Tiny()
    before = weights(model)
    fit(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1), train, val, epochs=2, progress=False,
        log=lambda line: None, transform_grads=zero)
    assert steps == [4] * 2 * len(train)                  # every step, with the 4 parameters
    assert_same_weights(weights(model), before)


def test_a_process_that_does_not_write_trains_the_same_and_writes_nothing(tmp_path, reference, capsys):
    said = []

    def train(out, writer, resume=False, epochs=2):
        model, opt, sched = setup()
        train_loader, val = loaders()
        result = fit(model, F.cross_entropy, opt, train_loader, val, epochs=epochs, scheduler=sched, out_dir=out,
                     resume=resume, progress=True, log=said.append, config={"model": {"name": "tiny"}},
                     writer=writer)
        return model, result

    capsys.readouterr()
    model, result = train(tmp_path / "quiet", writer=False)
    assert not (tmp_path / "quiet").exists()                       # no folder, no file
    assert said == [] and capsys.readouterr().err == ""           # no log line, no progress bar
    assert_same_weights(weights(model), reference[False][0])
    assert strip_times(result["epochs"]) == strip_times(reference[False][1]["epochs"])

    train(tmp_path / "run", writer=True, epochs=1)                 # the writer: a folder, a bar, a log line
    assert said and capsys.readouterr().err != ""
    files = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    said.clear()
    model, _ = train(tmp_path / "run", writer=False, resume=True)  # resumes from the writer's checkpoint
    assert_same_weights(weights(model), reference[False][0])
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == files     # and leaves it alone
    assert said == [] and capsys.readouterr().err == ""
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        train(tmp_path / "nothing", writer=False, resume=True)


# -- evaluate -------------------------------------------------------------------------------------


class Lookup(nn.Module):
    """Logits given by the input itself: x (N, K) → x."""

    def forward(self, x):
        return x if isinstance(x, st.Tensor) else st.Tensor(x)


def test_evaluate_counts_and_restores_the_mode():
    y = np.array([0, 0, 1, 1, 2, 2, 2, 0])
    pred = np.array([0, 1, 1, 1, 2, 0, 2, 0])
    logits = np.eye(5, dtype=np.float32)[pred] * 3
    batches = [(logits[:5], y[:5]), (logits[5:], y[5:])]
    model = Lookup()
    model.train()
    result = evaluate(model, batches)
    assert model.training
    assert result["n"] == 8 and result["acc"] == pytest.approx(6 / 8)
    assert result["confusion"].shape == (5, 5)            # the model's 5 outputs, though labels stop at 2
    np.testing.assert_array_equal(result["confusion"][:3, :3], [[2, 1, 0], [0, 2, 0], [1, 0, 2]])
    np.testing.assert_allclose(result["per_class_acc"], [2 / 3, 1, 2 / 3, 0, 0])
    expected = F.cross_entropy(st.Tensor(logits), y).item()
    assert result["loss"] == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="yielded no batches"):
        evaluate(model, [])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\), got labels from 0 to 2"):
        evaluate(model, batches, num_classes=2)


# -- the evaluation through st.compile ------------------------------------------------------------


@pytest.fixture
def plan_runs(monkeypatch):
    """The sizes of the batches that compiled plans computed, in order."""
    return record_plan_batches(monkeypatch)


def test_evaluate_runs_the_compiled_plan_unless_told_not_to(plan_runs):
    model, _, _ = setup()
    _, val = loaders()                                     # 60 images: batches of 32 and 28, two plans
    compiled = evaluate(model, val)
    assert plan_runs == [32, 28]
    plan_runs.clear()
    eager = evaluate(model, val, compiled=False)
    assert plan_runs == []
    np.testing.assert_array_equal(compiled["confusion"], eager["confusion"])


@pytest.mark.parametrize("name", ["lenet5", "lenet5-modern", "alexnet-small", "trained"])
def test_evaluate_compiled_counts_what_op_by_op_counts(name, reference):
    """The same correct predictions, class by class, and the same loss to float32 rounding; and the
    same numbers again on a second run (nothing is timed to choose how to compute)."""
    from striate import models
    if name == "trained":                                  # Tiny after two epochs (test accuracy about 0.9)
        model = Tiny()
        model.load_state_dict(reference[False][0])
        _, loader = loaders()
    else:
        model = models.get(name, rng=0)
        g = np.random.default_rng(5)
        images, labels = g.integers(0, 256, (150, 28, 28)).astype(np.uint8), g.integers(0, 10, 150)
        loader = DataLoader((images, labels), batch_size=64, transform=mnist_preprocess(pad_to=32))
    model.train()
    compiled, eager = evaluate(model, loader), evaluate(model, loader, compiled=False)
    assert model.training
    np.testing.assert_array_equal(compiled["confusion"], eager["confusion"])
    assert compiled["acc"] == eager["acc"] and compiled["n"] == eager["n"]
    assert compiled["loss"] == pytest.approx(eager["loss"], rel=1e-5)
    again = evaluate(model, loader)
    assert again["loss"] == compiled["loss"]
    np.testing.assert_array_equal(again["confusion"], compiled["confusion"])


def test_evaluate_keeps_no_plan_once_it_returns(monkeypatch):
    """Each call plans for itself (its batch shapes, the current weights) and lets its plans go:
    evaluating many times holds no memory."""
    import gc
    import weakref

    from striate.compile.plan import Plan
    made, make = [], Plan.__init__

    def init(self, *args, **kwargs):
        make(self, *args, **kwargs)
        made.append(weakref.ref(self))
    monkeypatch.setattr(Plan, "__init__", init)
    model, _, _ = setup()
    _, val = loaders()
    for _ in range(3):
        evaluate(model, val)
    gc.collect()
    assert len(made) == 6 and all(plan() is None for plan in made)


def test_the_test_pass_of_each_epoch_sees_that_epochs_weights(reference, plan_runs):
    """fit evaluates through st.compile after every epoch (the reference ran so): each epoch's test
    loss and accuracy are those of that epoch's weights, as an op-by-op evaluation gives them, and
    the training itself is not touched: the weights come out bit for bit the same."""
    model, result = run(epochs=2, compiled=False)
    assert plan_runs == []
    assert_same_weights(weights(model), reference[False][0])
    compiled_epochs = reference[False][1]["epochs"]
    for c, e in zip(compiled_epochs, result["epochs"], strict=True):
        assert c["test_acc"] == e["test_acc"]
        assert c["test_loss"] == pytest.approx(e["test_loss"], rel=1e-5)
    assert compiled_epochs[0]["test_loss"] != pytest.approx(compiled_epochs[1]["test_loss"], rel=1e-3)
    _, again = run(epochs=2)
    assert plan_runs == [32, 28, 32, 28]                   # planned and run after each epoch
    assert strip_times(again["epochs"]) == strip_times(compiled_epochs)


# -- a real run on MNIST ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST not found in {SHARED_MNIST}")
    from striate import models
    from striate.data import MNIST
    train_set, test_set = MNIST(root=SHARED_MNIST, train=True), MNIST(root=SHARED_MNIST, train=False)
    st.manual_seed(0)
    model = models.get("lenet5-modern")
    opt = optim.SGD(model.parameters(), lr=0.02, momentum=0.9, nesterov=True)
    prep = mnist_preprocess(pad_to=32)
    train = DataLoader((train_set.images[:9600], train_set.labels[:9600]), batch_size=32, shuffle=True, seed=0,
                       transform=prep)                                   # 300 steps
    test = DataLoader((test_set.images[:2000], test_set.labels[:2000]), batch_size=500, transform=prep)
    out = tmp_path_factory.mktemp("mnist-run")
    result = fit(model, F.cross_entropy, opt, train, test, epochs=1, out_dir=out, progress=False,
                 log=lambda s: None, config={"model": model.config, "dataset": "mnist", "title": "lenet5-modern"})
    return out, model, result, test_set


@pytest.mark.slow
def test_lenet5_learns_mnist(mnist_run):
    out, model, result, _ = mnist_run
    assert result["test_acc"] > 0.85                # chance is 0.1; about 0.93 after these 300 steps
    assert result["test"]["n"] == 2000
    assert min(result["test"]["per_class_acc"]) > 0.6
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["final_test_acc"] == result["test_acc"]


@pytest.mark.slow
def test_a_users_picture_of_an_mnist_digit_is_recognised(mnist_run, tmp_path, capsys):
    """Test digits saved as large dark-on-light PNGs go through `striate predict` (the MNIST preprocessing)."""
    from striate.cli import main
    out, model, _, test_set = mnist_run
    with st.no_grad():
        x = mnist_preprocess(pad_to=32)(test_set.images[:40, None].astype(np.float32) / 255, None)
        right = np.flatnonzero(model(x).data.argmax(axis=1) == test_set.labels[:40])[:12]
    paths = []
    for i in right:
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(255 - test_set.images[i]).resize((300, 300), Image.BICUBIC).save(path)
        paths.append(str(path))
    assert main(["predict", str(out), *paths]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(paths)
    predicted = [int(line.split(":")[1].split()[0]) for line in lines]
    hits = sum(p == test_set.labels[i] for p, i in zip(predicted, right))
    assert hits >= len(right) - 1, lines
