import pytest
import torch

from denoiser.archs import ARCH_REGISTRY, build_arch


@pytest.mark.parametrize("name,cfg", [
    ("unet", {"channels": [8, 16, 32]}),
    ("dncnn", {"depth": 5, "features": 8}),
    ("ffdnet", {"depth": 4, "features": 8}),
    ("conv-ae", {"width": 8, "depth": 2, "code_channels": 4}),
])
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_shapes_and_code(name, cfg, channels):
    net = build_arch(name, in_channels=channels, **cfg)
    x = torch.rand(2, channels, 32, 48)
    out = net.encode_decode(x, torch.tensor([0.1, 0.2]))
    assert out.image.shape == x.shape
    assert out.code.dim() == 4 and out.code.shape[0] == 2
    assert net.parameter_count() > 0
    assert net.macs_per_pixel() > 0


def test_registry_names_and_unknown():
    assert {"unet", "dncnn", "ffdnet", "conv-ae"} <= set(ARCH_REGISTRY)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_arch("transformer")


@pytest.mark.parametrize("name", ["unet", "dncnn", "ffdnet", "conv-ae"])
def test_a_misspelt_option_is_refused_and_the_known_ones_are_named(name):
    with pytest.raises(ValueError, match=r"unknown option chanels for architecture .*in_channels"):
        build_arch(name, chanels=[8, 16])


def test_unet_uses_the_noise_map():
    torch.manual_seed(0)
    net = build_arch("unet", channels=[8, 16])
    x = torch.rand(1, 3, 32, 32)
    assert not torch.allclose(net(x, torch.tensor([0.0])), net(x, torch.tensor([0.3])))
    with pytest.raises(ValueError, match="sigma"):
        net(x, None)
    per_pixel = net(x, torch.full((1, 1, 32, 32), 0.1))
    assert torch.allclose(per_pixel, net(x, torch.tensor([0.1])), atol=1e-6)


def test_unet_is_residual_and_downsamples():
    net = build_arch("unet", channels=[8, 16, 32])
    with torch.no_grad():
        net.tail.weight.zero_()
        net.tail.bias.zero_()
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(net(x, torch.tensor([0.1])), x)
    code = net.encode_decode(x, torch.tensor([0.1])).code
    assert code.shape[-1] == 32 // 8  # pixel-unshuffle 2, then two stride-2 stages


def test_conv_ae_overcomplete_ratio_and_sigmoid_code():
    under = build_arch("conv-ae", width=8, depth=2, code_channels=8)
    over = build_arch("conv-ae", width=8, depth=0, code_channels=16)
    assert under.overcomplete_ratio < 1 < over.overcomplete_ratio
    code = under.encode(torch.rand(1, 3, 16, 16))
    assert code.min() >= 0 and code.max() <= 1 and under.code_in_unit_interval
    assert under.decode(code).shape == (1, 3, 16, 16)


def test_macs_count_matches_hand_count_for_dncnn():
    net = build_arch("dncnn", in_channels=1, depth=3, features=4, batch_norm=False)
    # conv 1->4, conv 4->4, tail 4->1, all 3x3
    assert net.macs_per_pixel() == 9 * (1 * 4 + 4 * 4 + 4 * 1)


def test_unet_to_gray_matches_the_colour_model_on_replicated_gray():
    from denoiser.archs.unet import unet_to_gray

    torch.manual_seed(0)
    colour = build_arch("unet", channels=[8, 16]).eval()
    gray = unet_to_gray(colour).eval()
    x = torch.rand(1, 1, 32, 32)
    expected = colour(x.repeat(1, 3, 1, 1), torch.tensor([0.1])).mean(dim=1, keepdim=True)
    torch.testing.assert_close(gray(x, torch.tensor([0.1])), expected, atol=1e-5, rtol=1e-5)


def test_ffdnet_defaults_follow_the_paper_and_count_its_macs():
    colour, gray = build_arch("ffdnet"), build_arch("ffdnet", in_channels=1)
    assert (colour.config["depth"], colour.config["features"]) == (12, 96)
    assert (gray.config["depth"], gray.config["features"]) == (15, 64)
    net = build_arch("ffdnet", in_channels=1, depth=3, features=4, batch_norm=False)
    # at half resolution: conv (4 unshuffled + 1 map)->4, conv 4->4, tail 4->4; a quarter per input pixel
    assert net.macs_per_pixel() == 9 * (5 * 4 + 4 * 4 + 4 * 4) / 4
