"""Tests for denoiser.imageio: round trips per format/depth, metadata, bad inputs, atomic saving."""

from __future__ import annotations

import errno
import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image as PILImage
from PIL import ImageCms, ImageOps

from denoiser import atomic
from denoiser import imageio as iio
from denoiser.errors import DenoiserError, ImageReadError, ImageWriteError
from denoiser.io import decode, encode, formats

RNG = np.random.default_rng(1234)


# ----------------------------------------------------------------------------------------------------
# helpers


def _u8(shape: tuple[int, ...]) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def _u16(shape: tuple[int, ...]) -> np.ndarray:
    values = RNG.integers(0, 65536, shape, dtype=np.uint16)
    values.flat[0], values.flat[-1] = 0, 65535  # the extremes must survive too
    return values


def _make_image(values: np.ndarray, bit_depth: int, alpha: np.ndarray | None = None, **meta) -> iio.Image:
    scale = {8: 255.0, 16: 65535.0, 32: 1.0}[bit_depth]
    data = values.astype(np.float32) / scale
    if data.ndim == 2:
        data = data[..., None]
    a = None if alpha is None else alpha.astype(np.float32) / scale
    return iio.Image(data=data, alpha=a, bit_depth=bit_depth, exif=meta.get("exif"),
                     icc_profile=meta.get("icc_profile"), format=meta.get("format", "png"))


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    a, b, c = (x.astype(np.int16) for x in (a, b, c))
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c)).astype(np.uint8)


def _reference_png16(values: np.ndarray) -> bytes:
    """Independent 16-bit PNG encoder that cycles through all five PNG filter types row by row."""
    h, w, c = values.shape
    rows = values.astype(">u2").reshape(h, w * c).view(np.uint8)
    bpp = 2 * c
    out = bytearray()
    prior = np.zeros(rows.shape[1], dtype=np.uint8)
    for y in range(h):
        raw = rows[y]
        left = np.concatenate([np.zeros(bpp, np.uint8), raw[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.uint8), prior[:-bpp]])
        kind = y % 5
        predictor = [
            np.zeros_like(raw), left, prior,
            ((left.astype(np.uint16) + prior) // 2).astype(np.uint8), _paeth(left, prior, upleft),
        ][kind]
        out.append(kind)
        out += (raw - predictor).astype(np.uint8).tobytes()
        prior = raw
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
            + _png_chunk(b"IDAT", zlib.compress(bytes(out))) + _png_chunk(b"IEND", b""))


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")]


# ----------------------------------------------------------------------------------------------------
# 8-bit round trips


@pytest.mark.parametrize(
    ("shape", "with_alpha"),
    [((13, 17), False), ((13, 17, 3), False), ((13, 17, 3), True), ((13, 17), True)],
    ids=["gray", "rgb", "rgba", "gray-alpha"],
)
def test_png_8bit_round_trip_is_exact(tmp_path: Path, shape: tuple[int, ...], with_alpha: bool) -> None:
    values = _u8(shape)
    alpha = _u8(shape[:2]) if with_alpha else None
    path = iio.save_image(_make_image(values, 8, alpha), tmp_path / "a.png")

    loaded = iio.load_image(path)
    assert loaded.bit_depth == 8 and loaded.format == "png" and loaded.path == path
    assert loaded.data.dtype == np.float32 and loaded.data.shape == (13, 17, 1 if len(shape) == 2 else 3)
    np.testing.assert_array_equal(iio.to_uint8(loaded.data).reshape(values.shape), values)
    if with_alpha:
        np.testing.assert_array_equal(iio.to_uint8(loaded.alpha), alpha)
    else:
        assert loaded.alpha is None
    # An independent decoder agrees on the mode of what we wrote.
    expected_mode = {(2, False): "L", (3, False): "RGB", (3, True): "RGBA", (2, True): "LA"}[(len(shape), with_alpha)]
    assert PILImage.open(path).mode == expected_mode


def test_pillow_written_8bit_png_loads(tmp_path: Path) -> None:
    values = _u8((9, 11, 3))
    PILImage.fromarray(values).save(tmp_path / "p.png")
    loaded = iio.load_image(tmp_path / "p.png")
    np.testing.assert_array_equal(iio.to_uint8(loaded.data), values)
    assert loaded.data.max() <= 1.0 and loaded.data.min() >= 0.0


def test_one_bit_png_becomes_gray(tmp_path: Path) -> None:
    bits = RNG.integers(0, 2, (6, 10)).astype(bool)
    PILImage.fromarray(bits).save(tmp_path / "bw.png")
    loaded = iio.load_image(tmp_path / "bw.png")
    assert loaded.channels == 1 and loaded.bit_depth == 8
    np.testing.assert_array_equal(loaded.data[..., 0], bits.astype(np.float32))


def test_palette_png_with_transparency_becomes_rgba(tmp_path: Path) -> None:
    pal = PILImage.new("P", (5, 4))
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    pal.putpixel((1, 1), 1)
    pal.putpixel((2, 3), 2)
    pal.save(tmp_path / "pal.png", transparency=0)

    loaded = iio.load_image(tmp_path / "pal.png")
    assert loaded.channels == 3 and loaded.alpha is not None
    np.testing.assert_array_equal(loaded.data[1, 1], [0, 1, 0])
    np.testing.assert_array_equal(loaded.data[3, 2], [0, 0, 1])
    assert loaded.alpha[0, 0] == 0.0 and loaded.alpha[1, 1] == 1.0 and loaded.alpha[3, 2] == 1.0


def test_palette_png_without_transparency_is_rgb(tmp_path: Path) -> None:
    pal = PILImage.new("P", (3, 3))
    pal.putpalette([10, 20, 30])
    pal.save(tmp_path / "pal.png")
    loaded = iio.load_image(tmp_path / "pal.png")
    assert loaded.alpha is None
    np.testing.assert_array_equal(iio.to_uint8(loaded.data[0, 0]), [10, 20, 30])


def test_bmp_round_trip_is_exact(tmp_path: Path) -> None:
    for shape in [(7, 9, 3), (7, 9)]:
        values = _u8(shape)
        path = iio.save_image(_make_image(values, 8), tmp_path / f"b{len(shape)}.bmp")
        loaded = iio.load_image(path)
        assert loaded.format == "bmp" and loaded.bit_depth == 8
        np.testing.assert_array_equal(iio.to_uint8(loaded.data).reshape(values.shape), values)


def test_webp_round_trip(tmp_path: Path) -> None:
    values = _u8((16, 16, 3))
    smooth = np.full((16, 16, 3), 120, np.uint8)
    alpha = _u8((16, 16))

    lossy = iio.load_image(iio.save_image(_make_image(smooth, 8), tmp_path / "lossy.webp", quality=90))
    assert lossy.format == "webp" and lossy.data.shape == (16, 16, 3)
    assert np.abs(iio.to_uint8(lossy.data).astype(int) - 120).max() <= 3

    # quality 100 is lossless WebP: exact colour and alpha
    exact = iio.load_image(iio.save_image(_make_image(values, 8, alpha), tmp_path / "exact.webp", quality=100))
    np.testing.assert_array_equal(iio.to_uint8(exact.data), values)
    np.testing.assert_array_equal(iio.to_uint8(exact.alpha), alpha)


def test_gray_webp_is_written_as_rgb_with_equal_channels(tmp_path: Path) -> None:
    values = _u8((8, 8))
    loaded = iio.load_image(iio.save_image(_make_image(values, 8), tmp_path / "g.webp", quality=100))
    np.testing.assert_array_equal(iio.to_uint8(loaded.data), np.repeat(values[..., None], 3, axis=2))


def test_one_by_one_image(tmp_path: Path) -> None:
    PILImage.new("RGB", (1, 1), (10, 20, 30)).save(tmp_path / "one.png")
    loaded = iio.load_image(tmp_path / "one.png")
    assert (loaded.width, loaded.height, loaded.channels) == (1, 1, 3)
    np.testing.assert_array_equal(iio.to_uint8(loaded.data[0, 0]), [10, 20, 30])
    assert iio.read_header(tmp_path / "one.png") == (1, 1, 3)
    out = iio.load_image(iio.save_image(loaded, tmp_path / "one.tif", bit_depth=16))
    np.testing.assert_array_equal(iio.to_uint8(out.data), iio.to_uint8(loaded.data))


# ----------------------------------------------------------------------------------------------------
# 16-bit and float


@pytest.mark.parametrize("channels", [1, 2, 3, 4], ids=["gray", "gray-alpha", "rgb", "rgba"])
def test_png_16bit_round_trip_is_exact(tmp_path: Path, channels: int) -> None:
    values = _u16((11, 13, channels))
    color = values[..., : 1 if channels <= 2 else 3]
    alpha = values[..., -1] if channels in (2, 4) else None
    path = iio.save_image(_make_image(color, 16, alpha), tmp_path / "d.png")

    with open(path, "rb") as fp:
        head = fp.read(26)
    assert head[24] == 16  # IHDR bit depth: a real 16-bit PNG
    loaded = iio.load_image(path)
    assert loaded.bit_depth == 16
    np.testing.assert_array_equal(iio.to_uint16(loaded.data), color)
    if alpha is None:
        assert loaded.alpha is None
    else:
        np.testing.assert_array_equal(iio.to_uint16(loaded.alpha), alpha)
    if channels == 1:  # Pillow decodes 16-bit gray correctly: an independent check of our encoder
        np.testing.assert_array_equal(np.asarray(PILImage.open(path)), values[..., 0])


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_from_other_encoder_with_every_filter_type(tmp_path: Path, channels: int) -> None:
    values = _u16((12, 9, channels))
    values[3:6] = np.linspace(0, 65535, 9, dtype=np.uint16)[None, :, None]  # smooth rows too
    (tmp_path / "ref.png").write_bytes(_reference_png16(values))

    loaded = iio.load_image(tmp_path / "ref.png")
    n_color = 1 if channels <= 2 else 3
    assert loaded.bit_depth == 16 and loaded.channels == n_color
    np.testing.assert_array_equal(iio.to_uint16(loaded.data), values[..., :n_color])
    if channels in (2, 4):
        np.testing.assert_array_equal(iio.to_uint16(loaded.alpha), values[..., -1])


def test_pillow_i16_png_loads_as_16bit_gray(tmp_path: Path) -> None:
    values = _u16((5, 7))
    PILImage.fromarray(values).save(tmp_path / "i16.png")
    loaded = iio.load_image(tmp_path / "i16.png")
    assert loaded.bit_depth == 16 and loaded.channels == 1
    np.testing.assert_array_equal(iio.to_uint16(loaded.data[..., 0]), values)


def test_16bit_stays_16bit_by_default_and_clamps_to_format(tmp_path: Path) -> None:
    values = _u16((6, 6, 3))
    image = _make_image(values, 16)
    png = iio.load_image(iio.save_image(image, tmp_path / "x.png"))
    tif = iio.load_image(iio.save_image(image, tmp_path / "x.tif"))
    jpg = iio.load_image(iio.save_image(image, tmp_path / "x.jpg"))
    assert (png.bit_depth, tif.bit_depth, jpg.bit_depth) == (16, 16, 8)
    eight = iio.load_image(iio.save_image(image, tmp_path / "y.png", bit_depth=8))
    assert eight.bit_depth == 8
    np.testing.assert_array_equal(iio.to_uint8(eight.data), iio.to_uint8(image.data))
    # float image into PNG: best the format holds is 16
    floaty = iio.Image(data=image.data, alpha=None, bit_depth=32, exif=None, icc_profile=None, format="tiff")
    assert iio.load_image(iio.save_image(floaty, tmp_path / "f.png")).bit_depth == 16


def test_tiff_16bit_round_trip_is_exact(tmp_path: Path) -> None:
    values = _u16((10, 14, 3))
    alpha = _u16((10, 14))
    tifffile.imwrite(tmp_path / "in.tif", np.dstack([values, alpha]), photometric="rgb", extrasamples=["unassalpha"])

    loaded = iio.load_image(tmp_path / "in.tif")
    assert loaded.bit_depth == 16 and loaded.format == "tiff"
    np.testing.assert_array_equal(iio.to_uint16(loaded.data), values)
    np.testing.assert_array_equal(iio.to_uint16(loaded.alpha), alpha)

    out = iio.save_image(loaded, tmp_path / "out.tif")
    written = tifffile.imread(out)  # independent decoder
    assert written.dtype == np.uint16
    np.testing.assert_array_equal(written, np.dstack([values, alpha]))
    again = iio.load_image(out)
    np.testing.assert_array_equal(iio.to_uint16(again.data), values)


def test_tiff_16bit_gray_and_8bit(tmp_path: Path) -> None:
    gray = _u16((7, 5))
    tifffile.imwrite(tmp_path / "g.tif", gray)
    loaded = iio.load_image(tmp_path / "g.tif")
    assert loaded.channels == 1 and loaded.bit_depth == 16
    np.testing.assert_array_equal(iio.to_uint16(loaded.data[..., 0]), gray)

    rgb8 = _u8((7, 5, 3))
    path = iio.save_image(_make_image(rgb8, 8), tmp_path / "c.tiff")
    assert tifffile.imread(path).dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(PILImage.open(path)), rgb8)
    np.testing.assert_array_equal(iio.to_uint8(iio.load_image(path).data), rgb8)


def test_float32_tiff_keeps_values_outside_unit_range(tmp_path: Path) -> None:
    values = (RNG.random((8, 6, 3), dtype=np.float32) * 3 - 1).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", values, photometric="rgb")

    loaded = iio.load_image(tmp_path / "f.tif")
    assert loaded.bit_depth == 32
    np.testing.assert_array_equal(loaded.data, values)

    out = iio.save_image(loaded, tmp_path / "out.tif")
    written = tifffile.imread(out)
    assert written.dtype == np.float32
    np.testing.assert_array_equal(written, values)
    np.testing.assert_array_equal(iio.load_image(out).data, values)


def test_lzw_16bit_tiff_without_imagecodecs(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    values = _u16((9, 12, 3))
    assert cv2.imwrite(str(tmp_path / "lzw.tif"), values[..., ::-1])  # OpenCV writes LZW TIFF
    loaded = iio.load_image(tmp_path / "lzw.tif")
    assert loaded.bit_depth == 16
    np.testing.assert_array_equal(iio.to_uint16(loaded.data), values)


def test_16bit_png_readable_by_opencv(tmp_path: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    values = _u16((9, 12, 3))
    path = iio.save_image(_make_image(values, 16), tmp_path / "cv.png")
    np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[..., ::-1], values)


# ----------------------------------------------------------------------------------------------------
# EXIF and ICC


def _jpeg_with_exif(path: Path, orientation: int, icc: bytes | None = None) -> np.ndarray:
    values = _u8((20, 30, 3))
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    exif[0x8769] = {0x829A: 0.01, 0x8827: 400}  # ExposureTime, ISO
    options = {"icc_profile": icc} if icc else {}
    PILImage.fromarray(values).save(path, exif=exif.tobytes(), quality=100, **options)
    return values


def test_jpeg_exif_orientation_applied_and_reset(tmp_path: Path) -> None:
    icc = _srgb_icc()
    _jpeg_with_exif(tmp_path / "in.jpg", 6, icc)

    loaded = iio.load_image(tmp_path / "in.jpg")
    assert loaded.format == "jpeg" and loaded.data.shape == (30, 20, 3)  # rotated
    reference = np.asarray(ImageOps.exif_transpose(PILImage.open(tmp_path / "in.jpg")))
    np.testing.assert_array_equal(iio.to_uint8(loaded.data), reference)
    assert loaded.icc_profile == icc
    loaded_exif = PILImage.Exif()
    loaded_exif.load(loaded.exif)
    assert loaded_exif[0x0112] == 1 and loaded_exif[0x010F] == "TestCam"
    assert iio.read_header(tmp_path / "in.jpg") == (20, 30, 3)

    out = iio.save_image(loaded, tmp_path / "out.jpg")
    with PILImage.open(out) as reread:
        exif = reread.getexif()
        assert exif[0x0112] == 1
        assert exif[0x010F] == "TestCam"
        assert exif.get_ifd(0x8769)[0x8827] == 400
        assert reread.info["icc_profile"] == icc
        assert reread.size == (20, 30)


@pytest.mark.parametrize("ext", ["png", "webp", "tif"])
def test_exif_and_icc_copied_to_other_formats(tmp_path: Path, ext: str) -> None:
    icc = _srgb_icc()
    _jpeg_with_exif(tmp_path / "in.jpg", 8, icc)
    loaded = iio.load_image(tmp_path / "in.jpg")
    out = iio.save_image(loaded, tmp_path / f"out.{ext}")

    with PILImage.open(out) as reread:
        exif = reread.getexif()
        assert exif.get(0x0112, 1) == 1
        assert exif[0x010F] == "TestCam"
        assert float(exif.get_ifd(0x8769)[0x829A]) == pytest.approx(0.01)
        assert reread.info.get("icc_profile") == icc
    again = iio.load_image(out)
    assert again.icc_profile == icc and again.exif is not None
    assert again.data.shape == loaded.data.shape  # not rotated a second time


def test_exif_survives_16bit_tiff_and_back_to_jpeg(tmp_path: Path) -> None:
    _jpeg_with_exif(tmp_path / "in.jpg", 1)
    loaded = iio.load_image(tmp_path / "in.jpg")
    tif = iio.load_image(iio.save_image(loaded, tmp_path / "mid.tif", bit_depth=16))
    assert tif.bit_depth == 16
    out = iio.save_image(tif, tmp_path / "out.jpg")
    exif = PILImage.open(out).getexif()
    assert exif[0x010F] == "TestCam" and exif.get_ifd(0x8769)[0x8827] == 400


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow_exif_transpose(tmp_path: Path, orientation: int) -> None:
    values = _u8((4, 7, 3))
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    PILImage.fromarray(values).save(tmp_path / "o.png", exif=exif.tobytes())
    reference = np.asarray(ImageOps.exif_transpose(PILImage.open(tmp_path / "o.png")))

    loaded = iio.load_image(tmp_path / "o.png")
    np.testing.assert_array_equal(iio.to_uint8(loaded.data), reference)
    assert iio.read_header(tmp_path / "o.png") == (reference.shape[1], reference.shape[0], 3)


def test_16bit_tiff_orientation_tag_applied(tmp_path: Path) -> None:
    values = _u16((5, 8, 3))
    tifffile.imwrite(tmp_path / "o.tif", values, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    loaded = iio.load_image(tmp_path / "o.tif")
    np.testing.assert_array_equal(iio.to_uint16(loaded.data), np.rot90(values, k=-1))
    assert iio.read_header(tmp_path / "o.tif") == (5, 8, 3)


def test_cmyk_jpeg_becomes_rgb_and_drops_cmyk_profile(tmp_path: Path) -> None:
    cmyk = PILImage.new("CMYK", (6, 4), (0, 255, 255, 0))  # pure red
    cmyk.paste((0, 0, 0, 0), (0, 0, 3, 4))  # white left half
    cmyk.save(tmp_path / "cmyk.jpg", quality=100, icc_profile=_srgb_icc())
    assert PILImage.open(tmp_path / "cmyk.jpg").mode == "CMYK"

    loaded = iio.load_image(tmp_path / "cmyk.jpg")
    assert loaded.channels == 3 and loaded.icc_profile is None
    np.testing.assert_allclose(loaded.data[0, 0], [1, 1, 1], atol=2 / 255)
    np.testing.assert_allclose(loaded.data[0, 5], [1, 0, 0], atol=2 / 255)
    out = iio.save_image(loaded, tmp_path / "out.jpg")
    assert PILImage.open(out).mode == "RGB" and "icc_profile" not in PILImage.open(out).info


def test_bmp_carries_no_metadata(tmp_path: Path) -> None:
    _jpeg_with_exif(tmp_path / "in.jpg", 1, _srgb_icc())
    out = iio.save_image(iio.load_image(tmp_path / "in.jpg"), tmp_path / "out.bmp")
    reloaded = iio.load_image(out)
    assert reloaded.exif is None and reloaded.icc_profile is None and reloaded.format == "bmp"


# ----------------------------------------------------------------------------------------------------
# bad inputs


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="does not exist") as info:
        iio.load_image(tmp_path / "nope.png")
    assert info.value.path == tmp_path / "nope.png"
    assert "nope.png" in str(info.value)


def test_directory(tmp_path: Path) -> None:
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageReadError, match="folder"):
        iio.load_image(tmp_path / "d.png")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty"):
        iio.load_image(tmp_path / "e.png")
    with pytest.raises(ImageReadError, match="empty"):
        iio.read_header(tmp_path / "e.png")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("junk.png", bytes(range(256)) * 4),
        ("junk.jpg", b"\xff\xd8\xff" + bytes(200)),
        ("sig_only.png", b"\x89PNG\r\n\x1a\n\x00\x00"),
        ("junk.tif", b"II*\x00" + bytes(60)),
        ("junk.webp", b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(20)),
    ],
)
def test_corrupt_files(tmp_path: Path, name: str, content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ImageReadError) as info:
        iio.load_image(tmp_path / name)
    assert name in str(info.value)
    with pytest.raises(ImageReadError):
        iio.read_header(tmp_path / name)


def test_truncated_jpeg(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    PILImage.fromarray(_u8((64, 64, 3))).save(buffer, format="JPEG")
    (tmp_path / "t.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageReadError, match="truncated"):
        iio.load_image(tmp_path / "t.jpg")


def test_truncated_16bit_tiff(tmp_path: Path) -> None:
    path = iio.save_image(_make_image(_u16((40, 40, 3)), 16), tmp_path / "t.tif")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError):
        iio.load_image(path)


def test_unsupported_extension(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageReadError, match=r"unsupported file type '\.txt'"):
        iio.load_image(tmp_path / "notes.txt")


def test_content_format_wins_over_extension(tmp_path: Path) -> None:
    values = _u8((5, 5, 3))
    PILImage.fromarray(values).save(tmp_path / "really_png.jpg", format="PNG")
    loaded = iio.load_image(tmp_path / "really_png.jpg")
    assert loaded.format == "png"
    np.testing.assert_array_equal(iio.to_uint8(loaded.data), values)


def test_unsupported_content_in_supported_extension(tmp_path: Path) -> None:
    PILImage.new("RGB", (4, 4)).save(tmp_path / "gif.png", format="GIF")
    with pytest.raises(ImageReadError, match="not a recognised image"):
        iio.load_image(tmp_path / "gif.png")


def _huge_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _png_chunk(b"IEND", b""))


def test_png_header_claiming_huge_dimensions(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(_huge_png(100_000, 100_000))
    with pytest.raises(ImageReadError, match="too large") as info:
        iio.load_image(tmp_path / "bomb.png")
    assert "100000 x 100000" in str(info.value)
    with pytest.raises(ImageReadError, match="too large"):
        iio.read_header(tmp_path / "bomb.png")


def test_max_pixels_checked_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    PILImage.fromarray(_u8((30, 40, 3))).save(tmp_path / "a.jpg")
    tifffile.imwrite(tmp_path / "b.tif", _u16((30, 40)))
    monkeypatch.setattr(decode, "MAX_PIXELS", 1000)
    for name in ("a.jpg", "b.tif"):
        with pytest.raises(ImageReadError, match="too large"):
            iio.load_image(tmp_path / name)
    # Pillow's own limit is lifted to ours, so a big but legal image is not refused by Pillow
    assert PILImage.MAX_IMAGE_PIXELS >= 400_000_000


def test_raw_support_follows_rawpy(tmp_path: Path) -> None:
    (tmp_path / "fake.dng").write_bytes(b"not a raw file at all" * 10)
    assert (".dng" in iio.SUPPORTED_EXTENSIONS) == iio.HAVE_RAW
    with pytest.raises(ImageReadError) as info:
        iio.load_image(tmp_path / "fake.dng")
    assert "fake.dng" in str(info.value)


def test_errors_are_denoiser_errors(tmp_path: Path) -> None:
    with pytest.raises(DenoiserError):
        iio.load_image(tmp_path / "missing.webp")


# ----------------------------------------------------------------------------------------------------
# header


def test_read_header_reports_oriented_size_and_colour_channels(tmp_path: Path) -> None:
    PILImage.fromarray(_u8((9, 4, 3))).save(tmp_path / "rgb.png")
    PILImage.fromarray(_u8((9, 4, 2)), mode="LA").save(tmp_path / "la.png")
    (tmp_path / "ga16.png").write_bytes(_reference_png16(_u16((3, 5, 2))))
    tifffile.imwrite(tmp_path / "f.tif", np.zeros((6, 2, 3), np.float32), photometric="rgb")
    assert iio.read_header(tmp_path / "rgb.png") == (4, 9, 3)
    assert iio.read_header(tmp_path / "la.png") == (4, 9, 1)
    assert iio.read_header(tmp_path / "ga16.png") == (5, 3, 1)
    assert iio.read_header(tmp_path / "f.tif") == (2, 6, 3)


# ----------------------------------------------------------------------------------------------------
# saving: errors and atomicity


def test_save_creates_missing_folders(tmp_path: Path) -> None:
    path = iio.save_image(_make_image(_u8((3, 3, 3)), 8), tmp_path / "a" / "b" / "c.png")
    assert path.is_file() and _no_temp_files(path.parent)


def test_save_when_parent_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("I am a file")
    with pytest.raises(ImageWriteError, match="cannot create folder") as info:
        iio.save_image(_make_image(_u8((3, 3, 3)), 8), tmp_path / "blocker" / "out.png")
    assert info.value.path == tmp_path / "blocker" / "out.png"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores folder permissions")
def test_save_into_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(ImageWriteError, match="not writable"):
            iio.save_image(_make_image(_u8((3, 3, 3)), 8), folder / "out.png")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_permission_denied_is_reported_as_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same check as above but works as root too: the temp-file creation is refused by the OS."""
    real_open = os.open

    def deny(path, *args, **kwargs):
        if str(path).endswith(".tmp"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "open", deny)
    with pytest.raises(ImageWriteError, match="folder is not writable"):
        iio.save_image(_make_image(_u8((3, 3, 3)), 8), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_false_refuses_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "x.png"
    target.write_bytes(b"original")
    with pytest.raises(ImageWriteError, match="already exists"):
        iio.save_image(_make_image(_u8((3, 3, 3)), 8), target, overwrite=False)
    assert target.read_bytes() == b"original"
    assert _no_temp_files(tmp_path)
    # and overwrite=False is fine for a new name
    new = iio.save_image(_make_image(_u8((3, 3, 3)), 8), tmp_path / "y.png", overwrite=False)
    assert iio.load_image(new).width == 3


def test_overwrite_true_replaces_file(tmp_path: Path) -> None:
    target = tmp_path / "x.png"
    target.write_bytes(b"original")
    values = _u8((4, 4, 3))
    iio.save_image(_make_image(values, 8), target)
    np.testing.assert_array_equal(iio.to_uint8(iio.load_image(target).data), values)


@pytest.mark.parametrize("writer", ["_write_pillow", "_write_png16", "_write_tiff"])
def test_failed_write_leaves_target_untouched_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writer: str
) -> None:
    name, depth = {"_write_pillow": ("x.png", 8), "_write_png16": ("x.png", 16), "_write_tiff": ("x.tif", 16)}[writer]
    target = tmp_path / name
    original = _make_image(_u8((5, 5, 3)), 8)
    iio.save_image(original, target)
    before = target.read_bytes()

    def broken(fp, *args, **kwargs):
        fp.write(b"half an image")
        raise RuntimeError("disk exploded")

    monkeypatch.setattr(encode, writer, broken)
    with pytest.raises(ImageWriteError, match="disk exploded"):
        iio.save_image(_make_image(_u16((5, 5, 3)), 16), target, bit_depth=depth)
    assert target.read_bytes() == before
    assert _no_temp_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_temp_file_is_hidden_and_in_target_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Path] = []
    real_replace = os.replace

    def spy(src, dst):
        seen.append(Path(src))
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", spy)
    iio.save_image(_make_image(_u8((3, 3, 3)), 8), tmp_path / "out.png")
    assert len(seen) == 1
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".") and seen[0].name.endswith(".tmp")
    assert not seen[0].exists() and (tmp_path / "out.png").is_file()


def test_save_format_and_depth_errors(tmp_path: Path) -> None:
    image = _make_image(_u16((3, 3, 3)), 16)
    with pytest.raises(ImageWriteError, match="RAW"):
        iio.save_image(image, tmp_path / "x.dng")
    with pytest.raises(ImageWriteError, match="RAW"):
        iio.save_image(image, tmp_path / "x.tif", format="raw")
    with pytest.raises(ImageWriteError, match="extension"):
        iio.save_image(image, tmp_path / "x.txt")
    with pytest.raises(ImageWriteError, match="16-bit"):
        iio.save_image(image, tmp_path / "x.jpg", bit_depth=16)
    with pytest.raises(ImageWriteError, match="quality"):
        iio.save_image(image, tmp_path / "x.jpg", quality=0)
    (tmp_path / "dir.png").mkdir()
    with pytest.raises(ImageWriteError, match="folder"):
        iio.save_image(image, tmp_path / "dir.png")
    assert _no_temp_files(tmp_path)


def test_explicit_format_overrides_extension(tmp_path: Path) -> None:
    path = iio.save_image(_make_image(_u8((4, 4, 3)), 8), tmp_path / "out.bin", format="jpg")
    assert PILImage.open(path).format == "JPEG"


def test_jpeg_quality_is_used(tmp_path: Path) -> None:
    image = _make_image(_u8((32, 32, 3)), 8)
    low = iio.save_image(image, tmp_path / "low.jpg", quality=30)
    high = iio.save_image(image, tmp_path / "high.jpg", quality=95)
    assert low.stat().st_size < high.stat().st_size


def test_jpeg_drops_alpha(tmp_path: Path) -> None:
    image = _make_image(_u8((4, 4, 3)), 8, alpha=_u8((4, 4)))
    loaded = iio.load_image(iio.save_image(image, tmp_path / "a.jpg"))
    assert loaded.alpha is None and loaded.channels == 3


# ----------------------------------------------------------------------------------------------------
# small API pieces


def test_output_format_for() -> None:
    assert iio.output_format_for("a.PNG") == "png"
    assert iio.output_format_for(Path("b.jpeg")) == "jpeg"
    assert iio.output_format_for("c.jpg") == "jpeg"
    assert iio.output_format_for("d.tif") == "tiff"
    assert iio.output_format_for("e.webp") == "webp"
    assert iio.output_format_for("f.bmp") == "bmp"
    with pytest.raises(ValueError):
        iio.output_format_for("g.gif")
    with pytest.raises(ValueError):
        iio.output_format_for("h.nef")


def test_to_uint8_rounds_and_clips() -> None:
    x = np.array([-0.5, 0.0, 0.6 / 255, 0.4, 1.0, 7.0, np.nan], dtype=np.float32)
    out = iio.to_uint8(x)
    assert out.dtype == np.uint8
    assert out.tolist() == [0, 0, 1, 102, 255, 255, 0]


def test_image_properties_and_with_data() -> None:
    image = _make_image(_u8((6, 8, 3)), 8, alpha=_u8((6, 8)), exif=b"Exif\x00\x00II*\x00", format="jpeg")
    assert (image.height, image.width, image.channels) == (6, 8, 3)
    assert image.megapixels == pytest.approx(48 / 1e6)
    new = image.with_data(np.zeros((6, 8, 3), np.float32))
    assert new is not image and new.exif == image.exif and new.format == "jpeg" and new.bit_depth == 8
    assert new.alpha is image.alpha and float(new.data.max()) == 0.0
    assert image.data.max() > 0  # the original is untouched
    smaller = image.with_data(np.zeros((3, 4, 1), np.float32))
    assert smaller.alpha is None and smaller.channels == 1
    with pytest.raises(ValueError):
        iio.Image(data=np.zeros((2, 2, 2), np.float32), alpha=None, bit_depth=8, exif=None,
                  icc_profile=None, format="png")


def test_quantizing_in_bands_matches_whole_array_rounding(monkeypatch):
    rng = np.random.default_rng(3)
    x = (rng.random((70, 9, 3)) * 1.2 - 0.1).astype(np.float32)
    x[5, 5, 0] = np.nan
    monkeypatch.setattr(formats, "QUANTIZE_ROWS", 16)  # several bands, the last one short
    expected = np.rint(np.clip(np.nan_to_num(x) * np.float32(255), 0, 255)).astype(np.uint8)
    np.testing.assert_array_equal(iio.to_uint8(x), expected)
    assert iio.to_uint16(np.float32(1.5)) == 65535 and iio.to_uint8(np.float32(0.5)).shape == ()


@pytest.mark.parametrize("depth,dtype", [(8, np.uint8), (16, np.uint16), (32, np.float32)])
def test_native_pixels_are_exact_at_the_files_depth(tmp_path, depth, dtype):
    rng = np.random.default_rng(depth)
    top = {8: 255, 16: 65535, 32: 1}[depth]
    img = iio.Image(data=(rng.integers(0, top + 1, (6, 5, 3)) / top).astype(np.float32), alpha=None, bit_depth=depth,
                    exif=None, icc_profile=None, format="png")
    native = iio.native_pixels(img)
    assert native.dtype == dtype
    np.testing.assert_allclose(native.astype(np.float64) / top, img.data, atol=1e-7)


def test_files_of_several_images_are_refused_not_cut_to_the_first(tmp_path: Path) -> None:
    import tifffile as tf

    pages = np.stack([np.full((8, 10), v, np.uint16) for v in (100, 30000, 60000)])
    tf.imwrite(tmp_path / "stack.tif", pages, photometric="minisblack")
    frames = [PILImage.fromarray(np.full((6, 6, 3), v, np.uint8)) for v in (0, 128, 255)]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], duration=100, lossless=True)
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:], duration=100)
    for name, unit in (("stack.tif", "3 pages"), ("anim.webp", "3 frames"), ("anim.png", "3 frames")):
        with pytest.raises(ImageReadError, match=unit):
            iio.load_image(tmp_path / name)
    tf.imwrite(tmp_path / "one.tif", pages[1])
    frames[1].save(tmp_path / "still.webp", lossless=True)
    assert iio.load_image(tmp_path / "one.tif").data.max() == pytest.approx(30000 / 65535)
    assert iio.load_image(tmp_path / "still.webp").data.shape == (6, 6, 3)
