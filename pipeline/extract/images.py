"""Worker side of stage one: read one image file, guard it, and bring any mode to 8-bit RGB.

Every failure is an ImageProblem whose message is the row's skip reason, "<kind>: <detail>",
so a summary can group rows by kind. Nothing here knows the encoder; the transform to the
model's input comes after, from encoders.py.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pipeline.extract.config import ExtractConfig

SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
BACKGROUND = (255, 255, 255)  # transparent pixels are shown on white, as a browser shows them
MAX_BYTES = ExtractConfig.max_image_bytes  # larger files are skipped unread (--max-image-bytes)


class ImageProblem(Exception):
    """An image a row cannot be encoded from; str() is the skip reason."""


def read_image(path: str, max_pixels: int, max_bytes: int = MAX_BYTES) -> tuple[Image.Image, str]:
    """(RGB image, sha1 of the file's bytes) — the hash lets identical files be encoded once."""
    data, key = read_file(path, max_bytes)
    return decode_rgb(data, path, max_pixels), key


def read_file(path: str, max_bytes: int = MAX_BYTES) -> tuple[bytes, str]:
    """(the image file's bytes, their sha1): what identifies a picture, before any decoding.

    Only a regular file of at most `max_bytes` is read: a FIFO would block for ever and /dev/zero never
    ends, so the file is opened without blocking and checked on its descriptor before one byte is read."""
    if not path:
        raise ImageProblem("no image path: the manifest row names no image")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ImageProblem(f"missing image file: {path}") from None
    except OSError as e:
        raise ImageProblem(f"unreadable image file: {path} ({e.strerror or e})") from None
    try:
        data = _read_regular(fd, path, max_bytes)
    finally:
        os.close(fd)
    if not data:
        raise ImageProblem(f"empty image file: {path}")
    return data, hashlib.sha1(data).hexdigest()


def _read_regular(fd: int, path: str, max_bytes: int) -> bytes:
    """The bytes behind `fd` if it is a regular file of at most `max_bytes` (read to its end, not past the cap)."""
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        raise ImageProblem(f"image path is a directory: {path}")
    if not stat.S_ISREG(info.st_mode):
        raise ImageProblem(f"not a regular file: {path} (a {_kind(info.st_mode)}; only regular files are read as images)")
    blocks, size = [], 0
    try:
        while info.st_size <= max_bytes and size <= max_bytes:
            block = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not block:
                break
            blocks.append(block)
            size += len(block)
    except OSError as e:
        raise ImageProblem(f"unreadable image file: {path} ({e.strerror or e})") from None
    if max(info.st_size, size) > max_bytes:
        raise ImageProblem(f"image file too large: {path} ({max(info.st_size, size):,} bytes, limit {max_bytes:,}; "
                           "raise --max-image-bytes to accept it)")
    return b"".join(blocks)


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
             (stat.S_ISSOCK, "socket"))
    return next((name for test, name in kinds if test(mode)), "special file")


def decode_rgb(data: bytes, path: str, max_pixels: int) -> Image.Image:
    """The file's bytes as the 8-bit RGB picture a person sees (`path` only names it in skip reasons)."""
    return to_rgb(_decode(data, path, max_pixels), path)


@contextlib.contextmanager
def _size_checked_here():
    """Pillow's own bomb check warns or fails by its global limit; ours is explicit and per run."""
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _decode(data: bytes, path: str, max_pixels: int) -> Image.Image:
    with _size_checked_here():
        try:
            img = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageProblem(f"not an image: {path} (format not recognised)") from None
        except Exception as e:  # broken headers surface as many exception types
            raise ImageProblem(f"corrupt image: {path} ({type(e).__name__}: {e})") from None
        width, height = img.size
        if width * height > max_pixels:
            raise ImageProblem(
                f"image too large: {path} ({width}×{height} = {width * height:,} pixels, limit {max_pixels:,}; "
                "raise --max-pixels to accept it)"
            )
        try:
            img.load()  # decodes the first frame only: an animated GIF is represented by it
        except Exception as e:
            raise ImageProblem(f"truncated or corrupt image: {path} ({type(e).__name__}: {e})") from None
    return img


def to_rgb(img: Image.Image, path: str = "") -> Image.Image:
    """8-bit RGB as a person would see the picture: EXIF orientation applied, alpha over white,
    16-bit grey scaled down (a plain convert would clip it to white), palette and CMYK converted."""
    try:
        img = ImageOps.exif_transpose(img)
    except Exception:  # a broken EXIF block must not cost the row its image
        pass
    if img.mode in SIXTEEN_BIT_MODES:
        img = _sixteen_to_eight(img)
    elif img.mode == "F":
        img = Image.fromarray(np.clip(np.asarray(img), 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode in ("L", "RGB") and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ALPHA_MODES:
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        img = Image.alpha_composite(canvas, rgba)
    try:
        return img.convert("RGB")
    except (ValueError, OSError) as e:
        raise ImageProblem(f"unsupported image mode: {path} ({img.mode}: {e})") from None


def _sixteen_to_eight(img: Image.Image) -> Image.Image:
    values = np.asarray(img).astype(np.float64)
    if img.mode != "I" or values.max(initial=0) > 255:
        values = values / 257.0  # 0..65535 -> 0..255
    return Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
