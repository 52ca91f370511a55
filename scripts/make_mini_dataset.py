"""Build the mini Fashion-MNIST subset bundled in course_utils/mini from the full data.

    python scripts/make_mini_dataset.py

5,000 training and 1,000 test images, sampled per class in proportion (Fashion-MNIST is
balanced, so 500 and 100 of each class) with seed 0. Files are gzipped IDX, written
byte-for-byte reproducibly (gzip mtime 0). Paste the printed checksums into
course_utils/data.py (BUNDLED_SHA256); the tests check that they match the files.
"""

import gzip
import hashlib
import struct
from pathlib import Path

from course_utils import data

TRAIN_SIZE, TEST_SIZE, SEED = 5000, 1000, 0


def idx_bytes(tensor) -> bytes:
    header = struct.pack(f">HBB{tensor.dim()}I", 0, 0x08, tensor.dim(), *tensor.shape)
    return header + tensor.contiguous().numpy().tobytes()


def main() -> None:
    train, test = data.load_fashion_mnist(source="auto")
    if len(train) != 60_000:
        raise SystemExit("Build the mini subset from the full data, not from the mini subset.")
    train = data.stratified_subset(train, TRAIN_SIZE, SEED)
    test = data.stratified_subset(test, TEST_SIZE, SEED)
    data.BUNDLED_DIR.mkdir(exist_ok=True)
    print("BUNDLED_SHA256 = {")
    for split_name, split in (("train", train), ("test", test)):
        for name, tensor in zip(data.FILES[split_name], (split.images, split.labels.byte())):
            content = idx_bytes(tensor)
            path = data.BUNDLED_DIR / (name + ".gz")
            with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0,
                                                        filename="") as f:
                f.write(content)
            print(f'    "{name}":\n        ({len(content)}, "{hashlib.sha256(content).hexdigest()}"),')
    print("}")
    total = sum(p.stat().st_size for p in Path(data.BUNDLED_DIR).glob("*.gz"))
    print(f"# {total:,} bytes in {data.BUNDLED_DIR}")


if __name__ == "__main__":
    main()
