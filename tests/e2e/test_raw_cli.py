"""RAW in, DNG out, end to end without a camera file: a Kodak image unprocessed to a noisy Bayer mosaic is
written as a DNG by our writer, read by LibRaw, denoised by the bundled `raw` model through `denoiser denoise`,
and the result read back and developed by LibRaw."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from denoiser.cli import main
from denoiser.metrics import psnr
from denoiser.raw import SOFTWARE, develop, mosaic_from_image, read_raw, write_dng
from tests.helpers import shared_data

pytest.importorskip("rawpy")


@pytest.fixture
def raw_folder(tmp_path):
    """in/noisy.dng (ISO-high shot + read noise, as a camera's), clean.dng beside it, and a JPEG in in/."""
    kodak = shared_data("test", "Kodak24")
    rgb = np.asarray(PILImage.open(kodak / "kodim23.png").convert("RGB"), np.float32)[:384, :512] / 255.0
    src = tmp_path / "in"
    src.mkdir()
    meta = {"wb": (2.1, 1.0, 1.5)}
    clean = mosaic_from_image(rgb, **meta)
    noisy = mosaic_from_image(rgb, shot=0.004, read=2e-4, seed=4, **meta)
    noisy.orientation, noisy.make, noisy.model = 8, "Acme", "Raw 1"
    clean.orientation = 8  # both develop turned the same way
    write_dng(clean, tmp_path / "clean.dng")
    write_dng(noisy, src / "noisy.dng")
    PILImage.fromarray((rgb * 255).round().astype(np.uint8)).save(src / "photo.jpg", quality=90)
    return tmp_path


def _developed(path) -> np.ndarray:
    return develop(path).astype(np.float64) / 65535.0


def test_a_raw_is_denoised_in_the_raw_domain_to_a_dng_that_libraw_reads_and_develops(raw_folder, capsys):
    out = raw_folder / "out"
    assert main(["denoise", str(raw_folder / "in" / "noisy.dng"), "-o", str(out) + "/", "--device", "cpu"]) == 0
    result = out / "noisy.dng"
    assert result.is_file()
    before, after = read_raw(raw_folder / "in" / "noisy.dng"), read_raw(result)
    for field in ("pattern", "black"):
        assert np.array_equal(getattr(after, field), getattr(before, field))
    assert (after.white, after.orientation, after.make, after.model) == (before.white, 8, "Acme", "Raw 1")
    assert after.wb == pytest.approx(before.wb, rel=1e-3)
    assert after.cfa.shape == before.cfa.shape and not np.array_equal(after.cfa, before.cfa)
    import tifffile

    with tifffile.TiffFile(result) as tif:
        assert tif.pages[0].tags["Software"].value == SOFTWARE
    reference = _developed(raw_folder / "clean.dng")
    noisy_psnr = psnr(reference, _developed(raw_folder / "in" / "noisy.dng"), 1.0)
    denoised_psnr = psnr(reference, _developed(result), 1.0)
    assert denoised_psnr > noisy_psnr + 3.0, (noisy_psnr, denoised_psnr)


def test_format_tiff_writes_the_denoised_develop_and_dng_refuses_a_jpeg_but_goes_on(raw_folder, capsys):
    out = raw_folder / "dev"
    code = main(["denoise", str(raw_folder / "in"), "-o", str(out), "--format", "tiff", "--device", "cpu"])
    assert code == 0
    import tifffile

    developed = tifffile.imread(out / "noisy.tif")
    assert developed.dtype == np.uint16 and developed.shape[2] == 3
    reference = _developed(raw_folder / "clean.dng")
    noisy_psnr = psnr(reference, _developed(raw_folder / "in" / "noisy.dng"), 1.0)
    assert psnr(reference, developed / 65535.0, 1.0) > noisy_psnr + 3.0
    assert (out / "photo.tif").is_file()  # the JPEG is denoised as a photo beside it
    capsys.readouterr()
    code = main(["denoise", str(raw_folder / "in"), "-o", str(raw_folder / "dng"), "--format", "dng", "--device", "cpu"])
    text = capsys.readouterr()
    assert code != 0 and (raw_folder / "dng" / "noisy.dng").is_file()
    assert "DNG output is for camera RAW inputs" in text.out + text.err
    assert not (raw_folder / "dng" / "photo.dng").exists()


def test_finishing_that_needs_a_develop_is_refused_for_a_dng_and_a_photo_model_is_not_a_raw_model(raw_folder, capsys):
    src = raw_folder / "in" / "noisy.dng"
    code = main(["denoise", str(src), "-o", str(raw_folder / "a.dng"), "--grain", "0.3", "--device", "cpu"])
    text = capsys.readouterr()
    assert code != 0 and not (raw_folder / "a.dng").exists()
    assert "use --format tiff for RAW files" in text.out + text.err
    code = main(["denoise", str(src), "-o", str(raw_folder / "b.dng"), "--raw-model", "photo", "--device", "cpu"])
    text = capsys.readouterr()
    assert code != 0 and "is not a raw model" in text.out + text.err
    assert main(["denoise", str(src), "-o", str(raw_folder / "c.dng"), "--strength", "0", "--device", "cpu"]) == 0
    assert np.array_equal(read_raw(raw_folder / "c.dng").cfa, read_raw(src).cfa)  # strength 0: the input's mosaic


def test_a_developed_output_denoises_the_develop_with_photo_and_a_dng_the_mosaic(raw_folder, capsys):
    from denoiser.batch import BatchOptions, denoise_file
    from denoiser.progress import drain

    src = raw_folder / "in" / "noisy.dng"
    reference = _developed(raw_folder / "clean.dng")
    noisy_psnr = psnr(reference, _developed(src), 1.0)
    import tifffile

    scores = {}
    for pipeline in ("auto", "develop", "mosaic"):
        out = raw_folder / f"{pipeline}.tif"
        assert main(["denoise", str(src), "-o", str(out), "--raw-pipeline", pipeline, "--device", "cpu",
                     "--precision", "fp32"]) == 0
        scores[pipeline] = tifffile.imread(out)
    assert np.array_equal(scores["auto"], scores["develop"])  # auto: a developed output takes the develop
    assert not np.array_equal(scores["develop"], scores["mosaic"])
    quality = {k: psnr(reference, v / 65535.0, 1.0) for k, v in scores.items()}
    assert quality["mosaic"] > noisy_psnr + 3.0 and quality["develop"] > quality["mosaic"], (noisy_psnr, quality)
    # the develop pipeline is the photo path: the same pixels as denoising the RAW's develop as an image
    result = drain(denoise_file(src, raw_folder / "engine.tif", "", BatchOptions(
        output=raw_folder, format="tiff", raw_pipeline="develop", device="cpu", precision="fp32"), 0, {}))
    assert result.status == "done" and np.array_equal(tifffile.imread(raw_folder / "engine.tif"), scores["develop"])
    # --raw-pipeline develop alone writes the develop as a 16-bit TIFF; asked for a DNG it is refused up front
    assert main(["denoise", str(src), "-o", str(raw_folder / "same") + "/", "--raw-pipeline", "develop",
                 "--device", "cpu"]) == 0
    assert tifffile.imread(raw_folder / "same" / "noisy.tif").dtype == np.uint16
    capsys.readouterr()
    code = main(["denoise", str(src), "-o", str(raw_folder / "no") + "/", "--raw-pipeline", "develop",
                 "--format", "dng", "--device", "cpu"])
    text = capsys.readouterr()
    assert code != 0 and "use --raw-pipeline mosaic for a DNG" in text.out + text.err
    assert not (raw_folder / "no").exists() or not any((raw_folder / "no").iterdir())
