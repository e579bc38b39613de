"""How striate's objects show in a notebook cell: a Tensor, a model (st.summary's table), a loaded run."""
import numpy as np

import striate as st
import striate.functional as F
from striate import nn
from striate.data import DataLoader
from striate.train import fit


def test_small_tensor_is_a_table_with_its_facts():
    x = st.Tensor(np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3), requires_grad=True)
    html = (x * 2)._repr_html_()
    assert "shape (1, 1, 2, 3)" in html and "float32" in html and "requires_grad" in html
    assert html.count("<tr>") == 2 and ">10</td>" in html         # 2 rows; 5 * 2 = 10


def test_large_tensor_is_numpy_text_summarised():
    html = st.Tensor(np.zeros((3, 40, 40)))._repr_html_()
    assert "<pre>" in html and "..." in html and "<table" not in html


def test_model_shows_summary_table():
    model = st.models.get("lenet5-modern")
    html = model._repr_html_()
    table = st.summary(model, (1,) + model.input_shape, print_fn=None)
    assert "Total params: 61,706" in html and "(N, 6, 28, 28)" in html
    assert html.count("<tr>") == len(table.rows) + 2               # head, rows, foot
    assert table._repr_html_() == html


def test_module_without_input_shape_lists_its_layers():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten())
    html = model._repr_html_()
    assert "Conv2d" in html and "ReLU" in html and "Total params: 20" in html


def test_loaded_run_shows_its_curves(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (32, 28, 28), dtype=np.uint8), rng.integers(0, 10, 32)
    model = st.models.get("mlp")
    loader = DataLoader((images, labels), batch_size=16, seed=0)
    fit(model, F.cross_entropy, st.optim.SGD(model.parameters(), lr=0.01), loader, loader, epochs=1,
        out_dir=tmp_path / "run", progress=False, log=lambda line: None,
        config={"model": model.config, "dataset": "mnist"})
    html = st.load_run(tmp_path / "run")._repr_html_()
    assert "model mlp" in html and "test accuracy" in html and "data:image/png;base64," in html
