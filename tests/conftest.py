import pytest
import torch

from course_utils import data, sources


def write_tiny_dataset(folder, n_train=20, n_test=10, compress=False, seed=0):
    """Four small IDX files with random images and labels 0-9, as in a dataset's raw folder."""
    generator = torch.Generator().manual_seed(seed)
    suffix = ".gz" if compress else ""
    made = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = torch.randint(0, 256, (n, 28, 28), generator=generator, dtype=torch.uint8)
        labels = torch.arange(n) % 10
        images_name, labels_name = sources.FILES[split]
        sources.write_idx(folder / (images_name + suffix), images, compress=compress)
        sources.write_idx(folder / (labels_name + suffix), labels, compress=compress)
        made[split] = (images, labels)
    return made


@pytest.fixture
def isolated_sources(tmp_path, monkeypatch):
    """No cache, no Debian files, no bundled subset and no network: each test adds what it needs."""
    monkeypatch.setattr(sources, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(sources, "BUNDLED_DIR", tmp_path / "no-bundled")

    def offline(folder, root):
        return None
    monkeypatch.setitem(sources._LOADERS, "download", offline)
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


@pytest.fixture
def show():
    """Show an explorer as a notebook cell does: ipywidgets 7.7 (what Colab ships) computes an
    `interactive`'s first `.result` when it is displayed, 8.x already when it is created; the
    `update()` that displaying runs in 7.7 gives the same state on both."""
    def show(explorer):
        explorer.update()
        return explorer
    return show
