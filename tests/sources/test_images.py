"""Decoding every kind of image a dataset may hold into the upright 8-bit RGB frame, or a reason why not."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from synth.sources.images import ReadFailure, decode_image, downscaled_size
from tests.sources.imagefiles import (
    animated_gif,
    encode,
    jpeg_with_orientation,
    png_bytes,
    png_header_only,
    rgb_array,
)

LIMITS = dict(max_pixels=89_478_485, max_side=4096, oversize="downscale")


def _decode(data: bytes, **limits: object):
    return decode_image(data, **(LIMITS | limits))


def _failure(data: bytes, **limits: object) -> ReadFailure:
    with pytest.raises(ReadFailure) as err:
        _decode(data, **limits)
    return err.value


def test_rgb_png_keeps_its_bytes_and_pixels():
    array = rgb_array()
    data = png_bytes(array)
    out = _decode(data)
    assert out.data == data and out.format == "png"
    np.testing.assert_array_equal(out.array, array)
    assert out.array.dtype == np.uint8 and out.array.shape == (30, 40, 3)


def test_plain_jpeg_keeps_its_bytes():
    data = encode(Image.fromarray(rgb_array()), "JPEG", quality=90)
    out = _decode(data)
    assert out.data == data and out.format == "jpeg"
    np.testing.assert_array_equal(out.array, np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


@pytest.mark.parametrize(
    "name, data",
    [
        ("zero bytes", b""),
        ("not an image", b"name,question\nthis is a CSV file, not a picture\n"),
        ("truncated PNG", png_bytes(rgb_array(200, 150))[:400]),
        ("truncated JPEG", encode(Image.fromarray(rgb_array(200, 150)), "JPEG")[:600]),
        ("PNG header only", png_header_only(64, 64)),
    ],
)
def test_broken_bytes_are_unreadable(name, data):
    assert _failure(data).reason == "image_unreadable", name


def test_exif_orientation_6_gives_the_upright_image_with_swapped_sides():
    stored = rgb_array(40, 20)  # 40 wide, 20 high as stored; orientation 6 means "turn 90 clockwise"
    out = _decode(jpeg_with_orientation(stored, 6))
    assert out.array.shape == (40, 20, 3)
    expected = np.rot90(stored, k=-1)  # clockwise
    assert np.abs(out.array.astype(int) - expected.astype(int)).mean() < 6  # JPEG noise only
    # The stored bytes are a PNG of the upright image, not the original (which decoders show turned).
    assert out.format == "png"
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(out.data))), out.array)


def test_cmyk_jpeg_becomes_rgb():
    cmyk = Image.new("CMYK", (12, 8), (0, 255, 0, 0))  # full magenta ink
    out = _decode(encode(cmyk, "JPEG", quality=95))
    assert out.array.shape == (8, 12, 3)
    r, g, b = out.array[4, 6].astype(int)
    assert r > 230 and g < 25 and b > 230
    assert out.format == "png"


def test_sixteen_bit_gray_is_scaled_not_clipped():
    values = np.array([[0, 257 * 64, 32768, 65535]], dtype=np.uint16)
    out = _decode(encode(Image.fromarray(values), "PNG"))
    np.testing.assert_array_equal(out.array[0, :, 0], [0, 64, 128, 255])
    assert (out.array[..., 0] == out.array[..., 2]).all()


def test_sixteen_bit_rgb_keeps_the_high_byte():
    import cv2

    rgb16 = np.zeros((2, 3, 3), dtype=np.uint16)
    rgb16[0, 0] = (65535, 32768, 256)
    ok, buf = cv2.imencode(".png", rgb16[:, :, ::-1])
    assert ok
    out = _decode(buf.tobytes())
    assert tuple(out.array[0, 0]) == (255, 128, 1)
    assert out.format == "png" and out.data != buf.tobytes()  # re-encoded as 8-bit


def test_rgba_is_composited_over_white():
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[0, 0] = (200, 0, 0, 255)  # opaque red
    rgba[1, 1] = (0, 0, 0, 0)  # fully transparent black
    rgba[2, 2] = (0, 0, 0, 128)  # half-transparent black
    out = _decode(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert tuple(out.array[0, 0]) == (200, 0, 0)
    assert tuple(out.array[1, 1]) == (255, 255, 255)
    assert tuple(out.array[2, 2]) == (127, 127, 127)


def test_grayscale_and_palette_become_rgb():
    gray = _decode(encode(Image.new("L", (5, 5), 77), "PNG"))
    assert tuple(gray.array[2, 2]) == (77, 77, 77)
    palette = Image.new("RGB", (5, 5), (10, 200, 30)).convert("P", palette=Image.Palette.ADAPTIVE)
    pal = _decode(encode(palette, "PNG"))
    assert tuple(pal.array[2, 2]) == (10, 200, 30)
    # A palette entry marked transparent is composited over white like alpha.
    see_through = _decode(encode(palette, "PNG", transparency=int(np.asarray(palette)[0, 0])))
    assert tuple(see_through.array[2, 2]) == (255, 255, 255)


def test_animated_gif_gives_its_first_frame():
    out = _decode(animated_gif([(255, 0, 0), (0, 0, 255)]))
    assert out.array.shape == (12, 16, 3)
    assert tuple(out.array[5, 5]) == (255, 0, 0)
    assert out.format == "png"


def test_decompression_bomb_is_refused_before_decoding():
    # 100k x 100k pixels (30 GB as RGB) in a file of a few dozen bytes.
    failure = _failure(png_header_only(100_000, 100_000))
    assert failure.reason == "image_too_large"
    # A small limit refuses an ordinary image too, including between the limit and twice it.
    assert _failure(png_bytes(rgb_array(40, 30)), max_pixels=1000).reason == "image_too_large"
    assert _failure(png_bytes(rgb_array(40, 30)), max_pixels=700).reason == "image_too_large"
    # Pillow's global limit is restored afterwards.
    assert Image.MAX_IMAGE_PIXELS == 89_478_485


def test_a_wide_image_is_downscaled_to_max_side_keeping_aspect():
    array = np.zeros((40, 20_000, 3), dtype=np.uint8)
    array[:, 10_000:] = 255
    out = _decode(png_bytes(array))
    assert out.array.shape == (8, 4096, 3)  # 40 * 4096 / 20000 = 8.19 -> 8
    assert out.scale == (4096 / 20_000, 8 / 40)
    assert out.source_size == (20_000, 40)
    assert out.array[:, :2000].max() == 0 and out.array[:, 2100:].min() == 255
    assert out.format == "png"


def test_a_huge_rotated_jpeg_is_decoded_small_and_upright():
    stored = np.zeros((100, 2000, 3), dtype=np.uint8)
    stored[:, :1000] = 255  # the left half white, as stored; upright (turned clockwise) the top half
    out = _decode(jpeg_with_orientation(stored, 6), max_side=500)
    assert out.array.shape == (500, 25, 3) and out.source_size == (100, 2000)
    assert out.scale == (25 / 100, 500 / 2000)
    assert out.array[:240].mean() > 240 and out.array[260:].mean() < 15


def test_a_wide_image_is_rejected_when_oversize_is_reject():
    failure = _failure(png_bytes(np.zeros((10, 5000, 3), dtype=np.uint8)), oversize="reject")
    assert failure.reason == "image_too_large" and "max_side" in failure.detail


@pytest.mark.parametrize("size, side, expected", [((20000, 40), 4096, (4096, 8)), ((100, 5000), 1000, (20, 1000)), ((9000, 1), 900, (900, 1))])
def test_downscaled_size(size, side, expected):
    assert downscaled_size(*size, side) == expected
