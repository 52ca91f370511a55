import gzip
import struct

import pytest
import torch

from course_utils import data


def write_idx(path, tensor, compress=False):
    """Write a uint8 tensor as an IDX file, the format of the (Fashion-)MNIST files."""
    tensor = tensor.to(torch.uint8).contiguous()
    content = struct.pack(f">HBB{tensor.dim()}I", 0, 0x08, tensor.dim(), *tensor.shape)
    content += tensor.numpy().tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    with (gzip.open(path, "wb") if compress else open(path, "wb")) as f:
        f.write(content)
    return path


def write_tiny_dataset(folder, n_train=20, n_test=10, compress=False, seed=0):
    """Four small IDX files with random images and labels 0-9, as in a dataset's raw folder."""
    generator = torch.Generator().manual_seed(seed)
    suffix = ".gz" if compress else ""
    made = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = torch.randint(0, 256, (n, 28, 28), generator=generator, dtype=torch.uint8)
        labels = torch.arange(n) % 10
        images_name, labels_name = data.FILES[split]
        write_idx(folder / (images_name + suffix), images, compress)
        write_idx(folder / (labels_name + suffix), labels, compress)
        made[split] = (images, labels)
    return made


@pytest.fixture
def isolated_sources(tmp_path, monkeypatch):
    """No cache, no Debian files, no bundled subset and no network: each test adds what it needs."""
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(data, "BUNDLED_DIR", tmp_path / "no-bundled")

    def offline(dataset, root):
        return None
    monkeypatch.setitem(data._LOADERS, "download", offline)
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def mini():
    """The bundled mini subset: real Fashion-MNIST images, always available, fast to load."""
    return data.load_fashion_mnist(source="bundled")


@pytest.fixture
def small_loaders(mini):
    """512 training and 256 validation images of real data, batch 64."""
    train, test = mini
    train = data.stratified_subset(train, 512, seed=0)
    val = data.stratified_subset(test, 256, seed=0)
    return (data.TensorLoader(train, 64, shuffle=True, seed=0),
            data.TensorLoader(val, 128))
