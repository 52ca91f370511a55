"""Fashion-MNIST and MNIST as tensors, and a loader that keeps a whole split on the device.

`load_fashion_mnist()` looks for the data in this order and prints one line saying where it
came from:

1. the cache (torchvision's layout: ``<root>/FashionMNIST/raw/*-ubyte``), where ``root`` is the
   argument, else ``$COURSE_DATA_DIR``, else ``~/.cache/course_utils``;
2. Debian's package ``dataset-fashion-mnist`` (decompressed into the cache once, checksums
   verified);
3. torchvision's download, when the machine is online;
4. the mini subset bundled with this package (5,000 train / 1,000 test real images).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import torch

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
# Pixel mean and std of the training images, after scaling to [0, 1].
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

SOURCES = ("cache", "debian", "download", "bundled")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
BUNDLED_DIR = Path(__file__).parent / "mini"
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# Size in bytes and SHA-256 of each decompressed file. The .gz files differ between mirrors
# (Debian recompressed them), their content does not.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte":
        (47040016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train-labels-idx1-ubyte":
        (60008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "t10k-images-idx3-ubyte":
        (7840016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "t10k-labels-idx1-ubyte":
        (10008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}
# The mini subset bundled in course_utils/mini, as printed by scripts/make_mini_dataset.py.
BUNDLED_SHA256 = {
    "train-images-idx3-ubyte":
        (3920016, "e847eed58e77ebc9aa16c92546704b1ae089c3482477d116e4ea86bd7d00c352"),
    "train-labels-idx1-ubyte":
        (5008, "4aa56d1c8576a8d430f94ac1d386d06bca33a0379d8f9ccb8803147597cefdea"),
    "t10k-images-idx3-ubyte":
        (784016, "5565b8dbe0dcfb6ab0d6b2ca56fc96c26455954b5a4de90a0c79561adb4274fe"),
    "t10k-labels-idx1-ubyte":
        (1008, "eb9cef6b8c26a9feaf5d4f3ab8271d339f10141f00f71979c0f1128229e2bdc5"),
}


class DataError(RuntimeError):
    """The data is missing, corrupted or not in the expected format."""


@dataclass
class Split:
    """One split of a dataset: uint8 images (N, 28, 28) and int64 labels (N,)."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    mean: float
    std: float

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.dim() != 3:
            raise ValueError(f"images must be uint8 shaped (N, 28, 28), got {self.images.dtype} "
                             f"{tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        self.labels = self.labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor) -> Split:
        """The samples at `index`, as a new Split."""
        return Split(self.images[index], self.labels[index], self.classes, self.mean, self.std)


# ----------------------------------------------------------------------------- reading IDX files

def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read an IDX file (gzipped or not) into a uint8 tensor, checking its header."""
    path = Path(path)
    with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of unsigned bytes (bad magic number).")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    expected = 4 + 4 * ndim + int(torch.tensor(shape).prod())
    if len(data) != expected:
        raise DataError(f"{path} is truncated or padded: {len(data):,} bytes, its header "
                        f"promises {expected:,}. Delete it and load again.")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=4 + 4 * ndim).reshape(shape)


def _sha256(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    digest = hashlib.sha256()
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_split(folder: Path, split: str, suffix: str, checksums: dict | None) -> tuple:
    """Read one split's images and labels. A file whose name is in `checksums` is verified,
    except an uncompressed file of another size: a small hand-made cache has no published sum,
    and a truncated file fails the IDX header check in `read_idx` instead."""
    tensors = []
    for name in FILES[split]:
        path = folder / (name + suffix)
        size, sha256 = (checksums or {}).get(name, (None, None))
        if sha256 and (suffix == ".gz" or path.stat().st_size == size) \
                and _sha256(path) != sha256:
            raise DataError(f"{path} is corrupted: its SHA-256 does not match the published "
                            "data. Delete it (or reinstall its package) and load again.")
        tensors.append(read_idx(path))
    images, labels = tensors
    if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
        raise DataError(f"{folder}: {split} images {tuple(images.shape)} do not match "
                        f"labels {tuple(labels.shape)}.")
    if len(labels) and int(labels.max()) > 9:
        raise DataError(f"{folder}: {split} labels go up to {int(labels.max())}, expected 0-9.")
    return images, labels


# ----------------------------------------------------------------------------- sources

@dataclass(frozen=True)
class _Dataset:
    name: str           # as printed
    folder: str         # torchvision's folder name inside the root
    classes: tuple
    mean: float
    std: float
    checksums: dict | None


FASHION_MNIST = _Dataset("Fashion-MNIST", "FashionMNIST", FASHION_MNIST_CLASSES,
                         FASHION_MNIST_MEAN, FASHION_MNIST_STD, FASHION_MNIST_SHA256)
MNIST = _Dataset("MNIST", "MNIST", MNIST_CLASSES, MNIST_MEAN, MNIST_STD, None)


def default_root() -> Path:
    """The cache folder: $COURSE_DATA_DIR, else ~/.cache/course_utils."""
    env = os.environ.get("COURSE_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "course_utils"


def _all_present(folder: Path, suffix: str = "") -> bool:
    return all((folder / (name + suffix)).is_file() for pair in FILES.values() for name in pair)


def _from_cache(dataset: _Dataset, root: Path):
    raw = root / dataset.folder / "raw"
    if not _all_present(raw):
        return None
    loaded = {split: _read_split(raw, split, "", dataset.checksums) for split in FILES}
    return loaded, f"the cache {raw}"


def _from_debian(dataset: _Dataset, root: Path):
    if dataset is not FASHION_MNIST or not _all_present(DEBIAN_DIR, ".gz"):
        return None
    loaded = {split: _read_split(DEBIAN_DIR, split, ".gz", dataset.checksums) for split in FILES}
    _write_cache(dataset, root, loaded)
    return loaded, f"Debian's package dataset-fashion-mnist ({DEBIAN_DIR})"


def _write_cache(dataset: _Dataset, root: Path, loaded: dict) -> None:
    """Save decompressed IDX files so the next call reads them directly (torchvision can too)."""
    raw = root / dataset.folder / "raw"
    try:
        raw.mkdir(parents=True, exist_ok=True)
        for split, (images, labels) in loaded.items():
            for name, tensor, magic in zip(FILES[split], (images, labels), (3, 1)):
                header = struct.pack(f">HBB{magic}I", 0, 0x08, magic, *tensor.shape)
                tmp = raw / (name + ".tmp")
                tmp.write_bytes(header + tensor.numpy().tobytes())
                os.replace(tmp, raw / name)     # atomic: never a half-written cache file
    except OSError:
        pass    # a read-only home folder only costs the decompression next time


def _from_download(dataset: _Dataset, root: Path):
    from torchvision import datasets  # imported here: only this path needs torchvision

    cls = datasets.FashionMNIST if dataset is FASHION_MNIST else datasets.MNIST
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception:   # offline, a firewall, a mirror down: fall through to the next source
        return None
    return _from_cache(dataset, root)[0], f"a download into {root / dataset.folder}"


def _from_bundled(dataset: _Dataset, root: Path):
    if dataset is not FASHION_MNIST or not _all_present(BUNDLED_DIR, ".gz"):
        return None
    loaded = {split: _read_split(BUNDLED_DIR, split, ".gz", BUNDLED_SHA256) for split in FILES}
    return loaded, ("the MINI SUBSET bundled with course_utils. WARNING: this is NOT the full "
                    "dataset; accuracies will be lower. Call load_fashion_mnist(source='auto') "
                    "online once to get all 70,000 images")


_LOADERS = {"cache": _from_cache, "debian": _from_debian,
            "download": _from_download, "bundled": _from_bundled}


def _missing_message(dataset: _Dataset, root: Path) -> str:
    ways = [f"  - put the four *-ubyte files in {root / dataset.folder / 'raw'} (the cache; "
            "set COURSE_DATA_DIR to use another folder)"]
    if dataset is FASHION_MNIST:
        ways.append("  - on Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist")
    ways.append(f"  - go online once: torchvision downloads {dataset.name} into the cache")
    if dataset is FASHION_MNIST:
        ways.append("  - reinstall course_utils: its bundled mini subset is missing")
    return f"{dataset.name} was not found. Ways to get it:\n" + "\n".join(ways)


def _load(dataset: _Dataset, root, source: str, subset: int | None, seed: int):
    if source != "auto" and source not in SOURCES:
        raise ValueError(f"source={source!r} is not one of 'auto', " + ", ".join(
            repr(s) for s in SOURCES) + ".")
    root = Path(root).expanduser() if root is not None else default_root()
    result = None
    for name in (SOURCES if source == "auto" else (source,)):
        try:
            result = _LOADERS[name](dataset, root)
        except DataError as error:
            if source != "auto":
                raise
            print(f"{dataset.name}: skipping the {name} source: {error}")
        if result is not None:
            break
    if result is None:
        raise DataError(_missing_message(dataset, root) if source == "auto" else
                        f"{dataset.name} is not available from source={source!r}.\n"
                        + _missing_message(dataset, root))
    loaded, where = result
    train, test = (Split(*loaded[split], dataset.classes, dataset.mean, dataset.std)
                   for split in ("train", "test"))
    if subset is not None:
        train, test = stratified_subset(train, subset, seed), stratified_subset(test, subset, seed)
    print(f"{dataset.name}: {len(train):,} train / {len(test):,} test images from {where}.")
    return train, test


def load_fashion_mnist(root=None, *, source: str = "auto", subset: int | None = None,
                       seed: int = 0) -> tuple[Split, Split]:
    """Fashion-MNIST as (train, test) Splits; `subset` keeps at most that many images per split,
    stratified by class. `source` forces one of 'cache', 'debian', 'download', 'bundled'."""
    return _load(FASHION_MNIST, root, source, subset, seed)


def load_mnist(root=None, *, source: str = "auto", subset: int | None = None,
               seed: int = 0) -> tuple[Split, Split]:
    """MNIST as (train, test) Splits, from the cache or a torchvision download."""
    return _load(MNIST, root, source, subset, seed)


# ----------------------------------------------------------------------------- splitting

def stratified_subset(split: Split, size: int, seed: int = 0) -> Split:
    """`size` samples with the class proportions of `split`, chosen with a seeded generator."""
    if size >= len(split):
        return split
    if size < 1:
        raise ValueError(f"subset must be a positive number of images, got {size}.")
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(split), generator=generator)
    # A stable sort by class keeps the random order within each class, so taking the first
    # `share` samples of each class is a random sample of that class.
    by_class = order[torch.argsort(split.labels[order], stable=True)]
    counts = torch.bincount(split.labels, minlength=len(split.classes))
    shares = (counts.double() * size / len(split)).floor().long()
    leftover = size - int(shares.sum())
    shares[torch.argsort(counts, descending=True, stable=True)[:leftover]] += 1
    starts = torch.cumsum(counts, 0) - counts
    keep = torch.cat([by_class[s:s + n] for s, n in zip(starts.tolist(), shares.tolist())])
    return split.take(keep[torch.randperm(len(keep), generator=generator)])


def train_val_split(split: Split, val_size: int | float = 5000, seed: int = 0) -> tuple[Split,
                                                                                          Split]:
    """Hold out `val_size` samples (a count, or a fraction below 1) as a validation split."""
    n_val = round(val_size * len(split)) if isinstance(val_size, float) else int(val_size)
    if not 0 < n_val < len(split):
        raise ValueError(f"val_size={val_size} leaves no training or no validation data "
                         f"from {len(split):,} samples.")
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    return split.take(order[n_val:]), split.take(order[:n_val])


# ----------------------------------------------------------------------------- the loader

class TensorLoader:
    """Yields normalized float batches (B, 1, 28, 28) and int64 labels (B,) from a split kept
    whole on `device`: no workers, no per-image Python work.

    The order of epoch e depends only on (seed, e), so a resumed run sees the same batches;
    `fit` calls `set_epoch` before each epoch.
    """

    def __init__(self, split: Split, batch_size: int, *, shuffle: bool = False, device=None,
                 drop_last: bool = False, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.images = split.images.unsqueeze(1).to(self.device)     # (N, 1, 28, 28) uint8
        self.labels = split.labels.to(self.device)                   # (N,) int64
        self.batch_size, self.shuffle, self.drop_last, self.seed = batch_size, shuffle, drop_last, seed
        # (x / 255 - mean) / std as one multiply-add: x * scale + shift.
        self.scale = 1.0 / (255.0 * split.std)
        self.shift = -split.mean / split.std
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.labels)
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(n, generator=generator).to(self.device)
        else:
            order = None
        self.epoch += 1
        for batch in range(len(self)):
            index = slice(batch * self.batch_size, (batch + 1) * self.batch_size)
            rows = order[index] if order is not None else index
            X = self.images[rows].float().mul_(self.scale).add_(self.shift)  # (B, 1, 28, 28)
            yield X, self.labels[rows]
