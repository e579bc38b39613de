"""Thread control (st.set_num_threads) and the tiles shared out over threads: results bit for bit the same."""
import os
import signal
import threading
import time
import warnings

import numpy as np
import pytest

import striate as st
import striate.functional as F
from striate import nn, threads


@pytest.fixture(autouse=True)
def restore_threads():
    before = st.get_num_threads()
    yield
    st.set_num_threads(before)


def test_set_and_get():
    st.set_num_threads(3)
    assert st.get_num_threads() == 3
    with threads.using(2):
        assert st.get_num_threads() == 2
    assert st.get_num_threads() == 3
    with threads.using(None):
        assert st.get_num_threads() == 3
    for bad in (0, -1, 1.5, "2", True, None):
        with pytest.raises(ValueError, match="set_num_threads expects a positive int"):
            st.set_num_threads(bad)


def test_default_is_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.delenv("STRIATE_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_threads", None)
    assert st.get_num_threads() == threads.available_cores() <= len(os.sched_getaffinity(0))
    monkeypatch.setattr(threads, "_threads", None)
    monkeypatch.setenv("STRIATE_NUM_THREADS", "5")
    assert st.get_num_threads() == 5
    monkeypatch.setattr(threads, "_threads", None)
    monkeypatch.setenv("STRIATE_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="STRIATE_NUM_THREADS must be a positive integer, got 'many'"):
        st.get_num_threads()


def test_affinity_and_cgroup_quota_cap_the_cores(monkeypatch, tmp_path):
    def write(path, text):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    member = tmp_path / "cgroup"
    v2 = tmp_path / "v2"
    write(member, "0::/\n")
    write(v2 / "cpu.max", "150000 100000\n")
    assert threads.cgroup_cpus(v2, member) == 1.5
    write(v2 / "cpu.max", "max 100000\n")
    assert threads.cgroup_cpus(v2, member) is None
    # the process's own cgroup, below the root, and the smallest quota on the way up
    write(member, "0::/system.slice/app.service\n")
    write(v2 / "system.slice" / "app.service" / "cpu.max", "max 100000\n")
    write(v2 / "system.slice" / "cpu.max", "300000 100000\n")
    assert threads.cgroup_cpus(v2, member) == 3.0
    write(v2 / "system.slice" / "app.service" / "cpu.max", "120000 100000\n")
    assert threads.cgroup_cpus(v2, member) == 1.2
    v1 = tmp_path / "v1"
    write(member, "4:memory:/x\n2:cpu,cpuacct:/docker/abc\n")
    write(v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "200000\n")
    write(v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    assert threads.cgroup_cpus(v1, member) == 2.0
    write(v1 / "cpu,cpuacct" / "docker" / "abc" / "cpu.cfs_quota_us", "-1\n")
    assert threads.cgroup_cpus(v1, member) is None
    assert threads.cgroup_cpus(tmp_path / "none", tmp_path / "no-such-file") is None
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7})
    monkeypatch.setattr(threads, "cgroup_cpus", lambda: 2.5)
    assert threads.available_cores() == 3                  # a quota of 2.5 CPUs: 3 threads
    monkeypatch.setattr(threads, "cgroup_cpus", lambda: None)
    assert threads.available_cores() == 8


def test_an_explicit_count_does_not_read_the_default(monkeypatch):
    monkeypatch.setattr(threads, "_threads", None)
    monkeypatch.setenv("STRIATE_NUM_THREADS", "many")
    with threads.using(2):                             # --threads 2 with a bad variable: fine
        assert st.get_num_threads() == 2
    assert threads._threads is None


def test_tiles_depend_on_shapes_only():
    assert threads.tile_bounds(10, 4) == [(0, 2), (2, 5), (5, 7), (7, 10)]
    assert threads.tile_bounds(3, 8) == [(0, 1), (1, 2), (2, 3)]
    assert threads.tile_bounds(0, 4) == [(0, 0)]
    assert threads.split(64, 1000, tile_work=10_000, min_work=50_000) == threads.tile_bounds(64, 8)
    assert threads.split(64, 10, tile_work=10_000, min_work=50_000) == [(0, 64)]


@pytest.mark.parametrize("n", [1, 2, 4])
def test_every_tile_runs_once(n):
    st.set_num_threads(n)
    seen = np.zeros(37, int)
    who = set()

    def tile(i):
        seen[i] += 1
        who.add(threading.current_thread().name)
    threads.run_tiles(tile, 37)
    assert (seen == 1).all()
    assert len(who) <= n


def test_an_error_in_a_tile_is_raised_in_the_caller():
    st.set_num_threads(2)

    def tile(i):
        if i == 5:
            raise KeyError("tile 5")
    with pytest.raises(KeyError, match="tile 5"):
        threads.run_tiles(tile, 12)
    done = []
    threads.run_tiles(done.append, 4)                      # the pool still works afterwards
    assert sorted(done) == [0, 1, 2, 3]


def test_ops_from_several_threads_at_once_and_inside_tiles():
    # a busy pool makes the caller compute its own tiles: no deadlock, the same results
    st.set_num_threads(2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6, 14, 14)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    want = F.conv2d(x, w).data
    got = [None] * 4

    def one(i):
        got[i] = F.conv2d(x, w).data
    workers = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(60)
    assert all(g is not None and (g == want).all() for g in got)
    inner = [None] * 3
    threads.run_tiles(lambda i: inner.__setitem__(i, F.conv2d(x, w).data), 3)     # ops inside tiles
    assert all((g == want).all() for g in inner)


def _step(model, x, y, seed=0):
    """Forward, backward, one SGD step: the output, every gradient and the updated weights."""
    st.manual_seed(seed)
    opt = st.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    logits = model(st.Tensor(x))
    loss = F.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    grads = [p.grad.copy() for p in model.parameters()]
    opt.step()
    return [logits.data.copy(), *grads, *(p.data.copy() for p in model.parameters())]


@pytest.mark.parametrize("name,batch", [("lenet5-modern", 64), ("lenet5-modern", 256), ("lenet5", 37),
                                        ("alexnet-small", 12)])
def test_training_is_bit_identical_at_any_thread_count(name, batch, rng):
    x = rng.standard_normal((batch, 1, 32, 32)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    runs = []
    for n in (1, 2, 3):
        st.set_num_threads(n)
        runs.append(_step(st.models.get(name, rng=0), x, y))
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert a.dtype == b.dtype and np.array_equal(a, b)


LAYERS = [
    lambda: nn.Conv2d(3, 8, 3, stride=2, padding=1),
    lambda: nn.Conv2d(5, 6, (5, 3), padding=(2, 0), groups=1),
    lambda: nn.Conv2d(4, 8, 3, groups=2, padding="same"),
    lambda: nn.Conv2d(40, 40, 3, padding=1, algorithm="winograd"),
    lambda: nn.Conv2d(3, 6, 7, stride=3, algorithm="winograd"),
    lambda: nn.MaxPool2d(2),
    lambda: nn.MaxPool2d(3, stride=2, padding=1),
    lambda: nn.MaxPool2d(8),
    lambda: nn.ReLU(),
]


@pytest.fixture
def small_tiles(monkeypatch):
    """Tiles far smaller than the measured thresholds, so that every op of a small test is cut and
    shared; returns the threads that ran tiles."""
    import striate.functional.activation as activation
    import striate.functional.conv as conv
    import striate.functional.pool as pool
    for module in (activation, pool):
        monkeypatch.setattr(module, "_TILE", 1 << 12)
        monkeypatch.setattr(module, "_SERIAL", 1 << 12)
        monkeypatch.setattr(module, "_SERIAL_FORWARD", 1 << 12)
    monkeypatch.setattr(conv, "_CHUNK_BYTES", 1 << 15)
    ran = set()
    job_work = threads._Job.work

    def work(job):
        ran.add(threading.current_thread().name)
        return job_work(job)
    monkeypatch.setattr(threads._Job, "work", work)
    return ran


@pytest.mark.parametrize("make", LAYERS, ids=lambda f: repr(f()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_are_bit_identical_at_any_thread_count(make, dtype, rng, small_tiles):
    layer = make()
    C = layer.in_channels if hasattr(layer, "in_channels") else 3
    N = int(rng.integers(20, 70))
    x = rng.standard_normal((N, C, 40, 40)).astype(dtype)
    if isinstance(layer, nn.Conv2d):
        layer.weight.data = layer.weight.data.astype(dtype)
        if layer.bias is not None:
            layer.bias.data = layer.bias.data.astype(dtype)
    runs = []
    for n in (1, 2, 4):
        st.set_num_threads(n)
        t = st.Tensor(x, requires_grad=True, dtype=dtype)
        out = layer(t)
        g = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
        for p in layer.parameters():
            p.grad = None
        out.backward(g)
        runs.append([out.data, t.grad] + [p.grad for p in layer.parameters()])
    assert len(small_tiles) > 1                     # the pool's threads took part
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("shape", [(300, 700, 500), (4000, 64, 10), (8, 2048, 1024), (3, 5, 7)])
def test_linear_is_bit_identical_at_any_thread_count(shape, rng):
    M, K, P = shape
    x = rng.standard_normal((M, K)).astype(np.float32)
    w = rng.standard_normal((P, K)).astype(np.float32)
    b = rng.standard_normal(P).astype(np.float32)
    runs = []
    for n in (1, 2, 3):
        st.set_num_threads(n)
        ts = [st.Tensor(a, requires_grad=True) for a in (x, w, b)]
        out = F.linear(*ts)
        (out * out).sum().backward()
        runs.append([out.data] + [t.grad for t in ts])
    for other in runs[1:]:
        for a, c in zip(runs[0], other):
            assert np.array_equal(a, c)


@pytest.mark.parametrize("make", [lambda ps: st.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3, nesterov=True),
                                  lambda ps: st.optim.AdamW(ps, lr=1e-2, amsgrad=True)], ids=["sgd", "adamw"])
def test_optimizer_updates_are_bit_identical_at_any_thread_count(make, rng):
    # 3 million weights: their blocks are shared out over the threads
    w0 = rng.standard_normal((1500, 2000)).astype(np.float32)
    grads = [rng.standard_normal(w0.shape).astype(np.float32) for _ in range(3)]
    finals = []
    for n in (1, 2, 3):
        st.set_num_threads(n)
        p = nn.Parameter(w0.copy())
        opt = make([p])
        for g in grads:
            p.grad = g.copy()
            opt.step()
        finals.append(p.data)
    assert not np.array_equal(finals[0], w0)
    assert all(np.array_equal(finals[0], f) for f in finals[1:])


@pytest.mark.parametrize("batch", [7, 64, 200])
def test_compiled_inference_is_bit_identical_at_any_thread_count(batch, rng):
    # with two threads a convolution's blocks are split in two halves, each with its own buffers
    model = st.models.get("lenet5-modern", rng=0)
    x = rng.standard_normal((batch, 1, 32, 32)).astype(np.float32)
    outs = []
    for n in (1, 2, 1, 2):
        st.set_num_threads(n)
        fast = st.compile(model, measure=False)
        outs += [fast(x).data, fast(x).data]
        assert ("2 threads" in repr(fast)) == (n == 2 and batch >= 64)
    assert all(np.array_equal(outs[0], o) for o in outs[1:])
    with pytest.raises(ValueError, match="threads must be None, 1 or 2"):
        st.compile(model, threads=3)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_gets_threads_of_its_own():
    # the parent's pool threads do not exist in a forked child: its ops must neither hang nor differ
    st.set_num_threads(2)
    x = np.random.default_rng(0).standard_normal((64, 6, 14, 14)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((16, 6, 5, 5)).astype(np.float32)
    want = F.conv2d(x, w).data                       # the parent's pool is running now
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # fork() in a process with threads
        pid = os.fork()
    if pid == 0:                                     # the child: exit 0 only if the result is the same
        try:
            pool = threads._pool
            same = np.array_equal(F.conv2d(x, w).data, want) and threads._pool is not pool \
                and all(t.is_alive() for t in threads._pool.threads)          # a pool of its own
            os._exit(0 if same else 1)
        finally:
            os._exit(2)
    deadline = time.time() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.time() > deadline:
            os.kill(pid, 9)
            pytest.fail("the forked child hung")
        time.sleep(0.05)
    assert os.waitstatus_to_exitcode(status) == 0


def test_an_interrupt_while_waiting_returns_only_when_no_tile_runs():
    # Ctrl-C reaches the calling thread while the other thread is inside a tile: run_tiles must not
    # return (raise) before that tile has finished writing
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    st.set_num_threads(2)
    written = []
    started = threading.Event()

    def tile(i):
        if threading.current_thread() is threading.main_thread():
            started.wait(5)
            threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()   # Ctrl-C, a real signal
            written.append("caller")
        else:
            started.set()
            time.sleep(0.3)
            written.append("pool thread")
    with pytest.raises(KeyboardInterrupt):
        threads.run_tiles(tile, 2)
        time.sleep(2)                                # (if run_tiles returned, the interrupt lands here)
    assert sorted(written) == ["caller", "pool thread"]


def test_import_sets_the_blas_to_one_thread():
    # a fresh process (the test session pins the BLAS itself): every product, tiled or not, runs on one
    # BLAS thread from import on, so no result depends on the BLAS's own thread count
    import subprocess
    import sys
    code = ("import threadpoolctl; threadpoolctl.threadpool_limits(2, user_api='blas'); import striate; "
            "print(sorted({i['num_threads'] for i in threadpoolctl.threadpool_info() if i['user_api'] == 'blas'}))")
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[1]"
