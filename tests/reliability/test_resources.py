"""Resource limits: a run that would need more memory than there is is refused before it starts, with the
estimate; a full disk or a read-only folder while saving gives a clear error and leaves the previous
checkpoint intact (and the run resumable to the same weights).

Tests run as root, where chmod does not stop writes: a read-only folder is simulated by making the
system calls fail as the kernel would (EROFS, EACCES); a full disk by making a write fail with ENOSPC.
One test uses a real chmod when not run as root.
"""
import errno
import os
import re
import tracemalloc

import numpy as np
import pytest

import striate as st
import striate.functional as F
import striate.train.checkpoint as checkpoint_module
import striate.train.loop as loop_module
import striate.train.memory as memory_module
from striate import models, nn, optim
from striate.cli import main
from striate.data import write_idx
from striate.serialization import atomic_write_bytes
from striate.train import CHECKPOINT, NotEnoughMemory, available_memory, estimate_memory, fit, load_checkpoint

from .killable_run import build

GB = 2 ** 30


# ---------------------------------------------------------------------------
# memory


def measured_peak(model, opt, x, y):
    """Bytes allocated at the peak of one training step beyond what existed before it (tracemalloc)."""
    loss = F.cross_entropy(model(x), y)                  # a first step creates the optimizer's state
    opt.zero_grad()
    loss.backward()
    opt.step()
    del loss
    tracemalloc.start()
    try:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        del loss
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("name, batch", [("lenet5", 128), ("lenet5-modern", 256), ("mlp", 256)])
def test_the_estimate_is_above_the_real_peak_but_not_far_above(name, batch):
    st.manual_seed(0)
    model = models.get(name)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    shape = tuple(model.input_shape)
    estimate = estimate_memory(model, shape, batch, opt)
    g = np.random.default_rng(0)
    peak = measured_peak(model, opt, g.standard_normal((batch,) + shape).astype(np.float32),
                         g.integers(0, 10, batch))
    weights = sum(p.data.nbytes for p in model.parameters())
    # the estimate counts the weights, which exist before the step; the workspace is a fixed 64 MB
    assert peak <= estimate - weights
    assert estimate - 64 * 2 ** 20 <= 4 * peak + 4 * weights


def test_the_estimate_leaves_the_model_and_the_random_generators_alone():
    st.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5), nn.Flatten(), nn.Linear(144, 2))
    model.train()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    rng = st.random.get_state()
    assert estimate_memory(model, (1, 8, 8), 32) > 32 * 2 * 4 * (4 * 36)     # at least the conv outputs, twice
    assert model.training and st.random.get_state() == rng
    for k, v in model.state_dict().items():
        assert np.array_equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        estimate_memory(model, (1, 8, 8), 0)


def test_available_memory_is_plausible():
    free = available_memory()
    if free is None:
        pytest.skip("this system does not say how much memory is free")
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < free <= total


@pytest.mark.parametrize("files, expected", [
    ({"/sys/fs/cgroup/memory.max": "8589934592", "/sys/fs/cgroup/memory.current": "6442450944",
      "/sys/fs/cgroup/memory.stat": "anon 5368709120\ninactive_file 1073741824\n"}, 3 * GB),
    ({"/sys/fs/cgroup/memory.max": "max", "/sys/fs/cgroup/memory.current": "6442450944"}, None),
    ({"/sys/fs/cgroup/memory/memory.limit_in_bytes": "4294967296",
      "/sys/fs/cgroup/memory/memory.usage_in_bytes": "3221225472",
      "/sys/fs/cgroup/memory/memory.stat": "cache 1\ntotal_inactive_file 536870912\n"}, GB + GB // 2),
    ({"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712",
      "/sys/fs/cgroup/memory/memory.usage_in_bytes": "1"}, None),
    ({}, None),
])
def test_a_containers_memory_limit_is_what_counts(monkeypatch, files, expected):
    import io

    def fake_open(path, *args, **kwargs):
        if path == "/proc/meminfo":
            return io.StringIO("MemTotal: 67108864 kB\nMemAvailable: 33554432 kB\n")      # 32 GB free
        if path in files:
            return io.StringIO(files[path])
        raise FileNotFoundError(path)
    monkeypatch.setattr(memory_module, "open", fake_open, raising=False)
    assert memory_module._cgroup_headroom() == expected
    assert available_memory() == (32 * GB if expected is None else expected)


@pytest.fixture(scope="module")
def alexnet():
    if "alexnet" not in models.names():
        pytest.skip("no alexnet model (yet)")
    return models.get("alexnet", rng=0)


class Batches:
    """A loader of (B, 3, 227, 227) batches that are never made: fit must refuse before asking for one."""

    def __init__(self, batch_size, num_samples):
        self.batch_size, self.num_samples = batch_size, num_samples

    def __len__(self):
        return -(-self.num_samples // self.batch_size)

    def sample_shape(self):
        return (3, 227, 227)

    def iter_epoch(self, epoch, start_batch=0):
        raise AssertionError("a batch was asked for: training started")


def test_alexnet_at_batch_4096_is_refused_up_front_with_the_estimate(alexnet, tmp_path, monkeypatch):
    opt = optim.SGD(alexnet.parameters(), lr=0.01, momentum=0.9)
    estimate = estimate_memory(alexnet, (3, 227, 227), 4096, opt)
    assert 40 * GB < estimate < 100 * GB              # ~8 MB of activations per image, twice, times 4,096
    monkeypatch.setattr(memory_module, "available_memory", lambda: 16 * GB)
    with pytest.raises(NotEnoughMemory, match=r"training at batch size 4,096 needs about \d+\.\d GB of memory "
                                              r"\(.* [GM]B for the weights, .* MB per sample .*\), but only 16\.0 GB "
                                              r"is available; a batch size of at most \d+ should fit") as info:
        fit(alexnet, F.cross_entropy, opt, Batches(4096, 100_000), epochs=1, out_dir=tmp_path / "run", progress=False)
    assert info.value.needed == estimate and info.value.available == 16 * GB
    assert 0 < info.value.fits < 4096
    assert isinstance(info.value, MemoryError)
    assert not (tmp_path / "run").exists()                                   # refused before anything was made
    # the batch it proposes passes the same check
    memory_module.check_memory(alexnet, (3, 227, 227), info.value.fits, opt)


def test_a_batch_no_machine_has_is_refused_on_this_machine_too(alexnet):
    opt = optim.SGD(alexnet.parameters(), lr=0.01)
    if available_memory() is None:
        pytest.skip("this system does not say how much memory is free")
    with pytest.raises(NotEnoughMemory, match=r"needs about [\d,.]+ GB"):
        fit(alexnet, F.cross_entropy, opt, Batches(1_000_000, 1_000_000), epochs=1, progress=False)


def test_the_check_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setattr(memory_module, "available_memory", lambda: 1)
    model, opt, sched, train_loader, val = build()
    with pytest.raises(NotEnoughMemory, match="fit\\(check_memory=False\\) skips this check"):
        fit(model, F.cross_entropy, opt, train_loader, epochs=1, progress=False)
    fit(model, F.cross_entropy, opt, train_loader, epochs=1, progress=False, check_memory=False, log=lambda s: None)
    monkeypatch.setattr(memory_module, "available_memory", lambda: None)       # unknown: no check
    fit(model, F.cross_entropy, opt, train_loader, epochs=1, progress=False, log=lambda s: None)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    data = tmp_path_factory.mktemp("toy")
    g = np.random.default_rng(0)
    for split, n in (("train", 96), ("t10k", 100)):
        write_idx(data / f"{split}-images-idx3-ubyte", g.integers(0, 255, (n, 28, 28)).astype(np.uint8))
        write_idx(data / f"{split}-labels-idx1-ubyte", g.integers(0, 10, n).astype(np.uint8))
    return data


def one_line(capsys, code, pattern, expected_code=2):
    err = capsys.readouterr().err
    assert code == expected_code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert re.search(pattern, lines[0]), lines[0]


def test_cli_refuses_with_the_estimate_and_has_an_override(data_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(memory_module, "available_memory", lambda: 72 * 2 ** 20)   # the workspace is 64 MB
    argv = ["train", "lenet5", "--data-dir", str(data_dir), "--batch-size", "96", "--epochs", "1", "--quiet"]
    code = main(argv + ["--out", str(tmp_path / "a")])
    one_line(capsys, code, r"striate: error: not enough memory: lenet5 at batch size 96 needs about \d+\.\d MB, "
                           r"only 72\.0 MB is available; try --batch-size \d+ \(or --no-memory-check to try anyway\)")
    code = main(argv + ["--out", str(tmp_path / "b"), "--no-memory-check"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "b" / "model.safetensors").exists()


# ---------------------------------------------------------------------------
# a full disk, a read-only folder


def fail_writes(monkeypatch, code, after=0, where=None):
    """From the (after+1)-th atomic write on (into ``where``, if given), the data write fails with ``code``."""
    real_fdopen = os.fdopen
    seen = [0]

    class Failing:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

        def write(self, data):
            self.f.write(data[:100])                     # part of it made it to the disk, then no more room
            raise OSError(code, os.strerror(code))

        def __getattr__(self, name):
            return getattr(self.f, name)

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        if where is not None and not os.readlink(f"/proc/self/fd/{fd}").startswith(str(where)):
            return f
        seen[0] += 1
        return Failing(f) if seen[0] > after else f
    monkeypatch.setattr(os, "fdopen", fdopen)


def read_only(monkeypatch, folder, code=errno.EROFS):
    """Creating a file in ``folder`` fails as on a read-only file system (or without permission)."""
    real_open = os.open

    def guarded(path, flags, *args, **kwargs):
        if str(path).startswith(str(folder)) and flags & os.O_CREAT:
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args, **kwargs)
    monkeypatch.setattr(os, "open", guarded)


def weights(model):
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    from .killable_run import train
    return weights(train(tmp_path_factory.mktemp("uninterrupted")))


def run(out, resume=False):
    from .killable_run import train
    return train(out, resume=resume)


@pytest.mark.skipif(not os.path.exists("/proc/self/fd"), reason="needs /proc/self/fd")
def test_disk_full_mid_run_keeps_the_previous_checkpoint_and_resumes_exactly(tmp_path, monkeypatch, reference):
    out = tmp_path / "run"
    out.mkdir()
    fail_writes(monkeypatch, errno.ENOSPC, after=13, where=out)             # the 14th write: epoch 2, step 3
    with pytest.raises(OSError, match=r"cannot save the checkpoint of epoch 2, batch 3 in .*checkpoint.safetensors: "
                                      r"No space left on device; the previous checkpoint \(epoch 2, batch 2\) is "
                                      r"intact; free some space or make the folder writable, then resume") as info:
        run(out)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.safetensors", "metrics.json"]   # no temporary file
    model, opt, sched, train_loader, _ = build()
    position, _ = load_checkpoint(out / CHECKPOINT, model, opt, sched, train_loader)
    assert (position["epoch"], position["batch"]) == (2, 2)
    resumed = run(out, resume=True)                                         # space freed: carry on
    for k, v in weights(resumed).items():
        assert np.array_equal(v, reference[k]), k


def test_disk_full_in_st_save_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "model.safetensors"
    st.save({"w": np.ones(4, np.float32)}, path)
    before = path.read_bytes()
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(OSError, match=rf"cannot write {path}: No space left on device; the file there is left as "
                                      rf"it was") as info:
        st.save({"w": np.zeros(4, np.float32)}, path)
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.safetensors"]


@pytest.mark.parametrize("code, exc_type, words", [(errno.EROFS, OSError, "Read-only file system"),
                                                   (errno.EACCES, PermissionError, "Permission denied")])
def test_a_read_only_run_folder_is_refused_before_training(tmp_path, monkeypatch, code, exc_type, words):
    out = tmp_path / "run"
    out.mkdir()
    read_only(monkeypatch, out, code)
    model, opt, sched, train_loader, val = build()
    monkeypatch.setattr(loop_module, "train_step", lambda *a: pytest.fail("training started"))
    with pytest.raises(exc_type, match=rf"cannot write in the run folder {out}: {words}; choose a writable out_dir"):
        fit(model, F.cross_entropy, opt, train_loader, epochs=1, out_dir=out, progress=False)
    monkeypatch.undo()
    assert list(out.iterdir()) == []


def test_a_folder_that_turns_read_only_mid_run_keeps_the_last_checkpoint(tmp_path, monkeypatch, reference):
    out = tmp_path / "run"
    calls = [0]
    real_save = checkpoint_module.save_checkpoint

    def save_then_lock(path, *args, **kwargs):
        real_save(path, *args, **kwargs)
        calls[0] += 1
        if calls[0] == 7:                          # after the checkpoint of epoch 1, batch 7
            read_only(monkeypatch, out)
    monkeypatch.setattr(checkpoint_module, "save_checkpoint", save_then_lock)
    with pytest.raises(OSError, match=r"cannot save the checkpoint of epoch 1, batch 8 .*Read-only file system; "
                                      r"the previous checkpoint \(epoch 1, batch 7\) is intact"):
        run(out)
    monkeypatch.undo()
    model, opt, sched, train_loader, _ = build()
    assert load_checkpoint(out / CHECKPOINT, model, opt, sched, train_loader)[0]["batch"] == 7
    resumed = run(out, resume=True)
    for k, v in weights(resumed).items():
        assert np.array_equal(v, reference[k]), k


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_really_read_only_folder(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    out.chmod(0o555)
    try:
        model, opt, sched, train_loader, _ = build()
        with pytest.raises(PermissionError, match=r"cannot write in the run folder .*Permission denied"):
            fit(model, F.cross_entropy, opt, train_loader, epochs=1, out_dir=out, progress=False)
    finally:
        out.chmod(0o755)


def test_cli_disk_full_is_one_line_and_resume_finishes(data_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    argv = ["train", "mlp", "--data-dir", str(data_dir), "--out", str(out), "--epochs", "2", "--quiet",
            "--batch-size", "16", "--checkpoint-every", "0"]
    out.mkdir()
    fail_writes(monkeypatch, errno.ENOSPC, after=4, where=out)     # config.json, then checkpoints 1/1 .. 1/3
    code = main(argv)
    one_line(capsys, code, r"striate: error: cannot save the checkpoint of epoch 1, batch 4 in .*: No space left on "
                           r"device; the previous checkpoint \(epoch 1, batch 3\) is intact")
    monkeypatch.undo()
    capsys.readouterr()
    assert main(argv + ["--resume"]) == 0
    assert (out / "model.safetensors").exists()


def test_atomic_write_into_a_missing_folder_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cannot write .*nowhere/x.json: No such file or directory"):
        atomic_write_bytes(tmp_path / "nowhere" / "x.json", b"{}")
