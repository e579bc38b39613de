"""decode_image: an image file's bytes read exactly as load_image reads the file."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from striate.data.images import ImageError, decode_image, load_image


def encoded(mode: str, format: str) -> bytes:
    rng = np.random.default_rng(0)
    shape = {"L": (13, 17), "RGB": (13, 17, 3), "RGBA": (13, 17, 4)}[mode]
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(buf, format=format)
    return buf.getvalue()


@pytest.mark.parametrize("mode, format", [("L", "PNG"), ("RGB", "JPEG"), ("RGBA", "PNG"), ("RGB", "BMP")])
@pytest.mark.parametrize("as_mode", ["L", "RGB"])
def test_the_bytes_decode_as_the_file_loads(tmp_path, mode, format, as_mode):
    data = encoded(mode, format)
    path = tmp_path / f"image.{format.lower()}"
    path.write_bytes(data)
    np.testing.assert_array_equal(decode_image(data, as_mode), load_image(path, as_mode))


def test_errors_name_the_image_and_what_is_wrong():
    with pytest.raises(ImageError, match="upload: the data is empty"):
        decode_image(b"", name="upload")
    with pytest.raises(ImageError, match="upload: not a readable image"):
        decode_image(b"GIF89 nothing", name="upload")
    with pytest.raises(ImageError, match="221 pixels; at most 100 are accepted"):
        decode_image(encoded("L", "PNG"), max_pixels=100)
    with pytest.raises(TypeError, match="expects the bytes of an image file"):
        decode_image("image.png")
    with pytest.raises(ValueError, match="mode must be 'L' or 'RGB'"):
        decode_image(encoded("L", "PNG"), mode="CMYK")
