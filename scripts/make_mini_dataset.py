"""Build the mini Fashion-MNIST subset bundled in course_utils/mini from the full data.

    python scripts/make_mini_dataset.py

5,000 training and 1,000 test images, sampled per class in proportion (Fashion-MNIST is
balanced, so 500 and 100 of each class) with seed 0. Files are gzipped IDX, written by
`sources.write_idx`, byte-for-byte reproducibly (gzip mtime 0). Paste the printed checksums into
course_utils/sources.py (BUNDLED_SHA256); the tests check that they match the files.
"""

import gzip
import hashlib

from course_utils import data, sources

TRAIN_SIZE, TEST_SIZE, SEED = 5000, 1000, 0


def main() -> None:
    train, test = data.load_fashion_mnist(source="auto")
    if len(train) != 60_000:
        raise SystemExit("Build the mini subset from the full data, not from the mini subset.")
    train = data.stratified_subset(train, TRAIN_SIZE, SEED)
    test = data.stratified_subset(test, TEST_SIZE, SEED)
    print("BUNDLED_SHA256 = dict(zip(_NAMES, [")
    total = 0
    for split_name, split in (("train", train), ("test", test)):
        for name, tensor in zip(sources.FILES[split_name], (split.images, split.labels)):
            path = sources.write_idx(sources.BUNDLED_DIR / (name + ".gz"), tensor, compress=True)
            content = gzip.decompress(path.read_bytes())
            sha256 = hashlib.sha256(content).hexdigest()
            print(f'    ({len(content)}, "{sha256}"),     # {name}')
            total += path.stat().st_size
    print("]))")
    print(f"# {total:,} bytes in {sources.BUNDLED_DIR}")


if __name__ == "__main__":
    main()
