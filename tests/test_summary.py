"""st.summary: the table for a Sequential and for a custom model with branches."""
import numpy as np
import pytest

import striate as st
import striate.functional as F
from striate import nn


def lenet_like():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.BatchNorm2d(16), nn.Tanh(), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(400, 120), nn.Dropout(0.5), nn.Linear(120, 10))


def test_sequential_table():
    lines = []
    result = st.summary(lenet_like(), (1, 1, 28, 28), print_fn=lines.append)
    assert lines == [
        "Input: (N, 1, 28, 28)",
        "Layer  Type         Output shape     Params",
        "===========================================",
        "0      Conv2d       (N, 6, 28, 28)      156",
        "1      Tanh         (N, 6, 28, 28)        0",
        "2      AvgPool2d    (N, 6, 14, 14)        0",
        "3      Conv2d       (N, 16, 10, 10)   2,416",
        "4      BatchNorm2d  (N, 16, 10, 10)      32",
        "5      Tanh         (N, 16, 10, 10)       0",
        "6      AvgPool2d    (N, 16, 5, 5)         0",
        "7      Flatten      (N, 400)              0",
        "8      Linear       (N, 120)         48,120",
        "9      Dropout      (N, 120)              0",
        "10     Linear       (N, 10)           1,210",
        "===========================================",
        "Total params: 51,934",
        "Trainable params: 51,934",
        "Non-trainable params: 0",
    ]
    assert str(result) == "\n".join(lines)
    assert result.total_params == 51934 == sum(r.params for r in result.rows)
    assert result.rows[3].name == "3" and result.rows[3].type == "Conv2d"
    assert result.rows[3].output_shape == (1, 16, 10, 10)


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.res = nn.Residual(nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()))
        self.cat = nn.Concat(nn.Conv2d(8, 4, 1), nn.MaxPool2d(3, 1, 1))
        self.gap = nn.GlobalAvgPool2d()
        self.fc = nn.Linear(12, 3)
        self.scale = nn.Parameter(np.ones(3, np.float32), requires_grad=False)   # a module's own parameter

    def forward(self, x):                                    # (N, 3, 16, 16)
        x = self.cat(self.res(F.relu(self.c1(x))))           # (N, 12, 16, 16)
        return self.fc(F.flatten(self.gap(x))) * self.scale  # (N, 3)


def test_custom_model_with_branches_and_state_left_alone():
    model = Branchy()
    model.train()
    dropout_probe = st.random.get_state()
    result = st.summary(model, (2, 3, 16, 16), print_fn=None)
    assert [(r.name, r.type, r.output_shape, r.params) for r in result.rows] == [
        ("c1", "Conv2d", (2, 8, 16, 16), 224),
        ("res.body.0", "Conv2d", (2, 8, 16, 16), 584),
        ("res.body.1", "ReLU", (2, 8, 16, 16), 0),
        ("cat.0", "Conv2d", (2, 4, 16, 16), 36),
        ("cat.1", "MaxPool2d", (2, 8, 16, 16), 0),
        ("gap", "GlobalAvgPool2d", (2, 12, 1, 1), 0),
        ("fc", "Linear", (2, 3), 39),
        ("Branchy", "Branchy", (2, 3), 3),                  # the model's own parameter
    ]
    assert result.total_params == 224 + 584 + 36 + 39 + 3
    assert result.trainable_params == result.total_params - 3 and result.non_trainable_params == 3
    # the pass ran in evaluation mode and without a graph, and everything was put back
    assert all(m.training for m in model.modules())
    assert all(not m._forward_hooks for m in model.modules())
    assert st.random.get_state() == dropout_probe


def test_batch_norm_statistics_untouched():
    model = lenet_like()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    st.summary(model, (4, 1, 28, 28), print_fn=None)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_summary_errors():
    with pytest.raises(TypeError, match="summary expects a Module"):
        st.summary(lambda x: x, (1, 3))
    with pytest.raises(ValueError, match="expects input"):
        st.summary(nn.Conv2d(3, 4, 3), (1, 2, 8, 8), print_fn=None)
