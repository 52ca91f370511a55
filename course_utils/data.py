"""Fashion-MNIST and MNIST as tensors, and a loader that keeps a whole split on the device."""

# Where the files come from is `course_utils.sources`' job; this module makes splits and batches:
#
#     train, test = data.load_fashion_mnist()             # prints where the images came from
#     train, val = data.train_val_split(train, val_size=5000)
#     train_loader = data.TensorLoader(train, 64, shuffle=True, device=device)

from __future__ import annotations

from dataclasses import dataclass

import torch

from course_utils import sources
from course_utils._checks import check_whole
from course_utils.sources import DataError  # what load_* raise: notebooks catch data.DataError


FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_CLASSES = tuple(str(digit) for digit in range(10))
# Pixel mean and std of the training images, after scaling to [0, 1].
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


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


# ----------------------------------------------------------------------------- loading

def load_fashion_mnist(root=None, *, source: str = "auto", subset: int | None = None,
                       seed: int = 0) -> tuple[Split, Split]:
    """Fashion-MNIST as (train, test) Splits, at most `subset` images each (stratified); `source`
    forces one of 'cache', 'debian', 'download', 'bundled'. Raises DataError if none has it."""
    return _load("Fashion-MNIST", "FashionMNIST", FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN,
                 FASHION_MNIST_STD, root, source, subset, seed)


def load_mnist(root=None, *, source: str = "auto", subset: int | None = None,
               seed: int = 0) -> tuple[Split, Split]:
    """MNIST as (train, test) Splits, from the cache or a torchvision download."""
    return _load("MNIST", "MNIST", MNIST_CLASSES, MNIST_MEAN, MNIST_STD, root, source, subset, seed)


def _load(name, folder, classes, mean, std, root, source: str, subset: int | None, seed: int):
    # `name` is printed; `folder` is torchvision's folder inside the root, where `sources` looks.
    loaded, where = sources.find(name, folder, root, source)
    train, test = (stratified_subset(Split(*loaded[part], classes, mean, std), subset, seed)
                   for part in ("train", "test"))
    print(f"{name}: {len(train):,} train / {len(test):,} test images from {where}.")
    return train, test


# ----------------------------------------------------------------------------- splitting

def stratified_subset(split: Split, size: int | None, seed: int = 0) -> Split:
    """`size` samples (None: all) with the class proportions of `split`, seeded."""
    if size is None or check_whole(size, "subset (a number of images)", minimum=1) >= len(split):
        return split
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(split), generator=generator)
    counts = torch.bincount(split.labels, minlength=len(split.classes))
    shares = (counts.double() * size / len(split)).floor().long()
    # The samples lost to rounding down go, one each, to the largest classes.
    shares[torch.argsort(counts, descending=True, stable=True)[:size - int(shares.sum())]] += 1
    # A stable sort by class keeps the random order within each class, so the first `share`
    # samples of each class are a random sample of that class.
    per_class = order[torch.argsort(split.labels[order], stable=True)].split(counts.tolist())
    keep = torch.cat([rows[:share] for rows, share in zip(per_class, shares.tolist())])
    return split.take(keep[torch.randperm(len(keep), generator=generator)])


def train_val_split(split: Split, val_size: float = 5000, seed: int = 0) -> tuple[Split, Split]:
    """Hold out `val_size` samples (a count, or a fraction below 1) as a validation split."""
    n_val = round(val_size * len(split)) if isinstance(val_size, float) else int(val_size)
    if not 0 < n_val < len(split):
        raise ValueError(f"val_size={val_size} leaves no training or no validation data "
                         f"from {len(split):,} samples.")
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(seed))
    return split.take(order[n_val:]), split.take(order[:n_val])


def lesson_split(full: Split, *, val_size: int, train_size: int | None = None,
                 seed: int = 0) -> tuple[Split, Split]:
    """(train, val): `val_size` held out (at most a fifth of `full`), `train_size` of the rest."""
    # The notebooks' split. At most a fifth, so that the bundled subset still trains (it says so
    # when it shrinks); the training part is a stratified subset (train_size None keeps it all).
    fitted = min(val_size, len(full) // 5)
    if fitted < val_size:
        print(f"Only {len(full):,} training images: holding out {fitted:,} for validation "
              f"instead of {val_size:,}.")
    train, val = train_val_split(full, val_size=fitted, seed=seed)
    return stratified_subset(train, train_size, seed), val


# ----------------------------------------------------------------------------- the loader

class TensorLoader:
    """Normalized float batches (B, 1, 28, 28) and int64 labels (B,) of a split kept on `device`."""

    # No workers, no per-image Python work: each batch is one gather from the whole split. Epoch
    # e's order depends only on (seed, e), so a resumed run sees the same batches (`fit` calls
    # `set_epoch`).

    def __init__(self, split: Split, batch_size: int, *, shuffle: bool = False, device=None,
                 drop_last: bool = False, seed: int = 0):
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.images = split.images.to(self.device)                   # (N, 28, 28) uint8
        self.labels = split.labels.to(self.device)                   # (N,) int64
        self.batch_size = check_whole(batch_size, "batch_size", minimum=1)
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, seed
        # (x / 255 - mean) / std as one multiply-add: x * scale + shift.
        self.scale, self.shift = 1.0 / (255.0 * split.std), -split.mean / split.std
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.labels)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n = len(self.labels)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        self.epoch += 1
        # Batches of `batch_size` rows in that order; `len(self)` leaves out a short last one
        # when `drop_last`.
        for rows in order.to(self.device).split(self.batch_size)[:len(self)]:
            X = self.images[rows].float().mul_(self.scale).add_(self.shift)  # (B, 28, 28)
            # Channels-last in memory, (B, 28, 28, 1): the same bytes (one channel), but flagged
            # so the convolutions, BatchNorm and pooling run their faster channels-last kernels
            # (`make bench` measures it); the model's weights keep torch's default layout.
            yield X.unsqueeze(-1).permute(0, 3, 1, 2), self.labels[rows]     # (B, 1, 28, 28)
