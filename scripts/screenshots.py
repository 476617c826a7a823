"""Screenshots of the real window in each compare mode, with the bundled models.

Run under Xvfb at each size (apt-get install -y xvfb):
    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshots.py 1280 800 docs/screenshots
    xvfb-run -s "-screen 0 1920x1080x24" .venv/bin/python scripts/screenshots.py 1920 1080 docs/screenshots
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    width, height, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    tmp = Path(tempfile.mkdtemp())
    os.environ["DENOISER_MODELS_DIR"] = str(tmp / "models")  # no user models: the bundled ones only
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp / "settings"))
    app = QApplication([])
    app.setOrganizationName("DenoiserStudio")
    app.setApplicationName("Denoiser Studio")
    from gui import main_thread_gc
    from gui.main_window import MainWindow

    main_thread_gc.install(app)

    win = MainWindow()
    win.setGeometry(0, 0, width, height)
    win.show()

    def pump(cond: Callable[[], bool] = lambda: True, limit: float = 300) -> None:
        end = time.time() + limit
        while time.time() < end:
            app.processEvents()
            if cond():
                break
            time.sleep(0.02)
        app.processEvents()

    def idle() -> bool:
        return not win.tasks.busy and win.metrics_calc.idle and win.sigma_calc.idle and win.level_calc.idle

    def shot(name: str) -> None:
        win.compare.fit()
        pump(limit=0.3)
        path = out / f"{name}_{width}x{height}.png"
        win.grab().save(str(path))
        img = Image.open(path).convert("RGB")
        img.save(path, optimize=True)
        # Over the size budget: fewer colours, dithered first so smooth skies do not turn into bands.
        tries = [(n, dither) for dither in (Image.Dither.FLOYDSTEINBERG, Image.Dither.NONE) for n in (256, 128, 64, 32)]
        for colours, dither in tries:
            if path.stat().st_size <= 990_000:
                break
            palette = img.quantize(colors=colours, method=Image.Quantize.FASTOCTREE)
            img.quantize(palette=palette, dither=dither).save(path, optimize=True)  # dithering needs a palette
        print(path, path.stat().st_size)

    pump(limit=0.5)
    win.open_sample()
    pump(lambda: win.doc is not None and idle())
    win.noise_panel.set_noise_name("gaussian")
    win.noise_panel.set_param("sigma", 25)
    win.noise_panel.seed_box.setValue(7)
    win.add_noise()
    pump(lambda: win.doc.noisy is not None and idle())
    combo = win.denoise_panel.model_combo
    combo.setCurrentIndex(combo.findData("gaussian-color"))  # the model for synthetic Gaussian noise
    win.denoise()
    pump(lambda: win.doc.raw_result is not None and idle())
    pump(idle, 60)
    win.compare.set_mode("side_by_side")
    shot("side_by_side")
    win.compare.set_mode("split")
    win.compare.split.set_divider(0.5)
    shot("split")
    win.compare.set_mode("ab")
    win.compare.toggle_ab()
    shot("ab")
    win.compare.set_mode("side_by_side")
    win.acts.residual.setChecked(True)
    shot("residual")
    win.acts.residual.setChecked(False)
    camera_raw(win, pump, idle, shot, tmp)
    win.close()


def camera_raw(win, pump: Callable, idle: Callable, shot: Callable, tmp: Path) -> None:
    """The sample photo unprocessed to a noisy Bayer mosaic and saved as a DNG, opened, its develop denoised
    by `photo` (the app's default for a RAW; the mosaic choice shown under the model), in the split view."""
    import numpy as np

    from denoiser.imageio import HAVE_RAW, load_image
    from denoiser.raw import mosaic_from_image, write_dng
    from denoiser.resources import sample_image_path

    if not HAVE_RAW:
        return
    rgb = load_image(sample_image_path()).data[..., :3]
    path = write_dng(mosaic_from_image(np.clip(rgb, 0, 1), shot=0.006, read=3e-4, seed=1), tmp / "sample_ISO6400.dng")
    win.open_path(path)
    pump(lambda: win.doc is not None and win.doc.image.path == path and idle())
    combo = win.denoise_panel.model_combo
    combo.setCurrentIndex(combo.findData("photo"))  # the default model, for real photos
    win.denoise()
    pump(lambda: win.doc.raw_result is not None and idle())
    pump(idle, 60)
    win.compare.set_mode("split")
    win.compare.split.set_divider(0.5)
    shot("raw_split")


if __name__ == "__main__":
    main()
