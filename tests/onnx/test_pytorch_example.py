"""For PyTorch users: a PyTorch CNN, exported with torch.onnx.export, loaded and fine-tuned in striate.

The README's example, as a test.
"""
import numpy as np
import pytest

pytest.importorskip("onnx")
torch = pytest.importorskip("torch")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_pytorch_cnn_to_striate(tmp_path):
    import torch.nn as tnn

    # 1. a small CNN in PyTorch (here untrained; any trained model works the same way)
    torch.manual_seed(0)
    net = tnn.Sequential(
        tnn.Conv2d(1, 8, 3, padding=1), tnn.BatchNorm2d(8), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(8, 16, 3, padding=1), tnn.BatchNorm2d(16), tnn.ReLU(), tnn.AdaptiveAvgPool2d(1),
        tnn.Flatten(), tnn.Linear(16, 10),
    ).eval()
    images = torch.rand(32, 1, 28, 28)

    # 2. export it (the classic exporter; batch axis dynamic)
    torch.onnx.export(net, images[:1], tmp_path / "cnn.onnx", dynamo=False,
                      input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "N"}, "logits": {0: "N"}})

    # 3. load it in striate: an nn.Module whose weights are Parameters
    import striate as st
    import striate.functional as F
    import striate.onnx
    from striate import optim

    model = striate.onnx.load(tmp_path / "cnn.onnx")
    x = images.numpy()
    with st.no_grad():
        logits = model(x).data
    with torch.no_grad():
        expected = net(images).numpy()
    assert (logits.argmax(1) == expected.argmax(1)).all()              # same predictions
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-5)

    # 4. fine-tune it in striate
    labels = np.arange(32) % 10
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(5):
        loss = F.cross_entropy(model(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    st.save(model, tmp_path / "fine-tuned.safetensors")
