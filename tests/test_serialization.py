"""st.save / st.load: safetensors files, nested state, atomic writes, and refusing anything else."""
import json
import os
import pickle
import struct

import numpy as np
import pytest

import striate as st
from striate import nn, optim
from striate.serialization import CheckpointError


def small_model(rng=0):
    return nn.Sequential(nn.Conv2d(1, 3, 3, rng=rng), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 2, rng=rng))


def test_module_round_trip(tmp_path, rng):
    model = small_model(0)
    model(rng.standard_normal((4, 1, 6, 6)).astype(np.float32))     # move the running statistics
    path = tmp_path / "model.safetensors"
    st.save(model, path)
    state = st.load(path)
    assert list(state) == list(model.state_dict())
    for k, v in model.state_dict().items():
        assert state[k].dtype == v.dtype and state[k].shape == v.shape
        np.testing.assert_array_equal(state[k], v)
    other = small_model(1)
    other.load_state_dict(state)
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    model.eval()
    other.eval()
    np.testing.assert_array_equal(model(x).data, other(x).data)
    state["0.weight"][...] = 0                 # loaded arrays are writable and our own
    assert model.state_dict()["0.weight"].any()


def test_plain_state_dict_is_an_ordinary_safetensors_file(tmp_path):
    from safetensors.numpy import load_file, save_file
    state = {"a.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "a.count": np.array(3, np.int64)}
    st.save(state, tmp_path / "s.safetensors")
    other_reader = load_file(str(tmp_path / "s.safetensors"))         # other tools see plain names
    assert set(other_reader) == set(state)
    # and a safetensors file written elsewhere loads as {name: array}
    save_file({"w": np.ones((2, 2), np.float32), "b": np.zeros(2, np.float64)}, str(tmp_path / "x.safetensors"))
    loaded = st.load(tmp_path / "x.safetensors")
    assert set(loaded) == {"w", "b"} and loaded["b"].dtype == np.float64


def test_training_checkpoint_round_trip(tmp_path, rng):
    """Model, optimizer (int-keyed per-parameter state), scheduler, RNG state, epoch, config: one file."""
    model = small_model(0)
    opt = optim.Adam(model.parameters(), lr=1e-2, amsgrad=True)
    sched = optim.MultiStepLR(opt, milestones=[1, 3], gamma=0.5)
    for _ in range(2):
        opt.zero_grad()
        model(rng.standard_normal((4, 1, 6, 6)).astype(np.float32)).sum().backward()
        opt.step()
        sched.step()
    st.manual_seed(11)
    ckpt = {"model": model, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
            "rng": st.random.get_state(), "epoch": 2, "best": float("inf"),
            "config": {"lr": 1e-2, "layers": [1, 3], "shape": (1, 6, 6), "name": "tiny", "note": None}}
    path = tmp_path / "ckpt.safetensors"
    st.save(ckpt, path, metadata={"created_by": "test"})

    from safetensors.numpy import load_file
    names = set(load_file(str(path)))
    assert "model.0.weight" in names and "optimizer.state.0.exp_avg" in names
    assert "optimizer.state.3.max_exp_avg_sq" in names

    back, meta = st.load(path, with_metadata=True)
    assert meta == {"created_by": "test"}
    assert back["epoch"] == 2 and back["best"] == float("inf")
    assert back["config"] == ckpt["config"] and isinstance(back["config"]["shape"], tuple)
    assert back["rng"] == ckpt["rng"]
    assert back["scheduler"] == ckpt["scheduler"]
    saved_opt = ckpt["optimizer"]
    assert set(back["optimizer"]["state"]) == set(saved_opt["state"])          # int keys stay ints
    assert all(isinstance(k, int) for k in back["optimizer"]["state"])
    for i, buffers in saved_opt["state"].items():
        for name, value in buffers.items():
            np.testing.assert_array_equal(back["optimizer"]["state"][i][name], value)
    assert back["optimizer"]["param_groups"] == saved_opt["param_groups"]      # betas tuple included

    # restoring all of it continues exactly where the run left off
    model2 = small_model(5)
    model2.load_state_dict(back["model"])
    opt2 = optim.Adam(model2.parameters(), lr=1e-2, amsgrad=True)
    sched2 = optim.MultiStepLR(opt2, milestones=[1, 3], gamma=0.5)
    opt2.load_state_dict(back["optimizer"])
    sched2.load_state_dict(back["scheduler"])
    st.random.set_state(back["rng"])
    assert st.random.default_rng().random() == np.random.default_rng(11).random()
    x = rng.standard_normal((4, 1, 6, 6)).astype(np.float32)
    for m, o, s in ((model, opt, sched), (model2, opt2, sched2)):
        o.zero_grad()
        m(x).sum().backward()
        o.step()
        s.step()
    for (k, a), b in zip(model.state_dict().items(), model2.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    assert sched.get_last_lr() == sched2.get_last_lr()


def test_awkward_keys_and_values(tmp_path):
    tree = {"$array": [1, 2], "dots": {"a.b": np.ones(2, np.float32)}, 7: "int key",
            "empty": np.zeros((0, 3), np.float32), "flag": np.array([True, False]),
            "scalar": np.float32(0.5), "nested": [(1, 2), {"x": [np.arange(3)]}]}
    st.save(tree, tmp_path / "t.safetensors")
    back = st.load(tmp_path / "t.safetensors")
    assert back["$array"] == [1, 2] and back[7] == "int key"
    assert back["empty"].shape == (0, 3) and back["flag"].dtype == bool
    assert back["scalar"] == 0.5 and back["nested"][0] == (1, 2)
    np.testing.assert_array_equal(back["nested"][1]["x"][0], np.arange(3))
    np.testing.assert_array_equal(back["dots"]["a.b"], np.ones(2))


def test_unsavable_values(tmp_path):
    path = tmp_path / "bad.safetensors"
    with pytest.raises(TypeError, match=r"cannot save a object at opt; checkpoints hold arrays"):
        st.save({"opt": object()}, path)
    with pytest.raises(TypeError, match="dict keys must be str or int"):
        st.save({(1, 2): 3}, path)
    with pytest.raises(TypeError, match="has dtype <U1"):
        st.save({"s": np.array(["a"])}, path)
    with pytest.raises(ValueError, match="two arrays would be stored under the name 'a.b'"):
        st.save({"a.b": np.ones(1), "a": {"b": np.ones(1)}}, path)
    with pytest.raises(TypeError, match="a single array needs a name"):
        st.save(np.ones(3), path)
    assert not path.exists()
    assert os.listdir(tmp_path) == []                    # and no temporary file left behind


# ---------------------------------------------------------------------------
# atomic writes


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.safetensors"
    st.save({"w": np.ones(3, np.float32)}, path)
    before = path.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full (simulated)")
    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        st.save({"w": np.zeros(3, np.float32)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]  # the temporary file was removed
    np.testing.assert_array_equal(st.load(path)["w"], np.ones(3))


def test_crash_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    """The writer dies after part of the data: the target still holds the old checkpoint."""
    path = tmp_path / "ckpt.safetensors"
    st.save({"w": np.ones(3, np.float32)}, path)
    before = path.read_bytes()
    real_fsync = os.fsync

    def dying_fsync(fd):
        raise KeyboardInterrupt       # e.g. Ctrl-C between the write and the rename
    monkeypatch.setattr(os, "fsync", dying_fsync)
    with pytest.raises(KeyboardInterrupt):
        st.save({"w": np.zeros(1000, np.float32)}, path)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]


# ---------------------------------------------------------------------------
# refusing what is not a checkpoint


class _Marker:
    """A pickle payload that would create a file when unpickled."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_malicious_pickle_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    for protocol in (2, 4, 5):
        path = tmp_path / f"evil{protocol}.safetensors"
        path.write_bytes(pickle.dumps({"state": _Marker(str(marker))}, protocol=protocol))
        with pytest.raises(CheckpointError, match=rf"evil{protocol}.safetensors: this is a Python pickle"):
            st.load(path)
        assert not marker.exists()
    # protocol 0 (text) has no magic bytes; it is refused as garbage all the same
    path = tmp_path / "evil0.pt"
    path.write_bytes(pickle.dumps(_Marker(str(marker)), protocol=0))
    with pytest.raises(CheckpointError, match="expected a safetensors checkpoint"):
        st.load(path)
    assert not marker.exists()


def test_torch_save_file_is_refused(tmp_path):
    import torch
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(CheckpointError, match=r"model.pt: this is a zip archive \(torch.save's format"):
        st.load(path)


@pytest.mark.parametrize("content, match", [
    (b"", r"has 0 bytes, fewer than the 8-byte header length"),
    (b"\x01\x02\x03", r"has 3 bytes"),
    (b"hello world, not a checkpoint at all", r"header length of \d+, which is not plausible"),
    (struct.pack("<Q", 50) + b"{" + b" " * 10, r"the header should be 50 bytes but only 11 follow"),
    (struct.pack("<Q", 4) + b"abcd", r"does not start with '\{'"),
    (struct.pack("<Q", 5) + b"{nope", r"the header is not valid JSON"),
    (struct.pack("<Q", 2) + b"[]", r"does not start with '\{'"),
    (struct.pack("<Q", 4) + b'{"":', r"not valid JSON"),
    (b"\x93NUMPY\x01\x00" + b"x" * 20, r"this is a NumPy .npy file"),
])
def test_garbage_is_refused_clearly(tmp_path, content, match):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=match) as info:
        st.load(path)
    assert "broken.safetensors" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_truncated_file_is_refused(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    st.save({"w": np.ones(100, np.float32), "epoch": 3}, path)
    data = path.read_bytes()
    for cut in (len(data) - 1, len(data) - 200, 30, 7):
        path.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match="ckpt.safetensors: .*(truncated|bytes)"):
            st.load(path)


def test_tampered_metadata_is_refused(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    st.save({"w": np.ones(2, np.float32)}, path)
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    header["__metadata__"]["striate.tree"] = '{"w": {"$array": "missing"}}'
    body = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(body)) + body + data[8 + n:])
    with pytest.raises(CheckpointError, match="refers to an array 'missing'"):
        st.load(path)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        st.load("/nonexistent/folder/ckpt.safetensors")


def test_atomic_write_bytes(tmp_path):
    from striate.serialization import atomic_write_bytes
    path = tmp_path / "history.json"
    atomic_write_bytes(path, b"[1]")
    atomic_write_bytes(str(path), b"[1, 2]")
    assert path.read_bytes() == b"[1, 2]" and os.listdir(tmp_path) == ["history.json"]
