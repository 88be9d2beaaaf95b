"""The IDX reader: real files read right, every malformed file refused with its name."""

import gzip
import os
import shutil

import numpy as np
import pytest

from components import mnist_idx
from components.mnist_idx import IMAGE_MAGIC, LABEL_MAGIC, MnistDataError, encode_idx


def write_split(directory, images, labels, compress=True, split="train",
                image_magic=IMAGE_MAGIC, label_magic=LABEL_MAGIC):
    image_stem, label_stem = mnist_idx.SPLIT_FILES[split]
    for stem, data in ((image_stem, encode_idx(images, image_magic)),
                       (label_stem, encode_idx(labels, label_magic))):
        if compress:
            with gzip.open(os.path.join(directory, stem + ".gz"), "wb") as f:
                f.write(data)
        else:
            with open(os.path.join(directory, stem), "wb") as f:
                f.write(data)
    return [os.path.join(directory, s + (".gz" if compress else "")) for s in (image_stem, label_stem)]


def digits(count=5, size=28):
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (count, size, size), dtype=np.uint8),
            np.arange(count, dtype=np.uint8) % 10)


def test_reads_the_committed_slice(mnist_slice):
    train = mnist_idx.load_split(mnist_slice, "train")
    evaluation = mnist_idx.load_split(mnist_slice, "eval")
    assert train.images.shape == (1000, 28, 28) and train.images.dtype == np.uint8
    assert evaluation.images.shape == (500, 28, 28)
    assert train.labels.dtype == np.int64
    # The first official training digits are 5, 0, 4, 1, 9; the first test digits 7, 2, 1, 0.
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert evaluation.labels[:4].tolist() == [7, 2, 1, 0]
    assert set(train.labels.tolist()) == set(range(10))


def test_gzip_and_raw_files_give_the_same_arrays(tmp_path):
    images, labels = digits()
    (tmp_path / "gz").mkdir()
    (tmp_path / "raw").mkdir()
    write_split(str(tmp_path / "gz"), images, labels, compress=True)
    write_split(str(tmp_path / "raw"), images, labels, compress=False)
    from_gz = mnist_idx.load_split(str(tmp_path / "gz"), "train")
    from_raw = mnist_idx.load_split(str(tmp_path / "raw"), "train")
    np.testing.assert_array_equal(from_gz.images, images)
    np.testing.assert_array_equal(from_raw.images, images)
    np.testing.assert_array_equal(from_raw.labels, labels)


def test_missing_file(tmp_path):
    images, labels = digits()
    image_path, label_path = write_split(str(tmp_path), images, labels)
    os.remove(label_path)
    with pytest.raises(MnistDataError, match=r"train-labels-idx1-ubyte.*missing file"):
        mnist_idx.load_split(str(tmp_path), "train")


def test_wrong_magic_number(tmp_path):
    images, labels = digits()
    write_split(str(tmp_path), images, labels, image_magic=0x00000801)
    with pytest.raises(MnistDataError,
                       match=r"train-images-idx3-ubyte.gz: wrong magic number 0x00000801"):
        mnist_idx.load_split(str(tmp_path), "train")


def test_wrong_image_dimensions(tmp_path):
    images, labels = digits(size=32)
    write_split(str(tmp_path), images, labels)
    with pytest.raises(MnistDataError,
                       match=r"train-images-idx3-ubyte.gz: wrong image dimensions 32x32"):
        mnist_idx.load_split(str(tmp_path), "train")


def test_image_label_count_mismatch(tmp_path):
    images, labels = digits(count=5)
    write_split(str(tmp_path), images, labels[:4])
    with pytest.raises(MnistDataError, match=r"count mismatch: 5 images .* 4 labels"):
        mnist_idx.load_split(str(tmp_path), "train")


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_data(tmp_path, compress):
    images, labels = digits()
    image_path, _ = write_split(str(tmp_path), images, labels, compress=compress)
    with open(image_path, "rb") as f:
        data = f.read()
    with open(image_path, "wb") as f:
        f.write(data[:-100])
    with pytest.raises(MnistDataError, match=os.path.basename(image_path) + ": truncated"):
        mnist_idx.load_split(str(tmp_path), "train")


def test_label_outside_0_to_9(tmp_path):
    images, labels = digits()
    labels[3] = 11
    write_split(str(tmp_path), images, labels)
    with pytest.raises(MnistDataError,
                       match=r"train-labels-idx1-ubyte.gz: label 11 at index 3 is outside 0-9"):
        mnist_idx.load_split(str(tmp_path), "train")


def test_trailing_bytes(tmp_path):
    images, labels = digits()
    _, label_path = write_split(str(tmp_path), images, labels, compress=False)
    with open(label_path, "ab") as f:
        f.write(b"\x00\x01")
    with pytest.raises(MnistDataError, match=r"2 unexpected trailing bytes"):
        mnist_idx.load_split(str(tmp_path), "train")


def test_slice_copy_is_byte_identical(mnist_slice, tmp_path):
    """encode_idx is the exact inverse of the reader (it cut the committed slice)."""
    shutil.copytree(mnist_slice, tmp_path / "copy")
    split = mnist_idx.load_split(str(tmp_path / "copy"), "eval")
    path = mnist_idx.find_idx_file(mnist_slice, "t10k-images-idx3-ubyte")
    assert gzip.open(path).read() == encode_idx(split.images, IMAGE_MAGIC)
