"""Where a dataset comes from: its four IDX files, their md5s, mirrors and classes.

A :class:`DatasetSource` is plain data, so tests and users can make their own
(tiny files, a local mirror) with :func:`dataclasses.replace` or the constructor
and pass it anywhere a dataset name is accepted.

Every dataset is the four files of the original MNIST release layout
(LeCun, Cortes, Burges, http://yann.lecun.com/exdb/mnist/), kept gzipped in one
folder named after the dataset::

    <root>/<name>/train-images-idx3-ubyte.gz   uint8 [N, 28, 28]  magic 0x00000803
    <root>/<name>/train-labels-idx1-ubyte.gz   uint8 [N]          magic 0x00000801
    <root>/<name>/t10k-images-idx3-ubyte.gz    uint8 [M, 28, 28]
    <root>/<name>/t10k-labels-idx1-ubyte.gz    uint8 [M]
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from initlab.errors import InitlabError, UnknownNameError, suggest

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
#: The four files every dataset folder holds, in download order.
FILES: tuple[str, ...] = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

_MD5 = re.compile(r"[0-9a-f]{32}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, eq=False)
class DatasetSource:
    """Everything needed to find, fetch and check one IDX dataset.

    Attributes:
        name: dataset name, also the folder name under a data root.
        classes: class names; label ``k`` means ``classes[k]``.
        md5: expected md5 (lowercase hex) per file in :data:`FILES`; a file that is
            absent from the mapping, or maps to ``None``, is not checksummed
            (for home-made datasets; the official ones always are).
        mirrors: base URLs tried in order; a file's URL is ``mirror + "/" + file``.
            Any scheme :func:`urllib.request.urlopen` handles works (``https``,
            ``http``, ``file``).
        image_shape: (rows, cols) every image must have.
        reference: citation or homepage, for messages and reports.
    """

    name: str
    classes: tuple[str, ...]
    md5: Mapping[str, str | None] = field(default_factory=dict)
    mirrors: tuple[str, ...] = ()
    image_shape: tuple[int, int] = (28, 28)
    reference: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise InitlabError(
                f"dataset name {self.name!r} is not a valid folder name; "
                "use letters, digits, '.', '_' or '-'"
            )
        if len(self.classes) < 1 or len(self.classes) > 256:
            raise InitlabError(
                f"dataset {self.name!r} has {len(self.classes)} classes; "
                "give between 1 and 256 class names (labels are uint8)"
            )
        unknown = sorted(set(self.md5) - set(FILES))
        if unknown:
            raise InitlabError(
                f"dataset {self.name!r} gives md5s for unknown files {unknown}; "
                f"the files are {', '.join(FILES)}"
            )
        for file, digest in self.md5.items():
            if digest is not None and not (isinstance(digest, str) and _MD5.fullmatch(digest)):
                raise InitlabError(
                    f"dataset {self.name!r}: md5 {digest!r} for {file} is not 32 lowercase hex "
                    "digits; give the md5sum of the file, or None to skip the check"
                )
        if len(self.image_shape) != 2 or min(self.image_shape) < 1:
            raise InitlabError(
                f"dataset {self.name!r}: image_shape {self.image_shape!r} must be (rows, cols) >= 1"
            )
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "mirrors", tuple(self.mirrors))
        object.__setattr__(self, "image_shape", tuple(self.image_shape))
        object.__setattr__(self, "md5", MappingProxyType(dict(self.md5)))

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def expected_md5(self, file: str) -> str | None:
        """The md5 ``file`` must have, or ``None`` when it is not checked."""
        return self.md5.get(file)

    def urls(self, file: str) -> list[str]:
        """Download URLs for ``file``, one per mirror, in mirror order."""
        return [f"{mirror.rstrip('/')}/{file}" for mirror in self.mirrors]


FASHION_MNIST = DatasetSource(
    name="fashion-mnist",
    classes=(
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),  # fmt: skip
    # md5s published in the official repository's README (zalandoresearch/fashion-mnist).
    md5={
        TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
        TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
        TEST_LABELS: "bb300cfdad3c16e7a12a480ee83cd310",
    },
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion",
    ),
    reference="Xiao, Rasul, Vollgraf (2017), Fashion-MNIST, arXiv:1708.07747; "
    "https://github.com/zalandoresearch/fashion-mnist (MIT)",
)

MNIST = DatasetSource(
    name="mnist",
    classes=tuple(str(d) for d in range(10)),
    # The official md5s (the ones torchvision checks); the copies in
    # /work/shared/data/mnist were verified against them.
    md5={
        TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
        TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
        TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
    },
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist",
        "https://storage.googleapis.com/cvdf-datasets/mnist",
        "http://yann.lecun.com/exdb/mnist",
    ),
    reference="LeCun, Bottou, Bengio, Haffner (1998), Gradient-based learning applied to "
    "document recognition; http://yann.lecun.com/exdb/mnist/",
)

#: Known datasets by name. Add your own :class:`DatasetSource` here to make its
#: name loadable, or pass the source object itself to the loader.
DATASETS: dict[str, DatasetSource] = {s.name: s for s in (FASHION_MNIST, MNIST)}

DEFAULT_DATASET = FASHION_MNIST.name


def get_source(name: str | DatasetSource) -> DatasetSource:
    """The :class:`DatasetSource` for ``name`` (sources pass through unchanged)."""
    if isinstance(name, DatasetSource):
        return name
    if not isinstance(name, str):
        raise InitlabError(
            f"dataset must be a name or a DatasetSource, not {type(name).__name__}; "
            f"known names: {', '.join(DATASETS)}"
        )
    key = name.strip().lower().replace("_", "-")
    if key in DATASETS:
        return DATASETS[key]
    raise UnknownNameError(
        f"unknown dataset {name!r}{suggest(key, list(DATASETS))}; "
        f"known datasets: {', '.join(DATASETS)}"
    )
