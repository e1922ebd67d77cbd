"""Image reading for stage one: every odd mode becomes the RGB picture a person sees; bad files give reasons."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from extract_fixtures import broken_images, odd_images, photo
from pipeline.extract.images import ImageProblem, read_image, to_rgb

BIG = 10**9


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return odd_images(tmp_path_factory.mktemp("odd"))


@pytest.mark.parametrize("name", ["rgb.jpg", "palette.png", "palette_transparent.png", "rgba.png", "cmyk.jpg",
                                  "grey.png", "sixteen.png", "animated.gif"])
def test_every_odd_mode_reads_as_rgb(images, name):
    rgb, digest = read_image(str(images[name]), BIG)
    assert rgb.mode == "RGB" and rgb.size == Image.open(images[name]).size
    assert len(digest) == 40


def test_sixteen_bit_grey_is_scaled_not_clipped_to_white(images):
    rgb, _ = read_image(str(images["sixteen.png"]), BIG)
    assert Image.open(images["sixteen.png"]).mode.startswith("I")
    assert set(np.asarray(rgb).reshape(-1).tolist()) == {128}  # 32896 / 257


def test_alpha_is_composited_over_white(images):
    rgba = Image.open(images["rgba.png"])
    rgb, _ = read_image(str(images["rgba.png"]), BIG)
    src = np.asarray(rgba).astype(float)
    alpha = src[..., 3:] / 255.0
    expected = src[..., :3] * alpha + 255.0 * (1 - alpha)
    assert np.abs(np.asarray(rgb).astype(float) - expected).max() <= 1.0
    clear = src[..., 3] == 0
    assert clear.any() and (np.asarray(rgb)[clear] == 255).all()  # fully transparent shows white, not black


def test_palette_transparency_shows_white(images):
    img = Image.open(images["palette_transparent.png"])
    index = np.asarray(img)
    rgb = np.asarray(read_image(str(images["palette_transparent.png"]), BIG)[0])
    clear = index == img.info["transparency"]
    assert clear.any() and (rgb[clear] == 255).all()
    assert (rgb[~clear] == np.asarray(img.convert("RGB"))[~clear]).all()


def test_animated_gif_gives_its_first_frame(images):
    gif = Image.open(images["animated.gif"])
    assert gif.n_frames == 3
    gif.seek(0)
    first = np.asarray(gif.convert("RGB"))
    assert (np.asarray(read_image(str(images["animated.gif"]), BIG)[0]) == first).all()


def test_cmyk_matches_pillows_conversion(images):
    cmyk = Image.open(images["cmyk.jpg"])
    assert cmyk.mode == "CMYK"
    assert (np.asarray(read_image(str(images["cmyk.jpg"]), BIG)[0]) == np.asarray(cmyk.convert("RGB"))).all()


def test_identical_files_share_a_digest(tmp_path):
    photo(7).save(tmp_path / "a.png")
    (tmp_path / "b.png").write_bytes((tmp_path / "a.png").read_bytes())
    photo(8).save(tmp_path / "c.png")
    digests = [read_image(str(tmp_path / n), BIG)[1] for n in ("a.png", "b.png", "c.png")]
    assert digests[0] == digests[1] != digests[2]


@pytest.mark.parametrize("name, kind", [("truncated.jpg", "truncated or corrupt image"),
                                        ("not_an_image.jpg", "not an image"), ("empty.png", "empty image file"),
                                        ("missing.jpg", "missing image file")])
def test_bad_files_raise_a_reason_naming_the_file(tmp_path, name, kind):
    path = broken_images(tmp_path)[name]
    with pytest.raises(ImageProblem) as e:
        read_image(str(path), BIG)
    assert str(e.value).startswith(f"{kind}: {path}")


def test_no_path_and_directory_are_reasons(tmp_path):
    with pytest.raises(ImageProblem, match="^no image path"):
        read_image("", BIG)
    with pytest.raises(ImageProblem, match="^image path is a directory"):
        read_image(str(tmp_path), BIG)


def test_absurdly_large_image_is_refused_before_decoding(tmp_path):
    photo(9, (300, 200)).save(tmp_path / "big.png")
    with pytest.raises(ImageProblem, match=r"^image too large: .*300×200 = 60,000 pixels, limit 50,000"):
        read_image(str(tmp_path / "big.png"), 50_000)
    assert Image.MAX_IMAGE_PIXELS is not None  # Pillow's own guard is restored afterwards


def test_pillow_bomb_limit_does_not_preempt_ours(tmp_path, monkeypatch):
    photo(10, (300, 200)).save(tmp_path / "img.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow would raise DecompressionBombError
    rgb, _ = read_image(str(tmp_path / "img.png"), BIG)
    assert rgb.size == (300, 200)


def test_to_rgb_keeps_plain_rgb_pixels_exactly():
    img = photo(11)
    assert (np.asarray(to_rgb(img)) == np.asarray(img)).all()
