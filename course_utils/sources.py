"""Where the (Fashion-)MNIST files come from (`find`); the IDX file reader and (atomic) writer."""

# Learners call `data.load_fashion_mnist` (or `load_mnist`), which calls `find`.

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import struct
import tempfile
from pathlib import Path

import torch


# `find` tries these sources in order and says which one answered: (1) the cache, in torchvision's
# layout <root>/FashionMNIST/raw/*-ubyte (root: the argument, else `default_root()`); (2) Debian's
# package dataset-fashion-mnist (decompressed into the cache once, checksums verified); (3)
# torchvision's download, when online; (4) the mini subset bundled with this package (5,000 train
# / 1,000 test real images).
SOURCES = ("cache", "debian", "download", "bundled")
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
BUNDLED_DIR = Path(__file__).parent / "mini"
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_NAMES = [name for pair in FILES.values() for name in pair]     # train images, labels; test ...
# Size in bytes and SHA-256 of each decompressed file, in the order of _NAMES. The .gz files
# differ between mirrors (Debian recompressed them), their content does not. MNIST has no
# published checksums here: its cache is read unchecked.
FASHION_MNIST_SHA256 = dict(zip(_NAMES, [
    (47040016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    (60008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    (7840016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    (10008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34")]))
# The mini subset bundled in course_utils/mini, as printed by scripts/make_mini_dataset.py.
BUNDLED_SHA256 = dict(zip(_NAMES, [
    (3920016, "e847eed58e77ebc9aa16c92546704b1ae089c3482477d116e4ea86bd7d00c352"),
    (5008, "4aa56d1c8576a8d430f94ac1d386d06bca33a0379d8f9ccb8803147597cefdea"),
    (784016, "5565b8dbe0dcfb6ab0d6b2ca56fc96c26455954b5a4de90a0c79561adb4274fe"),
    (1008, "eb9cef6b8c26a9feaf5d4f3ab8271d339f10141f00f71979c0f1128229e2bdc5")]))


class DataError(RuntimeError):
    """The data is missing, corrupted or not in the expected format."""


def find(name: str, folder: str, root=None, source: str = "auto") -> tuple[dict, str]:
    """{"train": (images, labels), "test": (...)} as uint8 tensors, and where they came from."""
    # `name` is printed; `folder` is torchvision's ("FashionMNIST", "MNIST"); `source` is "auto"
    # (every source in order) or one of SOURCES.
    if source not in ("auto", *SOURCES):
        raise ValueError(f"source={source!r} is not one of {('auto', *SOURCES)}.")
    root = Path(root).expanduser() if root is not None else default_root()
    for each in (SOURCES if source == "auto" else (source,)):
        try:
            result = _LOADERS[each](folder, root)
        except DataError as error:
            if source != "auto":
                raise
            print(f"{name}: skipping the {each} source: {error}")
            continue
        if result is not None:
            return result
    forced = "" if source == "auto" else f"{name} is not available from source={source!r}.\n"
    raise DataError(forced + _missing_message(name, folder, root))


def default_root() -> Path:
    """The cache folder: $COURSE_DATA_DIR, else ~/.cache/course_utils."""
    return Path(os.environ.get("COURSE_DATA_DIR") or "~/.cache/course_utils").expanduser()


# ----------------------------------------------------------------------------- the four sources
# Each takes (folder, root) and returns (the splits, where they came from), or None when it has
# no such data; only Fashion-MNIST comes from Debian or the bundled subset.

def _from_cache(folder: str, root: Path):
    raw = root / folder / "raw"
    loaded = _read(raw, "", FASHION_MNIST_SHA256 if folder == "FashionMNIST" else None)
    return None if loaded is None else (loaded, f"the cache {raw}")


def _from_debian(folder: str, root: Path):
    loaded = _read(DEBIAN_DIR, ".gz", FASHION_MNIST_SHA256) if folder == "FashionMNIST" else None
    if loaded is None:
        return None
    # Decompressed once, so the next call (and torchvision) reads the cache; a read-only home
    # folder only costs the decompression next time.
    with contextlib.suppress(OSError):
        for file_name, tensor in zip(_NAMES, [*loaded["train"], *loaded["test"]]):
            write_idx(root / folder / "raw" / file_name, tensor)
    return loaded, f"Debian's package dataset-fashion-mnist ({DEBIAN_DIR})"


def _from_download(folder: str, root: Path):
    from torchvision import datasets  # imported here: only this path needs torchvision

    try:
        for train in (True, False):     # datasets.FashionMNIST or datasets.MNIST
            getattr(datasets, folder)(str(root), train=train, download=True)
    except Exception:   # offline, a firewall, a mirror down: fall through to the next source
        return None
    return _from_cache(folder, root)[0], f"a download into {root / folder}"


def _from_bundled(folder: str, root: Path):
    loaded = _read(BUNDLED_DIR, ".gz", BUNDLED_SHA256) if folder == "FashionMNIST" else None
    warning = ("the MINI SUBSET bundled with course_utils. WARNING: this is NOT the full dataset; "
               "accuracies will be lower. Call load_fashion_mnist(source='auto') online once to "
               "get all 70,000 images")
    return None if loaded is None else (loaded, warning)


_LOADERS = dict(zip(SOURCES, (_from_cache, _from_debian, _from_download, _from_bundled)))


def _missing_message(name: str, folder: str, root: Path) -> str:
    ways = [f"  - put the four *-ubyte files in {root / folder / 'raw'} (the cache; "
            "set COURSE_DATA_DIR to use another folder)"]
    if folder == "FashionMNIST":
        ways.append("  - on Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist")
    ways.append(f"  - go online once: torchvision downloads {name} into the cache")
    if folder == "FashionMNIST":
        ways.append("  - reinstall course_utils: its bundled mini subset is missing")
    return f"{name} was not found. Ways to get it:\n" + "\n".join(ways)


def _read(folder: Path, suffix: str, checksums: dict | None) -> dict | None:
    # {"train": (images, labels), "test": ...} from the four files in `folder`, None if one is
    # missing. A file whose name is in `checksums` is verified, except an uncompressed file of
    # another size: a small hand-made cache has no published sum, and a truncated file fails the
    # IDX header check in `read_idx` instead.
    paths = {name: folder / (name + suffix) for name in _NAMES}
    if not all(path.is_file() for path in paths.values()):
        return None
    verified = {name: sha256 for name, (size, sha256) in (checksums or {}).items()
                if suffix == ".gz" or paths[name].stat().st_size == size}
    loaded = {}
    for split, names in FILES.items():
        images, labels = (read_idx(paths[name], verified.get(name)) for name in names)
        if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
            raise DataError(f"{folder}: {split} images {tuple(images.shape)} do not match "
                            f"labels {tuple(labels.shape)}.")
        if len(labels) and int(labels.max()) > 9:
            raise DataError(f"{folder}: {split} labels go up to {int(labels.max())}, expected 0-9.")
        loaded[split] = images, labels
    return loaded


# ----------------------------------------------------------------------------- IDX files

def read_idx(path: str | os.PathLike, sha256: str | None = None) -> torch.Tensor:
    """An IDX file (gzipped or not) as a uint8 tensor; checks its header and `sha256`, if given."""
    path = Path(path)
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        content = f.read()
    if sha256 is not None and hashlib.sha256(content).hexdigest() != sha256:
        raise DataError(f"{path} is corrupted: its SHA-256 does not match the published data. "
                        "Delete it (or reinstall its package) and load again.")
    if len(content) < 4 or content[:3] != b"\x00\x00\x08":
        raise DataError(f"{path} is not an IDX file of unsigned bytes (bad magic number).")
    # The header (see write_idx) holds one big-endian uint32 size per dimension; the data follows.
    start = 4 + 4 * content[3]
    shape = struct.unpack(f">{content[3]}I", content[4:start])
    expected = start + torch.Size(shape).numel()
    if len(content) != expected:
        raise DataError(f"{path} is truncated or padded: {len(content):,} bytes, its header "
                        f"promises {expected:,}. Delete it and load again.")
    return torch.frombuffer(bytearray(content), dtype=torch.uint8, offset=start).reshape(shape)


def write_idx(path: str | os.PathLike, tensor: torch.Tensor, *, compress: bool = False) -> Path:
    """Write integers 0-255 as an IDX file of unsigned bytes, gzipped when `compress`."""
    path = Path(path)
    if tensor.numel() and (int(tensor.min()) < 0 or int(tensor.max()) > 255):
        raise ValueError(f"IDX files of unsigned bytes hold 0-255; {path.name} would get values "
                         f"from {int(tensor.min())} to {int(tensor.max())}.")
    tensor = tensor.detach().cpu().to(torch.uint8).contiguous()
    # The header: two zero bytes, 0x08 (unsigned bytes), the number of dimensions, each size.
    content = struct.pack(f">HBB{tensor.dim()}I", 0, 0x08, tensor.dim(), *tensor.shape)
    content += tensor.numpy().tobytes()
    # Reproducible: gzip without a time stamp or file name, so the same tensor gives the same bytes.
    with atomic_file(path) as raw:
        if compress:
            with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
                f.write(content)
        else:
            raw.write(content)
    return path


@contextlib.contextmanager
def atomic_file(path: Path):
    """A binary file that replaces `path` once written whole: never half a file, nor a stray one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)     # a rename: atomic
    finally:
        Path(temporary).unlink(missing_ok=True)
