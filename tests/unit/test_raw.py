"""The raw domain: Bayer packing, the raw noise estimate, training pairs, the DNG writer read back by LibRaw,
and the tiled raw denoise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from denoiser.archs import build_arch
from denoiser.errors import DenoiserError, ImageReadError, OutputExistsError
from denoiser.progress import drain
from denoiser.raw import (
    DEMOSAICS,
    SOFTWARE,
    RawMosaic,
    at_strength,
    denoise_mosaic,
    develop,
    estimate_raw_noise,
    mosaic_from_image,
    noise_level_map,
    pack,
    raw_training_pair,
    read_raw,
    unpack,
    write_dng,
)

rawpy = pytest.importorskip("rawpy")

PATTERNS = {"RGGB": [[0, 1], [1, 2]], "BGGR": [[2, 1], [1, 0]], "GRBG": [[1, 0], [2, 1]], "GBRG": [[1, 2], [0, 1]]}


def smooth_image(h: int = 96, w: int = 128) -> np.ndarray:
    """A smooth colour image in [0.05, 0.95]: gradients, no texture (so the green pairs differ by noise only)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([0.05 + 0.9 * x / w, 0.05 + 0.9 * y / h, 0.5 + 0.4 * np.sin(x / 20) * np.cos(y / 25)], -1)


@pytest.mark.parametrize("name", list(PATTERNS))
def test_pack_then_unpack_is_the_mosaic_and_planes_are_r_g_g_b(name):
    pattern = np.array(PATTERNS[name])
    mosaic = np.arange(6 * 8, dtype=np.float32).reshape(6, 8)
    planes = pack(mosaic, pattern)
    assert planes.shape == (4, 3, 4)
    red = [(dy, dx) for dy in range(2) for dx in range(2) if pattern[dy, dx] == 0][0]
    blue = [(dy, dx) for dy in range(2) for dx in range(2) if pattern[dy, dx] == 2][0]
    assert planes[0, 0, 0] == mosaic[red] and planes[3, 0, 0] == mosaic[blue]
    assert np.array_equal(unpack(planes, pattern, np.zeros_like(mosaic)), mosaic)


def test_a_pattern_that_is_not_bayer_is_refused():
    with pytest.raises(DenoiserError, match="not a Bayer pattern"):
        pack(np.zeros((4, 4), np.float32), np.array([[0, 0], [1, 2]]))


@pytest.mark.parametrize(("shot", "read"), [(0.0005, 1e-5), (0.004, 2e-4)])
def test_raw_noise_estimate_reads_shot_and_read_noise(shot, read):
    ramp = np.tile(np.linspace(0.05, 0.95, 512, dtype=np.float32)[None, :, None], (512, 1, 3))
    m = mosaic_from_image(ramp, shot=shot, read=read, seed=3)
    est_shot, est_read = estimate_raw_noise(pack(m.normalised(), m.pattern))
    assert est_shot == pytest.approx(shot, rel=0.15)
    sigma, est_sigma = np.sqrt(shot * 0.2 + read), np.sqrt(est_shot * 0.2 + est_read)  # σ at a mid level
    assert est_sigma == pytest.approx(sigma, rel=0.1)
    assert estimate_raw_noise(pack(mosaic_from_image(ramp).normalised(), m.pattern))[0] < shot / 5  # clean reads ~0


def test_noise_level_map_follows_the_signal():
    planes = torch.cat([torch.full((1, 4, 8, 8), 0.1), torch.full((1, 4, 8, 8), 0.9)], dim=3)
    m = noise_level_map(planes, 0.01, 0.0001)
    assert m.shape == (1, 1, 8, 16)
    assert m[0, 0, 4, 0].item() == pytest.approx(np.sqrt(0.01 * 0.1 + 0.0001), rel=1e-4)
    assert m[0, 0, 4, -1].item() == pytest.approx(np.sqrt(0.01 * 0.9 + 0.0001), rel=1e-4)


def test_training_pairs_are_raw_planes_with_signal_dependent_noise():
    rgb = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    clean, noisy, sigma = raw_training_pair(rgb, (0.8, 0.8), 0.0, torch.Generator().manual_seed(1))
    assert clean.shape == noisy.shape == (4, 4, 32, 32) and sigma.shape == (4, 1, 32, 32)
    assert 0 <= clean.min() and clean.max() <= 1
    assert (noisy - clean).std() > 0.01 and (sigma > 0).all()
    same, again, zero = raw_training_pair(rgb, (0.8, 0.8), 1.0, torch.Generator().manual_seed(1))
    assert torch.equal(same, again) and torch.all(zero == 0)  # clean_prob 1: input = target, told σ 0


def test_dng_written_here_is_read_back_by_libraw_with_its_metadata(tmp_path):
    m = mosaic_from_image(smooth_image(), shot=0.002, read=1e-4, wb=(2.2, 1.0, 1.5))
    pattern = np.array(PATTERNS["GRBG"])
    m = RawMosaic(cfa=m.cfa, pattern=pattern, black=np.array([[500, 510], [520, 530]]), white=15000, wb=m.wb,
                  color_matrix=m.color_matrix, orientation=6, make="Acme", model="Raw 1",
                  datetime="2026:12:04 10:00:00")
    path = write_dng(m, tmp_path / "shot.dng")
    back = read_raw(path)
    assert np.array_equal(back.cfa, m.cfa)
    assert np.array_equal(back.pattern, pattern) and np.array_equal(back.black, m.black)
    assert back.white == 15000 and back.orientation == 6
    assert back.wb == pytest.approx(m.wb, rel=1e-3)
    assert back.color_matrix is not None
    assert (back.make, back.model, back.datetime) == ("Acme", "Raw 1", "2026:12:04 10:00:00")
    import tifffile

    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].tags["Software"].value == SOFTWARE  # our outputs are recognisable
    rgb = develop(path)
    assert rgb.dtype == np.uint16 and rgb.shape[2] == 3


def test_write_dng_never_replaces_a_file_unless_asked(tmp_path):
    target = tmp_path / "x.dng"
    target.write_bytes(b"the user's file")
    m = mosaic_from_image(smooth_image(64, 64))
    with pytest.raises(OutputExistsError):
        write_dng(m, target)
    assert target.read_bytes() == b"the user's file"
    write_dng(m, target, overwrite=True)
    assert np.array_equal(read_raw(target).cfa, m.cfa)
    assert [p.name for p in tmp_path.iterdir()] == ["x.dng"]  # no temporary file left


def test_a_file_that_is_not_a_raw_gets_a_clear_message(tmp_path):
    bad = tmp_path / "broken.nef"
    bad.write_bytes(b"not a raw file at all" * 10)
    with pytest.raises(ImageReadError, match="not a readable camera RAW file"):
        read_raw(bad)


def test_denoise_mosaic_needs_a_raw_model_keeps_saturation_and_strength_zero_is_the_input():
    img = smooth_image()
    img[:20, :20] = 1.0  # blown out
    m = mosaic_from_image(img, shot=0.003, read=1e-4, wb=(1.0, 1.0, 1.0))
    with pytest.raises(DenoiserError, match="4-plane raw model"):
        drain(denoise_mosaic(m, build_arch("unet", in_channels=3, channels=[8, 16])))
    net = build_arch("unet", in_channels=4, channels=[8, 16])
    events = []
    res = drain(denoise_mosaic(m, net), events.append)
    assert events and events[-1].fraction == 1.0
    assert res.mosaic.cfa.shape == m.cfa.shape and res.shot > 0
    saturated = m.cfa >= m.white
    assert saturated.sum() > 100 and np.array_equal(res.mosaic.cfa[saturated], m.cfa[saturated])
    assert np.array_equal(drain(denoise_mosaic(m, net, strength=0.0)).mosaic.cfa, m.cfa)
    assert drain(denoise_mosaic(m, net, sigma=5.0)).read == pytest.approx((5 / 255) ** 2)


def test_odd_sized_mosaics_and_one_quad_denoise():
    net = build_arch("unet", in_channels=4, channels=[8, 16])
    for h, w in ((2, 2), (7, 13), (300, 530)):
        cfa = np.random.default_rng(h).integers(3800, 4200, (h, w)).astype(np.uint16)
        m = RawMosaic(cfa=cfa, pattern=np.array(PATTERNS["RGGB"]), black=np.full((2, 2), 512), white=16383)
        out = drain(denoise_mosaic(m, net)).mosaic
        assert out.cfa.shape == (h, w)
        if h % 2:  # the odd last row is no quad's: kept as it was
            assert np.array_equal(out.cfa[-1], cfa[-1])
    one = RawMosaic(cfa=np.zeros((1, 1), np.uint16), pattern=np.array(PATTERNS["RGGB"]), black=np.zeros((2, 2)),
                    white=1023)
    with pytest.raises(DenoiserError, match="smaller than one 2×2 Bayer quad"):
        drain(denoise_mosaic(one, net))


def test_at_strength_blends_the_mosaics_between_the_original_and_the_denoised() -> None:
    noisy = mosaic_from_image(smooth_image(), shot=0.002, read=1e-4, seed=5)
    clean = mosaic_from_image(smooth_image())
    assert at_strength(noisy, clean, 1.0) is clean
    assert np.array_equal(at_strength(noisy, clean, 0.0).cfa, noisy.cfa)
    half = at_strength(noisy, clean, 0.5).normalised()
    np.testing.assert_allclose(half, (noisy.normalised() + clean.normalised()) / 2, atol=1.0 / clean.white)


def test_develop_takes_each_of_libraws_own_demosaics_and_refuses_others() -> None:
    """Each demosaic develops the same mosaic to the same size, differently (their noise differs in structure);
    AHD is LibRaw's default; a name LibRaw does not have here is refused with the list."""
    from denoiser.raw import dng_bytes

    rgb = np.random.default_rng(3).random((48, 64, 3)).astype(np.float32)  # texture, so demosaics disagree
    data = dng_bytes(mosaic_from_image(rgb, shot=0.01, read=1e-4))
    default = develop(data)
    assert np.array_equal(develop(data, "AHD"), default)
    others = {name: develop(data, name) for name in DEMOSAICS if name != "AHD"}
    assert all(out.shape == default.shape and out.dtype == np.uint16 for out in others.values())
    assert all(np.abs(out.astype(float) - default).mean() > 100 for out in others.values())
    with pytest.raises(DenoiserError, match="AMAZE.*one of AHD"):
        develop(data, "AMAZE")
