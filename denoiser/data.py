"""Training data: random patches from folders of images, with flips/rotations, split into train/val.

Images are decoded on demand and kept as uint8/uint16 arrays in a cache bounded by `cache_mb`, so a
folder of large photos never has to fit in memory. Noise is not added here but per batch in
`denoiser.training`, on the fly.
"""

from __future__ import annotations

import random
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from denoiser.errors import DenoiserError
from denoiser.imageio import SUPPORTED_EXTENSIONS, load_image
from denoiser.pair_match import match_low_frequencies


def find_images(inputs: Iterable[str | Path], recursive: bool = True) -> list[Path]:
    """Image files among `inputs` (files, or folders searched recursively), sorted, deduplicated."""
    found: dict[Path, None] = {}
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            it = p.rglob("*") if recursive else p.glob("*")
            for f in sorted(it):
                if f.is_file() and f.suffix.lower() in SUPPORTED_EXTENSIONS and not f.name.startswith("."):
                    found[f] = None
        elif p.is_file():
            found[p] = None
    return list(found)


def split_train_val(files: Sequence[Path], val_fraction: float, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Seeded split of a file list; at least one validation image when `val_fraction` > 0 and ≥ 2 files."""
    files = list(files)
    rng = random.Random(seed)
    order = files[:]
    rng.shuffle(order)
    n_val = int(round(len(files) * val_fraction))
    if val_fraction > 0 and len(files) >= 2:
        n_val = max(1, min(n_val, len(files) - 1))
    val = sorted(order[:n_val])
    train = sorted(order[n_val:])
    return train, val


def to_channels(a: np.ndarray, channels: int) -> np.ndarray:
    """Convert an (H, W, C) float image to `channels` (1 = BT.601 luma, 3 = RGB)."""
    if a.shape[2] == channels:
        return a
    if channels == 1:
        return (a[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=a.dtype))[..., None]
    return np.repeat(a[..., :1], 3, axis=2)


class ImageCache:
    """Decoded images by path, least recently used dropped first once over the byte budget."""

    def __init__(self, channels: int, cache_mb: float = 1024) -> None:
        self.channels = channels
        self.budget = int(cache_mb * 1e6)
        self.used = 0
        self.items: OrderedDict[Path, np.ndarray] = OrderedDict()

    def get(self, path: Path) -> np.ndarray:
        """(H, W, C) float32 image in [0, 1] with the cache's channel count."""
        return self.as_float(self.get_stored(path))

    def get_stored(self, path: Path) -> np.ndarray:
        """The image as stored: (H, W, C) uint8, or uint16 for deeper sources; crop before `as_float`."""
        if path in self.items:
            self.items.move_to_end(path)
            return self.items[path]
        img = load_image(path)
        data = to_channels(img.data, self.channels)
        stored = (np.clip(data, 0, 1) * 65535 + 0.5).astype(np.uint16) if img.bit_depth > 8 else (
            np.clip(data, 0, 1) * 255 + 0.5).astype(np.uint8)
        if stored.nbytes <= self.budget:
            self.items[path] = stored
            self.used += stored.nbytes
            while self.used > self.budget and self.items:
                _, old = self.items.popitem(last=False)
                self.used -= old.nbytes
        return stored

    @staticmethod
    def as_float(a: np.ndarray) -> np.ndarray:
        """A stored image (or a crop of it) as float32 in [0, 1]."""
        return a.astype(np.float32) / (65535.0 if a.dtype == np.uint16 else 255.0)


def augment(patch: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 dihedral transforms (k in 0..7) of an (H, W, C) patch."""
    if k >= 4:
        patch = patch[:, ::-1]
    return np.rot90(patch, k % 4)


class PatchSampler:
    """Random clean patches (B, C, P, P) from a list of images."""

    def __init__(
        self,
        files: Sequence[Path],
        patch: int,
        channels: int,
        seed: int = 0,
        cache_mb: float = 1024,
    ) -> None:
        if not files:
            raise DenoiserError("no training images found")
        self.files = list(files)
        self.patch = patch
        self.cache = ImageCache(channels, cache_mb)
        self.rng = np.random.default_rng(seed)
        self.bad: dict[Path, str] = {}

    def _image(self, rng: np.random.Generator) -> tuple[Path, np.ndarray]:
        for _attempt in range(20):
            path = self.files[int(rng.integers(len(self.files)))]
            if path in self.bad:
                continue
            try:
                return path, self.cache.get_stored(path)
            except DenoiserError as exc:
                self.bad[path] = str(exc)
        raise DenoiserError(f"could not read training images: {'; '.join(list(self.bad.values())[:3])}")

    def sample(self, batch: int, rng: np.random.Generator | None = None) -> torch.Tensor:
        """A batch of augmented patches; images smaller than the patch are reflect-padded.

        `rng` draws the images and positions instead of the sampler's own generator, so a caller can
        make each batch a function of its step alone (exact resume, the same data with any number
        of loader processes).
        """
        return self.sample_with_sources(batch, rng)[0]

    def sample_with_sources(self, batch: int, rng: np.random.Generator | None = None) -> tuple[torch.Tensor, list[Path]]:
        """`sample`, and the image each patch was cut from (noisy fine-tuning gives each its image's σ)."""
        rng = self.rng if rng is None else rng
        out = np.empty((batch, self.cache.channels, self.patch, self.patch), dtype=np.float32)
        sources = []
        for i in range(batch):
            path, img = self._image(rng)
            sources.append(path)
            h, w = img.shape[:2]
            if h < self.patch or w < self.patch:
                img = np.pad(img, ((0, max(0, self.patch - h)), (0, max(0, self.patch - w)), (0, 0)), mode="reflect")
                h, w = img.shape[:2]
            y = int(rng.integers(h - self.patch + 1))
            x = int(rng.integers(w - self.patch + 1))
            p = augment(img[y : y + self.patch, x : x + self.patch], int(rng.integers(8)))
            out[i] = np.moveaxis(self.cache.as_float(p), -1, 0)
        return torch.from_numpy(out), sources

    def state(self) -> dict:
        """RNG state, for exact resume."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        """Restore the RNG state saved by `state()`."""
        self.rng.bit_generator.state = state


def validation_crops(files: Sequence[Path], channels: int, size: int = 256, limit: int = 16) -> list[torch.Tensor]:
    """Centre crops (1, C, h, w) of up to `limit` validation images (small photos whole), fixed for the run."""
    cache = ImageCache(channels, cache_mb=0)
    crops = []
    for f in list(files)[:limit]:
        try:
            img = cache.get(f)
        except DenoiserError:
            continue
        h, w = img.shape[:2]
        ch, cw = min(size, h), min(size, w)  # any size: validation pads to the network's multiple
        y, x = (h - ch) // 2, (w - cw) // 2
        crops.append(torch.from_numpy(np.ascontiguousarray(np.moveaxis(img[y : y + ch, x : x + cw], -1, 0)))[None])
    return crops


REAL_VAL_FRACTION = 0.2  # share of the real scenes held out for validation (whole scenes, never crops)
REAL_SPLIT_SEED = 0  # fixed, so training, the benchmark and every session hold out the same scenes


def find_pairs(folders: Iterable[str | Path]) -> list[tuple[Path, Path]]:
    """(noisy, clean) file pairs from folders that hold `noisy/` and `clean/` with matching names, sorted."""
    pairs = []
    for folder in folders:
        root = Path(folder)
        if not (root / "noisy").is_dir() or not (root / "clean").is_dir():
            raise DenoiserError(f"{root} has no noisy/ and clean/ folders of matching images")
        for noisy in find_images([root / "noisy"], recursive=False):
            clean = root / "clean" / noisy.name
            if clean.is_file():
                pairs.append((noisy, clean))
    if not pairs:
        raise DenoiserError(f"no noisy/clean pairs found in {', '.join(str(f) for f in folders)}")
    return pairs


def pair_folder(pair: tuple[Path, Path]) -> Path:
    """The folder a (noisy, clean) pair comes from: the one that holds its `noisy/` and `clean/`."""
    return pair[0].parent.parent


MatchRadius = float | Mapping[Path, float]  # one radius for every real pair, or one per pair folder (resolved)


def radius_for(match_radius: MatchRadius, pair: tuple[Path, Path]) -> float:
    """The low-frequency match radius of one pair: the one radius, or its folder's (0 for a folder not named)."""
    if isinstance(match_radius, Mapping):
        return float(match_radius.get(pair_folder(pair).resolve(), 0.0))
    return float(match_radius)


def split_pairs(pairs: Sequence[tuple[Path, Path]]) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """The fixed split of real pairs into training and held-out validation scenes (one pair is one scene).

    Each folder is split on its own, so the scenes a folder holds out are the same whatever other folders are
    given beside it (the benchmark's held-out PolyU40 scenes stay held out when a second set joins training)."""
    train: list[tuple[Path, Path]] = []
    val: list[tuple[Path, Path]] = []
    folders: dict[Path, dict[Path, Path]] = {}
    for noisy, clean in pairs:
        folders.setdefault(pair_folder((noisy, clean)), {})[noisy] = clean
    for by_noisy in folders.values():
        t, v = split_train_val(list(by_noisy), REAL_VAL_FRACTION, REAL_SPLIT_SEED)
        train += [(n, by_noisy[n]) for n in t]
        val += [(n, by_noisy[n]) for n in v]
    return train, val


def _group_probabilities(folders: list[Path], weights: Mapping[Path, float] | None) -> np.ndarray | None:
    """The draw probability of each pair folder from its weight (keyed by resolved folder, as match radii are);
    None where the draw is uniform (no weights, or equal ones), so such runs draw exactly as before weights existed."""
    if not weights:
        return None
    missing = [str(f) for f in folders if f.resolve() not in weights]
    if missing:
        raise DenoiserError(f"no weight for the real pairs of {', '.join(missing)}: give one per folder")
    w = np.array([weights[f.resolve()] for f in folders], dtype=np.float64)
    if len(folders) < 2 or np.all(w == w[0]):
        return None
    return w / w.sum()


class PairSampler:
    """Aligned random patches of real noisy/clean pairs: (clean, noisy), each (B, C, P, P)."""

    def __init__(self, pairs: Sequence[tuple[Path, Path]], patch: int, channels: int, cache_mb: float = 4096,
                 match_radius: MatchRadius = 0.0, weights: Mapping[Path, float] | None = None) -> None:
        if not pairs:
            raise DenoiserError("no real noisy/clean pairs to train on")
        self.pairs = list(pairs)
        self.match_radius = match_radius  # > 0: clean targets take the noisy shot's low frequencies (pair_match)
        self.targets: dict[Path, np.ndarray] = {}  # those matched targets, made once per pair
        groups: dict[Path, list[tuple[Path, Path]]] = {}
        for pair in self.pairs:
            groups.setdefault(pair_folder(pair), []).append(pair)
        self.groups = list(groups.values())
        self.group_p = _group_probabilities(list(groups), weights)
        self.patch = patch
        self.cache = ImageCache(channels, cache_mb)

    def _draw(self, rng: np.random.Generator) -> tuple[Path, Path]:
        """One pair: a folder uniformly (or by its weight), then a pair of it, so a small set is not drowned by a
        large one beside it (with one folder this is one draw over its pairs, as it always was)."""
        if self.group_p is not None:
            group = self.groups[int(rng.choice(len(self.groups), p=self.group_p))]
        elif len(self.groups) > 1:
            group = self.groups[int(rng.integers(len(self.groups)))]
        else:
            group = self.pairs
        return group[int(rng.integers(len(group)))]

    def _target(self, noisy: np.ndarray, pair: tuple[Path, Path]) -> np.ndarray:
        """The clean image of a pair as stored, or matched to its noisy shot's low frequencies."""
        clean_path = pair[1]
        radius = radius_for(self.match_radius, pair)
        if radius <= 0:
            return self.cache.get_stored(clean_path)
        if clean_path not in self.targets:  # kept apart from the cache: the matched target replaces the file's
            clean = ImageCache(self.cache.channels, cache_mb=0).get_stored(clean_path)
            self.targets[clean_path] = match_low_frequencies(noisy, clean, radius)
        return self.targets[clean_path]

    def sample(self, batch: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """`batch` aligned patch pairs drawn with `rng` (the same transform for both halves of a pair)."""
        c = self.cache.channels
        clean_out = np.empty((batch, c, self.patch, self.patch), dtype=np.float32)
        noisy_out = np.empty_like(clean_out)
        for i in range(batch):
            noisy_path, clean_path = pair = self._draw(rng)
            noisy = self.cache.get_stored(noisy_path)
            clean = self._target(noisy, pair)
            h, w = min(noisy.shape[0], clean.shape[0]), min(noisy.shape[1], clean.shape[1])
            if h < self.patch or w < self.patch:
                raise DenoiserError(f"{noisy_path.name} is smaller than the {self.patch}-px training patch")
            y, x = int(rng.integers(h - self.patch + 1)), int(rng.integers(w - self.patch + 1))
            k = int(rng.integers(8))
            for src, dst in ((clean, clean_out), (noisy, noisy_out)):
                dst[i] = np.moveaxis(self.cache.as_float(augment(src[y : y + self.patch, x : x + self.patch], k)), -1, 0)
        return torch.from_numpy(clean_out), torch.from_numpy(noisy_out)


def diagonal_crops(h: int, w: int, size: int, count: int) -> list[tuple[int, int]]:
    """(top, left) of `count` size×size crops spread along an h×w image's diagonal, away from its corners."""
    return [(int((h - size) * (j + 1) / (count + 1)), int((w - size) * (j + 1) / (count + 1))) for j in range(count)]


def real_validation_crops(pairs: Sequence[tuple[Path, Path]], channels: int, size: int = 256,
                          per_image: int = 3, match_radius: MatchRadius = 0.0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Fixed (clean, noisy) crops (1, C, size, size) along each held-out pair's diagonal, for validation;
    where the pair's `match_radius` is > 0 the clean image is first matched to the noisy one's low
    frequencies, as the training targets are."""
    cache = ImageCache(channels, cache_mb=0)
    crops = []
    for noisy_path, clean_path in pairs:
        noisy_stored, clean_stored = cache.get_stored(noisy_path), cache.get_stored(clean_path)
        radius = radius_for(match_radius, (noisy_path, clean_path))
        if radius > 0:
            clean_stored = match_low_frequencies(noisy_stored, clean_stored, radius)
        noisy, clean = cache.as_float(noisy_stored), cache.as_float(clean_stored)
        h, w = min(noisy.shape[0], clean.shape[0]), min(noisy.shape[1], clean.shape[1])
        s = min(size, h, w) // 16 * 16
        if s < 16:
            continue
        for y, x in diagonal_crops(h, w, s, per_image):
            pair = [torch.from_numpy(np.ascontiguousarray(np.moveaxis(a[y : y + s, x : x + s], -1, 0)))[None]
                    for a in (clean, noisy)]
            crops.append((pair[0], pair[1]))
    return crops
