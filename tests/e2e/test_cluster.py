"""`denoiser denoise --ray`: the same outputs, summary and exit code as a local run, on a 2-CPU local Ray
cluster; a worker that dies mid-file is replaced and its file retried once; a cancel keeps what finished."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from denoiser.batch import BatchOptions
from denoiser.cli import main
from denoiser.cluster import FileWorker, RayTarget, run_batch_ray
from denoiser.progress import drain
from tests.helpers import make_tiny_model, shared_data

pytestmark = pytest.mark.slow  # the slow tier: `pytest -m slow` (scripts/run-tests.sh runs both)


ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    """One local Ray cluster of 2 CPUs for the module (starting one takes seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def folder(tmp_path: Path) -> tuple[Path, Path]:
    """Real photo crops from ../shared/data, a corrupt file, a 1×1 image and a tiny model."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    kodak = shared_data("test", "Kodak24")
    for i, name in enumerate(["kodim01.png", "kodim05.png", "kodim13.png"]):
        crop = PILImage.open(kodak / name).convert("RGB").crop((0, 0, 96 + 16 * i, 64))
        crop.save(src / ("sub" if i == 2 else ".") / f"k{i}.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    PILImage.new("RGB", (1, 1), (200, 10, 10)).save(src / "dot.png")
    return src, make_tiny_model(tmp_path / "tiny.pt")


def _outputs(folder: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(folder)): np.asarray(PILImage.open(p)) for p in sorted(folder.rglob("*.png"))}


def test_ray_run_matches_the_local_run(cluster, folder, tmp_path, capsys):
    src, model = folder
    common = [str(src), "--recursive", "--model", str(model), "--sigma", "20", "--grain", "0.5", "-q"]
    (tmp_path / "ray").mkdir()
    PILImage.new("RGB", (8, 8)).save(tmp_path / "ray" / "k0.png")  # existing output: skipped by both runs
    (tmp_path / "local").mkdir()
    PILImage.new("RGB", (8, 8)).save(tmp_path / "local" / "k0.png")

    local_rc = main(["denoise", *common, "-o", str(tmp_path / "local")])
    local = capsys.readouterr()
    ray_rc = main(["denoise", *common, "-o", str(tmp_path / "ray"), "--ray", "local", "--ray-workers", "2"])
    remote = capsys.readouterr()

    assert local_rc == ray_rc == 1  # the corrupt file fails both
    assert remote.err.strip().splitlines()[-2:] == local.err.strip().splitlines()[-2:]
    assert "3 done, 1 skipped, 1 failed" in remote.err and "broken.png" in remote.err
    local_out, ray_out = _outputs(tmp_path / "local"), _outputs(tmp_path / "ray")
    assert sorted(ray_out) == sorted(local_out) == ["dot.png", "k0.png", "k1.png", "sub/k2.png"]
    for name in local_out:
        np.testing.assert_array_equal(ray_out[name], local_out[name], err_msg=name)
    assert ray_out["k1.png"].shape == (64, 112, 3)


class DiesOnce(FileWorker):
    """A worker process that exits while denoising a file whose name starts with `die`: the first time
    only for `die_once*`, always for `die_always*` (a marker beside the output folder remembers)."""

    def run(self, src, dst, problem, index):
        marker = self.opts.output.parent / f"{src.name}.died"
        if src.name.startswith("die_always") or (src.name.startswith("die_once") and not marker.exists()):
            marker.touch()
            os._exit(1)
        return super().run(src, dst, problem, index)


def test_a_dead_worker_is_replaced_and_its_file_retried_once(cluster, folder, tmp_path):
    src, model = folder
    (src / "broken.png").unlink()
    (src / "k0.png").rename(src / "die_once.png")
    (src / "k1.png").rename(src / "die_always.png")
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    opts = BatchOptions(output=tmp_path / "out", model=str(model), sigma=10.0)
    summary = drain(run_batch_ray([src], opts, RayTarget(workers=2), worker_class=DiesOnce))
    status = {r.input.name: (r.status, r.reason) for r in summary.results}
    assert status["die_once.png"] == ("done", "")
    assert status["die_always.png"][0] == "failed" and "died twice" in status["die_always.png"][1]
    assert status["dot.png"] == ("done", "")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["die_once.png", "dot.png"]  # nothing partial


def test_cancel_keeps_what_finished_and_leaves_no_partial_file(cluster, folder, tmp_path):
    src, model = folder
    (src / "broken.png").unlink()
    opts = BatchOptions(output=tmp_path / "out", model=str(model), recursive=True)
    gen = run_batch_ray([src], opts, RayTarget(workers=1))
    first = next(gen)
    gen.close()
    written = sorted(p for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert first.data["result"].status == "done" and first.data["result"].output in written
    for p in written:  # every file there is a whole image, no temporary left
        assert PILImage.open(p).size[0] >= 1 and not p.name.startswith(".")
    assert len(written) < 4
