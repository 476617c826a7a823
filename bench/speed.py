"""Speed and memory benchmark (issue 7), following ../shared/BENCHMARK.md's speed protocol.

Times, in one run, our bundled colour models and the anchors runnable here on noisy colour images of
1, 12 and 24 megapixels made by tiling Kodak24: whole-image wall time of the engine call (load and
save excluded), median of --runs runs after a warm-up, megapixels per second, useful GFLOP/s (the
network's multiply-adds × 2 per image pixel, margins not counted) against this machine's 3×3
convolution throughput measured in the same run, and peak resident memory. Every case runs in its
own child process so its peak RSS is its own. Anchors: a DnCNN-sized and an FFDNet-sized network in
PyTorch (random weights, batch norm folded away: the workload, not the quality), OpenCV non-local
means (colour) and BM3D (`bm3d` package, one run, 1 MP). Ratios are against the FFDNet-sized network
at the same size. Also: network backends on one CPU tile (eager, torch.compile, ONNX Runtime, bf16),
the CPU tile size, and a 50-megapixel 8-bit photo for the memory bound.

    python bench/speed.py --out docs/bench                  # full run, CPU (about 15 min)
    python bench/speed.py --device cuda --out docs/bench    # on a GPU machine
    python bench/speed.py --quick --out /tmp/speed          # smoke run (small images, one run each)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

KODAK = REPO.parent / "shared" / "data" / "test" / "Kodak24"
SIGMA = 25.0
SIZES = {0.05: (256, 192), 0.25: (576, 432), 1: (1152, 864), 12: (4000, 3000), 24: (6000, 4000), 50: (8660, 5776)}
DNCNN = {"arch": "dncnn", "config": {"depth": 17, "features": 64, "batch_norm": False}, "margin": 32}
FFDNET = {"arch": "ffdnet", "config": {"depth": 12, "features": 96, "batch_norm": False}, "margin": 32}
NLM_H = 15  # OpenCV filter strength for σ 25 (h and hColor)


# ---------------------------------------------------------------- child side (one case per process)


def make_image(megapixels: float, seed: int = 0, folder: str | Path = KODAK) -> np.ndarray:
    """A noisy 8-bit colour photo of the given size: Kodak24 images tiled in a grid, σ 25 noise, clipped."""
    from PIL import Image

    w, h = SIZES[megapixels]
    cells = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(Path(folder).glob("*.png"))]
    if not cells:
        raise FileNotFoundError(f"no PNG images to tile in {folder}")
    out = np.empty((h, w, 3), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    i = 0
    for y in range(0, h, 500):
        for x in range(0, w, 500):
            cell = cells[i % len(cells)]
            i += 1
            ch, cw = min(500, h - y, cell.shape[0]), min(500, w - x, cell.shape[1])
            noisy = cell[:ch, :cw].astype(np.float32) + rng.standard_normal((ch, cw, 3), dtype=np.float32) * SIGMA
            out[y : y + ch, x : x + cw] = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    return out


def case_image(case: dict[str, Any], megapixels: float) -> np.ndarray:
    """`make_image` from the case's image folder (--images), Kodak24 by default."""
    return make_image(megapixels, folder=case.get("images", KODAK))


def conv_throughput(device: str, runs: int) -> dict[str, float]:
    """GFLOP/s of one 3×3 convolution, 64→64 channels on 512×512, fp32 channels-last (BENCHMARK.md's probe)."""
    import torch

    dev = torch.device(device)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(dev).to(memory_format=torch.channels_last).eval()
    x = torch.rand(1, 64, 512, 512, device=dev).contiguous(memory_format=torch.channels_last)
    flops = 2 * 64 * 64 * 9 * 512 * 512
    times = _timed(lambda: conv(x), runs + 2, device)
    return {"gflops": flops / statistics.median(times) / 1e9}


def _timed(fn: Any, runs: int, device: str = "cpu") -> list[float]:
    """Wall times of runs calls after one warm-up call (CUDA synchronised)."""
    import torch

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.inference_mode():
        fn()
        sync()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - t)
    return times


def _net(case: dict[str, Any]) -> tuple[Any, float]:
    """(network or loaded model, multiply-adds per pixel) for a case."""
    import torch

    from denoiser.archs import build_arch
    from denoiser.checkpoint import load_model

    if "model" in case:
        loaded = load_model(case["model"])
        return loaded, loaded.net.macs_per_pixel()
    torch.manual_seed(0)
    net = build_arch(case["arch"], in_channels=3, **case["config"]).eval()
    return net, net.macs_per_pixel()


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """Run one timed case in this process and return its figures (peak RSS is measured by the parent)."""
    import torch

    if case.get("threads"):
        torch.set_num_threads(case["threads"])
    kind, device, runs = case["kind"], case.get("device", "cpu"), case.get("runs", 3)
    if kind == "conv":
        return conv_throughput(device, runs)
    if kind == "backend":
        return backend_case(case)
    if kind == "precision_psnr":
        return precision_psnr(case)
    if kind == "scaleout_batch":
        return scaleout_batch(case)
    if kind == "scaleout_ddp":
        return scaleout_ddp(case)
    if kind == "write_png":
        from PIL import Image

        Image.fromarray(case_image(case, case["mp"])).save(case["path"], compress_level=1)
        return {}
    if kind == "cli":
        from denoiser.cli import main as cli_main

        t = time.perf_counter()
        code = cli_main(["denoise", case["path"], "-o", case["out"], "--model", case["model"], "-q"])
        return {"times": [time.perf_counter() - t], "exit": code}
    image = case_image(case, case["mp"])
    mp = image.shape[0] * image.shape[1] / 1e6
    if kind == "nlm":
        import cv2

        times = _timed(lambda: cv2.fastNlMeansDenoisingColored(image, None, NLM_H, NLM_H, 7, 21), runs)
        return {"times": times, "mp": mp}
    if kind == "bm3d":
        import bm3d

        x = image.astype(np.float32) / 255
        t = time.perf_counter()
        bm3d.bm3d_rgb(x, SIGMA / 255)
        return {"times": [time.perf_counter() - t], "mp": mp}
    from denoiser.inference import denoise_array
    from denoiser.progress import drain

    net, macs = _net(case)
    kwargs = {"sigma": SIGMA, "device": device, "precision": case.get("precision", "auto")}
    kwargs.update({k: case[k] for k in ("tile", "margin") if case.get(k)})

    def prepared(img: np.ndarray) -> np.ndarray:
        return img if case.get("input") == "uint8" else img.astype(np.float32) / np.float32(255)

    def call(img: np.ndarray) -> Any:
        return drain(denoise_array(img, net, **kwargs))

    src = prepared(image)
    warm = prepared(case_image(case, case["warmup_mp"])) if case.get("warmup_mp", case["mp"]) != case["mp"] else src
    with torch.inference_mode():
        call(warm)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            res = call(src)
            times.append(time.perf_counter() - t)
    return {"times": times, "mp": mp, "macs_per_pixel": macs, "tiles": res.tiles, "device": res.device}


def backend_case(case: dict[str, Any]) -> dict[str, Any]:
    """Seconds per megapixel of one network forward pass on one (tile × tile) input, per backend."""
    import torch

    net, macs = _net(case)
    net = getattr(net, "net", net).float().eval()
    size, runs, backend = case["tile"], case.get("runs", 3), case["backend"]
    x = torch.rand(1, 3, size, size)
    s = torch.tensor([SIGMA / 255])
    info: dict[str, Any] = {"macs_per_pixel": macs, "mp": size * size / 1e6}
    if backend in ("eager", "bf16", "compile"):
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if backend == "eager" or backend == "eager-contiguous":
        info["times"] = _timed(lambda: net(x, s), runs)
    elif backend == "bf16":
        def fwd() -> Any:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return net(x, s)

        info["times"] = _timed(fwd, runs)
    elif backend == "compile":
        t = time.perf_counter()
        compiled = torch.compile(net)
        with torch.inference_mode():
            compiled(x, s)
        info["setup_s"] = time.perf_counter() - t
        info["times"] = _timed(lambda: compiled(x, s), runs)
    elif backend == "onnxruntime":
        import tempfile

        import onnxruntime as ort

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "net.onnx"
            t = time.perf_counter()
            torch.onnx.export(net, (x, s), str(path), input_names=["x", "sigma"], output_names=["y"], dynamo=False)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = torch.get_num_threads()
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            info["setup_s"] = time.perf_counter() - t
            feed = {"x": x.numpy(), "sigma": s.numpy()}
            info["times"] = _timed(lambda: sess.run(None, feed), runs)
    else:
        raise ValueError(f"unknown backend {backend}")
    return info


def precision_psnr(case: dict[str, Any]) -> dict[str, Any]:
    """Mean PSNR of fp32 and reduced-precision inference (case "low": bf16 by default, fp16 on CUDA) on
    every 6th Kodak24 image (BENCHMARK.md noise, σ given), on the case's device.

    bf16 is emulated (and slow) on a CPU without native support, but its rounding is the same, so the
    quality check holds for the CPUs where the engine would choose it.
    """
    from denoiser.evaluate import load_clean, noisy_version, to_8bit
    from denoiser.inference import denoise
    from denoiser.metrics import psnr

    net, _macs = _net(case)
    files = sorted(Path(case.get("images", KODAK)).glob("*.png"))
    low = case.get("low", "bf16")
    out: dict[str, Any] = {}
    for sigma in case["sigmas"]:
        scores: dict[str, list[float]] = {"fp32": [], low: []}
        for i in range(0, len(files), case.get("every", 6)):
            clean = load_clean(files[i], gray=False)
            noisy = (noisy_version(clean, sigma, i) / 255).astype(np.float32)
            for precision, got in scores.items():
                res = denoise(noisy, net, sigma=sigma, precision=precision, device=case.get("device", "cpu"))
                got.append(psnr(clean, to_8bit(res.image * 255)))
        out[str(sigma)] = {k: float(np.mean(v)) for k, v in scores.items()}
    return {"psnr": out}


# ---------------------------------------------------------------- parent side



def scaleout_batch(case: dict[str, Any]) -> dict[str, Any]:
    """Files per second of `denoiser denoise` on a folder of noisy photos: one process (the case's threads)
    against a local Ray cluster of `workers` one-thread workers on this machine. The Ray time counts the
    workers' start and model load, not the cluster's start (reported apart)."""
    import ray
    from PIL import Image

    from denoiser.batch import BatchOptions, run_batch
    from denoiser.cluster import RayTarget, run_batch_ray
    from denoiser.progress import drain

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        for i in range(case["files"]):
            Image.fromarray(make_image(case["mp"], seed=i, folder=case.get("images", KODAK))).save(
                src / f"photo{i:03d}.png", compress_level=1)
        figures: dict[str, Any] = {"files": case["files"]}
        t = time.perf_counter()
        local = drain(run_batch([src], BatchOptions(output=Path(tmp) / "local", model=case["model"], sigma=SIGMA)))
        figures["local_s"] = time.perf_counter() - t
        t = time.perf_counter()
        ray.init(num_cpus=case["workers"], include_dashboard=False, log_to_driver=False)
        figures["cluster_start_s"] = time.perf_counter() - t
        try:
            t = time.perf_counter()
            remote = drain(run_batch_ray([src], BatchOptions(output=Path(tmp) / "ray", model=case["model"], sigma=SIGMA),
                                         RayTarget(workers=case["workers"])))
            figures["ray_s"] = time.perf_counter() - t
        finally:
            ray.shutdown()
    for name, summary in (("local", local), ("ray", remote)):
        if summary.count("done") != case["files"]:
            raise RuntimeError(f"{name} run: {summary.text()}")
    return figures


def scaleout_ddp(case: dict[str, Any]) -> dict[str, Any]:
    """Training throughput (patches per second) of `denoiser train` in one process with the case's threads
    against `torchrun` with `procs` processes of one thread each, on the same global batch. Each setting
    runs a short and a long run; the difference removes start-up and the first steps' warm-up."""
    data = Path(case.get("data", REPO.parent / "shared" / "data" / "train" / "color"))
    steps = case["steps"]
    figures: dict[str, Any] = {"batch": case["batch"], "procs": case["procs"]}

    def train(launcher: list[str], threads: int, n: int, out: Path) -> float:
        cmd = [*launcher, "-m", "denoiser", "train", "--data", str(data), "--out", str(out), "--steps", str(n),
               "--batch", str(case["batch"]), "--patch", str(case["patch"]), "--threads", str(threads),
               "--val-every", "100000", "--checkpoint-every", "100000", "--device", "cpu", "--overwrite"]
        if case.get("arch_config"):
            cmd += ["--arch-config", json.dumps(case["arch_config"])]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "CUDA_VISIBLE_DEVICES": ""}
        for attempt in (1, 2):  # a second try when a start fails (a torchrun rendezvous on a loaded machine)
            t = time.perf_counter()
            proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
            if proc.returncode == 0:
                return time.perf_counter() - t
            # torchrun ends with a banner: name the child's own error lines too
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip() and not set(ln.strip()) <= set("=-")]
            error = " | ".join([ln.strip() for ln in lines if "Error" in ln or "error:" in ln][-3:] or lines[-1:]
                               or ["train failed"])
            print(f"train run {attempt} failed: {error}", file=sys.stderr, flush=True)
        raise RuntimeError(error)

    with tempfile.TemporaryDirectory() as tmp:
        one = [sys.executable]
        many = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(case["procs"])]
        for name, launcher, threads in (("one", one, case["threads"]), ("ddp", many, 1)):
            short = train(launcher, threads, steps[0], Path(tmp) / f"{name}-a.pt")
            long = train(launcher, threads, steps[1], Path(tmp) / f"{name}-b.pt")
            figures[f"{name}_patches_per_s"] = case["batch"] * (steps[1] - steps[0]) / max(long - short, 1e-6)
    return figures


def spawn_measured(case: dict[str, Any]) -> dict[str, Any]:
    """Run a case in a child process; add its peak RSS (MB) from the kernel's accounting of that child."""
    proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(case)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    out_chunks, err_chunks = [], []

    def pump(stream: Any, into: list[str]) -> None:
        into.append(stream.read())

    readers = [threading.Thread(target=pump, args=(proc.stdout, out_chunks)),
               threading.Thread(target=pump, args=(proc.stderr, err_chunks))]
    for r in readers:
        r.start()
    t = time.time()
    _pid, status, usage = os.wait4(proc.pid, 0)
    for r in readers:
        r.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out, err = "".join(out_chunks), "".join(err_chunks)
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = [ln for ln in err.strip().splitlines() if ln.strip()][-1:] or ["no output"]
        return {"case": case, "error": tail[0]}
    res = json.loads(lines[-1])
    res.update(case=case, rss_mb=usage.ru_maxrss / 1024, wall_s=time.time() - t)
    return res


def label(case: dict[str, Any]) -> str:
    """Row name of a case."""
    kind = case["kind"]
    if kind == "nlm":
        return "OpenCV NLM colour"
    if kind == "bm3d":
        return "CBM3D (`bm3d`)"
    if "model" in case:
        return f"ours: `{case['model']}`" + (f" ({case['precision']})" if case.get("precision", "auto") != "auto" else "")
    return {"dncnn": "DnCNN-sized net (17×64)", "ffdnet": "FFDNet-sized net (12×96)"}[case["arch"]]


def summarise(res: dict[str, Any], peak: float) -> dict[str, Any]:
    """Median seconds, MP/s and useful GFLOP/s (with its share of the conv probe) of a timed case."""
    if "error" in res:
        return res
    med = statistics.median(res["times"])
    res["median_s"] = med
    res["mp_per_s"] = res["mp"] / med
    if res.get("macs_per_pixel"):
        res["gflops"] = 2 * res["macs_per_pixel"] * res["mp"] * 1e6 / med / 1e9
        res["peak_share"] = res["gflops"] / peak if peak else None
    return res


def fmt(v: Any, spec: str = ".2f") -> str:
    return "–" if v is None else format(v, spec)


def _precision_line(b: dict[str, Any], low: str, tiled: str) -> str:
    """The paragraph of a precision check: fp32 → `low` PSNR per σ, or why the check failed."""
    if "error" in b:
        return f"{low} check failed: {b['error']}"
    cells = ", ".join(f"σ {k}: {v['fp32']:.3f} → {v[low]:.3f} dB ({v[low] - v['fp32']:+.3f})" for k, v in b["psnr"].items())
    if low == "fp16":
        return f"**fp16 on the GPU** (the engine's CUDA default; {tiled}, fp32 → fp16): {cells}."
    return (f"**bf16 autocast** (Kodak24, every 6th image, fp32 → bf16): {cells}. The engine uses bf16 on the CPU "
            "only where it is native (AVX-512 BF16 or AMX) and the loss is ≤ 0.02 dB; "
            f"this CPU {'has' if b.get('native') else 'does not have'} it.")


def _scaleout_line(so: dict[str, Any]) -> str:
    """The scale-out paragraph: Ray batch files/s and DDP patches/s against one process, or why they failed."""
    parts = []
    b, d = so.get("batch", {}), so.get("ddp", {})
    if "error" in b:
        parts.append(f"Ray batch case failed: {b['error']}")
    elif b:
        c = b["case"]
        one, ray_fps = b["files"] / b["local_s"], b["files"] / b["ray_s"]
        parts.append(f"**Scale-out, batch**: {b['files']} noisy {c['mp']}-MP photos with `{c['model']}`: one process "
                     f"({c['threads']} threads) {one:.3f} files/s, a local Ray cluster of {c['workers']} one-thread "
                     f"workers {ray_fps:.3f} files/s (**×{ray_fps / one:.2f}**; workers' start and model load "
                     f"included, the cluster's own start of {b['cluster_start_s']:.1f} s not).")
    if "error" in d:
        parts.append(f"DDP case failed: {d['error']}")
    elif d:
        c = d["case"]
        parts.append(f"**Scale-out, training**: batch {c['batch']} of {c['patch']}² patches, one process "
                     f"({c['threads']} threads) {d['one_patches_per_s']:.1f} patches/s, `torchrun` with "
                     f"{c['procs']} one-thread processes (gloo) {d['ddp_patches_per_s']:.1f} patches/s "
                     f"(**×{d['ddp_patches_per_s'] / d['one_patches_per_s']:.2f}**; steady state, start-up removed).")
    return " ".join(parts)


def markdown(report: dict[str, Any]) -> str:
    """The tables the README includes."""
    env, peak = report["environment"], report["conv_gflops"]
    imgs = report.get("images", {"count": 24})
    tiled = "Kodak24" if imgs["count"] == 24 else f"{imgs['count']} Kodak24 images"
    gpu = env["device"].startswith("cuda")
    lines = [
        f"Measured by `python bench/speed.py` on {env['device_name']} ({env['threads']} threads, torch "
        f"{env['torch']}), {env['date']}. One 3×3 convolution (64→64, 512², fp32 channels-last) ran at "
        f"**{peak:.0f} GFLOP/s** in this run; GFLOP/s below count the network's useful work per image pixel. "
        f"Noisy σ 25 colour images made by tiling {tiled}; engine call only (load and save excluded); "
        f"median of {report['runs']} runs after a warm-up; peak RSS is the whole process. "
        f"Anchors: networks with random weights (same work as the trained ones), ratio = FFDNet-sized time / time at the same size."
        + (" On the GPU the networks run in the engine's fp16 while the probe is fp32, so the share column "
           "understates them; peak RSS is host memory." if gpu else ""),
        "",
        "| method | MP | seconds | MP/s | s per MP | GFLOP/s | share of conv peak | peak RSS | × FFDNet-sized |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    ffd = {r["case"]["mp"]: r.get("median_s") for r in report["cases"] if r["case"].get("arch") == "ffdnet"}
    for r in report["cases"]:
        if "error" in r:
            lines.append(f"| {label(r['case'])} | {r['case']['mp']} | failed: {r['error']} | | | | | | |")
            continue
        ratio = ffd.get(r["case"]["mp"])
        lines.append(
            f"| {label(r['case'])} | {r['mp']:.2g} | {r['median_s']:.{3 if gpu else 2}f} | {r['mp_per_s']:.3f} | "
            f"{r['median_s'] / r['mp']:.{4 if gpu else 2}f} | {fmt(r.get('gflops'), '.0f')} | "
            f"{fmt(r.get('peak_share') and 100 * r['peak_share'], '.0f')}{'%' if r.get('peak_share') else ''} | "
            f"{r['rss_mb']:.0f} MB | {fmt(ratio and ratio / r['median_s'])} |"
        )
    if report.get("memory"):
        m = report["memory"]
        if "error" in m:
            lines += ["", f"Memory case failed: {m['error']}"]
        else:
            lines += ["", f"**Memory**: a {m['mp']:.1f}-megapixel 8-bit colour photo denoised with `{m['case']['model']}` "
                      f"in {m['median_s']:.1f} s at a peak of **{m['rss_mb'] / 1024:.2f} GB** resident "
                      f"({m['tiles']} tiles; the uint8 input, the float32 output and one tile's activations)."]
        c = report.get("memory_cli")
        if c and "error" not in c:
            lines[-1] += (f" The whole command, `denoiser denoise photo50.png` (PNG decode, denoise, PNG encode), "
                          f"peaked at **{c['rss_mb'] / 1024:.2f} GB** in {c['median_s']:.0f} s.")
    if report.get("backends"):
        lines += ["", f"Network backends on one {report['backend_tile']}×{report['backend_tile']} tile "
                  "(the CPU tile size), forward pass only:", "",
                  "| backend | s per MP | GFLOP/s | × eager | setup s |", "|---|---|---|---|---|"]
        eager = next((b.get("median_s") for b in report["backends"] if b["case"]["backend"] == "eager"), None)
        for b in report["backends"]:
            if "error" in b:
                lines.append(f"| {b['case']['backend']} | failed: {b['error']} | | | |")
                continue
            lines.append(f"| {b['case']['backend']} | {b['median_s'] / b['mp']:.3f} | {b['gflops']:.0f} | "
                         f"{fmt(eager and eager / b['median_s'])} | {fmt(b.get('setup_s'), '.1f')} |")
    if report.get("scaleout"):
        lines += ["", _scaleout_line(report["scaleout"])]
    for low in ("fp16", "bf16"):
        if report.get(low):
            lines += ["", _precision_line(report[low], low, tiled)]
    if report.get("tiles"):
        lines += ["", "CPU tile edge (whole 1 MP engine call, 32-px context margin per side):", "",
                  "| tile | tiles | s per MP |", "|---|---|---|"]
        for t in report["tiles"]:
            if "error" not in t:
                lines.append(f"| {t['case']['tile']} | {t['tiles']} | {t['median_s'] / t['mp']:.3f} |")
    return "\n".join(lines) + "\n"


def environment(device: str) -> dict[str, Any]:
    import torch

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), name)
    except OSError:
        pass
    if device.startswith("cuda") and torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
    return {"device": device, "device_name": f"{name}" + ("" if device.startswith("cuda") else f", {os.cpu_count()} cores"),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "date": time.strftime("%Y-%m-%d")}


def scaleout(base: dict[str, Any], args: argparse.Namespace, smallest: float, log: Any) -> dict[str, Any]:
    """The Ray batch case (1-MP photos; the smallest size in a quick run) and the torchrun training case."""
    model = args.models.split(",")[0]
    mp = smallest if args.quick else 1
    batch = spawn_measured({**base, "kind": "scaleout_batch", "model": model, "mp": mp,
                            "files": 2 if args.quick else args.scaleout_files, "workers": args.scaleout_workers})
    log("scale-out, Ray batch: " + (batch.get("error") or f"{batch['local_s']:.1f} s local, {batch['ray_s']:.1f} s Ray"))
    tiny = {"channels": [8, 16], "blocks": 1, "bottleneck_blocks": 1}
    ddp = spawn_measured({**base, "kind": "scaleout_ddp", "procs": args.scaleout_workers,
                          "batch": 2 * args.scaleout_workers if args.quick else 16, "patch": 32 if args.quick else 96,
                          "steps": [2, 4] if args.quick else [5, 25], **({"arch_config": tiny} if args.quick else {})})
    log("scale-out, DDP: " + (ddp.get("error") or f"{ddp['one_patches_per_s']:.1f} → {ddp['ddp_patches_per_s']:.1f} patches/s"))
    return {"batch": batch, "ddp": ddp}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "bench")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--models", default="photo", help="bundled colour models to time, comma-separated")
    ap.add_argument("--sizes", default="1,12,24", help="megapixels, from " + ",".join(map(str, SIZES)))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip", default="",
                    help="comma-separated parts to leave out: bm3d,nlm,dncnn,backends,compile,tiles,bf16,memory,scaleout")
    ap.add_argument("--only-scaleout", action="store_true",
                    help="run only the scale-out part and update it in --out's report (the other figures kept)")
    ap.add_argument("--scaleout-files", type=int, default=8, help="photos in the Ray batch case (default 8)")
    ap.add_argument("--scaleout-workers", type=int, default=2, help="Ray workers and torchrun processes (default 2)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 0.05 MP, one run, no BM3D/compile/memory")
    ap.add_argument("--images", type=Path, default=KODAK,
                    help="folder of PNGs tiled into the test photos (default: Kodak24 in ../shared)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_case(json.loads(args.child))), flush=True)
        return
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    sizes = [0.05] if args.quick else [float(s) if "." in s else int(s) for s in args.sizes.split(",")]
    runs = 1 if args.quick else args.runs
    skip = set(filter(None, args.skip.split(",")))
    if args.quick:
        skip |= {"bm3d", "memory", "compile"}
    if args.device == "cuda":
        skip |= {"bm3d", "nlm", "backends", "tiles"}
    base = {"device": args.device, "threads": threads, "runs": runs, "images": str(args.images)}
    smallest = sizes[0]

    def log(msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    if args.only_scaleout:
        suffix = "" if args.device == "cpu" else f"_{args.device}"
        path = args.out / f"speed{suffix}.json"
        if not path.exists():
            raise SystemExit(f"--only-scaleout updates {path}; run the whole benchmark first")
        report = json.loads(path.read_text())
        report["scaleout"] = scaleout(base, args, smallest, log)
        path.write_text(json.dumps(report, indent=1))
        (args.out / f"speed{suffix}.md").write_text(markdown(report))
        print(_scaleout_line(report["scaleout"]))
        return
    conv = spawn_measured({**base, "kind": "conv"})
    peak = conv.get("gflops", 0.0)
    log(f"3x3 conv probe: {peak:.0f} GFLOP/s")
    cases: list[dict[str, Any]] = []
    for mp in sizes:
        for model in args.models.split(","):
            cases.append({**base, "kind": "net", "model": model, "mp": mp, "warmup_mp": smallest})
        cases.append({**base, "kind": "net", **FFDNET, "mp": mp, "warmup_mp": smallest})
        if mp == smallest:
            if "dncnn" not in skip:
                cases.append({**base, "kind": "net", **DNCNN, "mp": mp})
            if "nlm" not in skip:
                cases.append({**base, "kind": "nlm", "mp": mp})
            if "bm3d" not in skip:
                cases.append({**base, "kind": "bm3d", "mp": mp, "runs": 1})
    report: dict[str, Any] = {"environment": environment(args.device), "conv_gflops": peak, "runs": runs, "cases": [],
                              "images": {"folder": str(args.images), "count": len(list(args.images.glob("*.png")))}}
    for case in cases:
        res = summarise(spawn_measured(case), peak)
        report["cases"].append(res)
        log(f"{label(case)} {case['mp']} MP: " + (res.get("error") or f"{res['median_s']:.2f} s, {res['rss_mb']:.0f} MB"))
    model = args.models.split(",")[0]
    if "backends" not in skip:
        tile = 256 if args.quick else 768
        report["backend_tile"] = tile
        report["backends"] = []
        for backend in ["eager", "eager-contiguous", "compile", "onnxruntime", "bf16"]:
            if backend in skip or (args.quick and backend in ("compile", "bf16")):
                continue
            res = summarise(spawn_measured({**base, "kind": "backend", "model": model, "backend": backend,
                                            "tile": tile}), peak)
            report["backends"].append(res)
            log(f"backend {backend}: " + (res.get("error") or f"{res['median_s'] / res['mp']:.3f} s/MP"))
    if "tiles" not in skip:
        report["tiles"] = []
        for tile in ([256] if args.quick else [384, 512, 768, 1024]):
            res = summarise(spawn_measured({**base, "kind": "net", "model": model, "mp": smallest, "tile": tile}), peak)
            report["tiles"].append(res)
            log(f"tile {tile}: " + (res.get("error") or f"{res['median_s'] / res['mp']:.3f} s/MP"))
    if "bf16" not in skip and args.device == "cuda":
        res = spawn_measured({**base, "kind": "precision_psnr", "model": model, "sigmas": [25, 50], "low": "fp16",
                              "every": 24 if args.quick else 1})
        report["fp16"] = res
        log("fp16: " + (res.get("error") or json.dumps(res["psnr"])))
    if "bf16" not in skip and args.device == "cpu":
        from denoiser.device import cpu_has_native_bf16

        res = spawn_measured({**base, "kind": "precision_psnr", "model": "gaussian-color", "sigmas": [25, 50],
                              "every": 24 if args.quick else 6})
        res["native"] = cpu_has_native_bf16()
        report["bf16"] = res
        log("bf16: " + (res.get("error") or json.dumps(res["psnr"])))
    if "memory" not in skip:
        res = summarise(spawn_measured({**base, "kind": "net", "model": model, "mp": 50, "input": "uint8",
                                        "warmup_mp": 1, "runs": 1}), peak)
        report["memory"] = res
        log("memory: " + (res.get("error") or f"{res['rss_mb']:.0f} MB in {res['median_s']:.1f} s"))
        with tempfile.TemporaryDirectory() as tmp:
            png = str(Path(tmp) / "photo50.png")
            made = spawn_measured({**base, "kind": "write_png", "mp": 50, "path": png})
            cli = made if "error" in made else spawn_measured(
                {**base, "kind": "cli", "model": model, "path": png, "out": str(Path(tmp) / "out")})
            if "error" not in cli:
                cli["median_s"] = cli["times"][0]
            report["memory_cli"] = cli
            log("memory, CLI: " + (cli.get("error") or f"{cli['rss_mb']:.0f} MB in {cli['median_s']:.1f} s"))
    if "scaleout" not in skip and args.device == "cpu":
        report["scaleout"] = scaleout(base, args, smallest, log)
    args.out.mkdir(parents=True, exist_ok=True)
    suffix = "" if args.device == "cpu" else f"_{args.device}"
    (args.out / f"speed{suffix}.json").write_text(json.dumps(report, indent=1))
    (args.out / f"speed{suffix}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
