import math

import pytest
import torch

from denoiser.losses import (
    charbonnier_loss,
    code_distortion,
    encoder_robustness_loss,
    kl_sparsity_loss,
    l1_loss,
    l2_loss,
    reconstruction_loss,
    ssim_loss,
    ssim_map,
)


def test_reconstruction_losses_known_values():
    a = torch.zeros(1, 1, 2, 2)
    b = torch.tensor([[[[1.0, -1.0], [2.0, 0.0]]]])
    assert l2_loss(a, b).item() == pytest.approx(1.5)
    assert l1_loss(a, b).item() == pytest.approx(1.0)
    assert charbonnier_loss(a, b, eps=1e-3).item() == pytest.approx((1 + 1 + 2 + 1e-3) / 4, rel=1e-4)
    assert reconstruction_loss("l2", a, b).item() == pytest.approx(1.5)
    with pytest.raises(ValueError):
        reconstruction_loss("ssim", a, b)


def test_robustness_term_is_scaled_by_one_over_lambda_and_detaches_clean_branch():
    clean = torch.ones(2, 4, 3, 3, requires_grad=True)
    noisy = torch.full((2, 4, 3, 3), 1.5, requires_grad=True)
    d = code_distortion(noisy, clean)
    assert d.item() == pytest.approx(0.25)  # mean((0.5)^2) / mean(1^2)
    loss = encoder_robustness_loss(noisy, clean, lam=0.5)
    assert loss.item() == pytest.approx(0.5)
    loss.backward()
    assert clean.grad is None and noisy.grad is not None
    assert encoder_robustness_loss(noisy, clean, lam=0).item() == 0


def test_kl_sparsity_zero_at_target_and_positive_elsewhere():
    at_rho = torch.full((4, 3, 5, 5), 0.05)
    assert kl_sparsity_loss(at_rho, rho=0.05, beta=1.0).item() == pytest.approx(0, abs=1e-6)
    dense = torch.full((4, 3, 5, 5), 0.5)
    expected = 3 * (0.05 * math.log(0.05 / 0.5) + 0.95 * math.log(0.95 / 0.5))
    assert kl_sparsity_loss(dense, rho=0.05, beta=2.0).item() == pytest.approx(2 * expected, rel=1e-5)
    # real-valued codes are mapped through a sigmoid: code 0 -> activation 0.5
    assert kl_sparsity_loss(torch.zeros(1, 3, 2, 2), 0.05, 1.0, in_unit_interval=False).item() == pytest.approx(expected, rel=1e-5)


def test_training_loss_is_the_sum_of_the_terms_its_config_switches_on():
    from denoiser.archs import build_arch
    from denoiser.losses import LossConfig, encoder_robustness_loss, kl_sparsity_loss, training_loss

    torch.manual_seed(0)
    net = build_arch("conv-ae", in_channels=1, width=4, depth=1, code_channels=6, code_activation="sigmoid")
    clean = torch.rand(2, 1, 16, 16)
    noisy = clean + 0.1 * torch.randn_like(clean)
    res = net.encode_decode(noisy)
    plain = torch.mean(torch.abs(res.image - clean))
    torch.testing.assert_close(training_loss(LossConfig("l1"), net, noisy, clean), plain)
    full = LossConfig("l1", robustness_lambda=0.5, sparsity_beta=0.2, sparsity_rho=0.1)
    expected = (plain + encoder_robustness_loss(res.code, net.encode(clean), 0.5)
                + kl_sparsity_loss(res.code, 0.1, 0.2, net.code_in_unit_interval))
    torch.testing.assert_close(training_loss(full, net, noisy, clean), expected)
    unet = build_arch("unet", in_channels=1, channels=[8, 16])  # a noise-level model: its code given σ
    sigma = torch.full((2,), 0.1)
    out = unet.encode_decode(noisy, sigma)
    torch.testing.assert_close(
        training_loss(LossConfig("l2", robustness_lambda=2.0), unet, noisy, clean, sigma),
        torch.mean((out.image - clean) ** 2) + encoder_robustness_loss(out.code, unet.encode_decode(clean, sigma).code, 2.0))


def test_ssim_term_matches_the_metric_and_trains_towards_structure():
    import numpy as np

    from denoiser.metrics import ssim

    rng = np.random.default_rng(0)
    clean = rng.random((24, 30, 3))
    noisy = np.clip(clean + rng.normal(0, 0.1, clean.shape), 0, 1)
    as_tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float()  # noqa: E731
    # the loss is the benchmark's SSIM (same window and constants), differentiable
    assert 1 - ssim_loss(as_tensor(noisy), as_tensor(clean)).item() == pytest.approx(ssim(clean, noisy, 1.0), abs=1e-5)
    assert ssim_loss(as_tensor(clean), as_tensor(clean)).item() == pytest.approx(0, abs=1e-6)
    assert ssim_map(torch.rand(1, 3, 3, 3), torch.rand(1, 3, 3, 3)).shape == (1, 3, 1, 1)  # smaller than the window
    # a blurred image keeps the L1 error of a noisy one but loses far more SSIM: the term penalises lost texture
    blurred = torch.nn.functional.avg_pool2d(as_tensor(clean), 3, stride=1, padding=1, count_include_pad=False)
    assert ssim_loss(blurred, as_tensor(clean)) > ssim_loss(as_tensor(noisy), as_tensor(clean))
    pred = as_tensor(noisy).requires_grad_(True)
    ssim_loss(pred, as_tensor(clean)).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    # training runs under bf16 autocast on the CPU (and fp16 on CUDA): the term must stay float32 there,
    # or the local variances are mostly rounding (in bf16 this loss was 6 % off and its gradients noise)
    fp32_grad = pred.grad.clone()
    pred.grad = None
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = ssim_loss(pred, as_tensor(clean))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(1 - ssim(clean, noisy, 1.0), abs=1e-5)
    loss.backward()
    torch.testing.assert_close(pred.grad, fp32_grad)


def test_training_loss_adds_the_weighted_ssim_term_and_refuses_a_negative_weight():
    from denoiser.archs import build_arch
    from denoiser.errors import DenoiserError
    from denoiser.losses import LossConfig, training_loss

    torch.manual_seed(0)
    net = build_arch("unet", in_channels=3, channels=[8, 16])
    clean = torch.rand(2, 3, 16, 16)
    noisy = clean + 0.1 * torch.randn_like(clean)
    sigma = torch.full((2,), 0.1)
    out = net.encode_decode(noisy, sigma).image
    torch.testing.assert_close(training_loss(LossConfig("l1", ssim_weight=0.5), net, noisy, clean, sigma),
                               torch.mean(torch.abs(out - clean)) + 0.5 * ssim_loss(out, clean))
    assert LossConfig.from_dict({"reconstruction": "l1", "ssim_weight": 0.2}).ssim_weight == 0.2
    for bad in (-0.1, float("nan")):
        with pytest.raises(DenoiserError, match="ssim_weight"):
            LossConfig(ssim_weight=bad)


def test_cli_ssim_weight_reaches_the_config_and_a_recipe_round_trip(tmp_path):
    from denoiser.cli import build_parser
    from denoiser.cli.train import _train_config
    from denoiser.training import TrainConfig

    argv = ["train", "--data", "d", "--out", str(tmp_path / "m.pt"), "--ssim-weight", "0.1"]
    cfg = _train_config(build_parser().parse_args(argv))
    assert cfg.loss.ssim_weight == 0.1 and cfg.loss.reconstruction == "l1"
    assert TrainConfig.from_dict(cfg.to_dict()).loss.ssim_weight == 0.1  # as a checkpoint stores it
    assert _train_config(build_parser().parse_args(argv[:-2])).loss.ssim_weight == 0.0
