"""Image-to-image data: sides A and B, paired (pix2pix) or unpaired (cyclegan), from A/ and B/
folders (each side packed and read by index like any folder, `kgan.data.load`), an `.npz` with
`x_a` and `x_b`, or the Fashion-MNIST demos."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from PIL import Image

from kgan import data
from kgan.data import sources as data_sources
from kgan.errors import KganError, NoSplit, first_line

DEMOS = {  # fashion_mnist:<demo> -> what it asks the model to do
    "inpaint": "a 12x12 gray square masked out -> the whole image",
    "superres": "7x7 (shown at 28x28) -> 28x28",
    "edges": "edge map (scikit-image's Sobel, thresholded) -> the image",
    "sandals2sneakers": "unpaired: sandals (class 5) <-> sneakers (class 7)",
}
UNPAIRED_DEMOS = {"sandals2sneakers": (5, 7)}  # Fashion-MNIST classes of A and B
INPAINT_SIZE = 12  # side of the masked square


@dataclasses.dataclass
class Pairs:
    """Images of two domains A and B, float32 in [-1, 1], channels-last (arrays, or `Images`
    read by index for folders).

    Paired: `a[i]` translates to `b[i]`. Unpaired: any counts. `domains` are the eval
    classifier's classes of A and B, where the domains are classes (the unpaired demo).
    """

    name: str
    a: np.ndarray | data.Images
    b: np.ndarray | data.Images
    paired: bool
    domains: tuple[int, int] | None = None
    key: str = ""  # what identifies the source's content (`key`): a resume checks it

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The shape of A's images (B's may differ in channels)."""
        return tuple(int(d) for d in self.a.shape[1:])

    @property
    def channels(self) -> tuple[int, int]:
        return int(self.a.shape[-1]), int(self.b.shape[-1])


def is_demo(source: str) -> bool:
    return source.startswith("fashion_mnist:")


def load_pairs(source: str, image_size: int | None = None, split: str = "train",
               paired: bool = True, progress=None) -> Pairs:
    """Loads the A and B images of `source` for pix2pix (`paired`) or cyclegan.

    Args:
        source: `fashion_mnist:<demo>` (see `DEMOS`), a folder with `A/` and `B/` (test split:
            `test/A/` and `test/B/`), or an `.npz` with `x_a`, `x_b` (test: `x_a_test`,
            `x_b_test`). Paired folders pair files of the same relative path.
        image_size: resize both sides to this square size (a multiple of 4); `None` keeps
            the images' own (square) size.
        split: `"train"` or `"test"`.
        paired: whether `a[i]` must translate to `b[i]`.
        progress: `progress(done, total)` while a folder's side is packed (the first time).

    Example:
        >>> pairs = load_pairs("fashion_mnist:inpaint")
        >>> pairs.a.shape, pairs.b.shape
        ((60000, 28, 28, 1), (60000, 28, 28, 1))
    """
    if is_demo(source):
        pairs = _demo(source, split)
        pairs.key = source
        if pairs.paired != paired:
            kind = "paired (--arch pix2pix)" if pairs.paired else "unpaired (--arch cyclegan)"
            raise KganError(f"Dataset {source} is {kind}")
    else:
        path = Path(source).expanduser()
        if path.is_dir():
            side_a, side_b = _pair_folders(path, split, paired, image_size, progress)
            a, b, digest = side_a.x, side_b.x, f"{side_a.key}+{side_b.key}"
        elif path.suffix == ".npz" and path.is_file():
            (a, b), digest = _pair_npz(path, split, paired), data.key(source)
        elif path.exists():
            raise KganError(f"Dataset {source} is a file, but not an .npz: give a folder with "
                            "A/ and B/, or an .npz file with x_a and x_b")
        else:
            raise KganError(f"Dataset not found: {source} (image-to-image runs take a folder "
                            f"with A/ and B/, an .npz with x_a and x_b, or one of "
                            f"{', '.join('fashion_mnist:' + d for d in DEMOS)})")
        pairs = Pairs(data.slug(path.stem if path.is_file() else path.resolve().name), a, b, paired,
                      key=digest)
    if image_size is not None:  # arrays (folders are read at that size)
        pairs.a, pairs.b = (side if side.shape[1:3] == (image_size, image_size)
                            else data.resize_batch(side, image_size) for side in (pairs.a, pairs.b))
    height, width = pairs.a.shape[1:3]
    if height != width or height % 4:
        raise KganError(f"Images of {source} are {height}x{width}: image-to-image runs need "
                        "square sides divisible by 4 (resize with --image-size, e.g. 32)")
    return pairs


def _demo(source: str, split: str) -> Pairs:
    demo = source.split(":", 1)[1]
    if demo not in DEMOS:
        raise KganError(f"Unknown demo {source!r}. Valid demos: "
                        f"{', '.join('fashion_mnist:' + d for d in DEMOS)}")
    x, y = data.load_builtin("fashion_mnist", split)
    x = data.to_unit_range(x, source)
    name = f"fashion_mnist-{demo}"
    if demo in UNPAIRED_DEMOS:
        a, b = UNPAIRED_DEMOS[demo]
        return Pairs(name, x[y == a], x[y == b], paired=False, domains=(a, b))
    if demo == "inpaint":
        # One square per image at a position keyed by the split, so each split is fixed.
        rng = np.random.default_rng(0 if split == "train" else 1)
        corners = rng.integers(0, x.shape[1] - INPAINT_SIZE + 1, (len(x), 2))
        offsets = np.arange(x.shape[1])[None, :]
        inside = [(offsets >= corners[:, i : i + 1]) & (offsets < corners[:, i : i + 1]
                                                       + INPAINT_SIZE) for i in (0, 1)]
        mask = inside[0][:, :, None] & inside[1][:, None, :]
        inputs = np.where(mask[..., None], 0.0, x).astype(np.float32)
    elif demo == "superres":
        n, h, w, c = x.shape
        small = x.reshape(n, h // 4, 4, w // 4, 4, c).mean(axis=(2, 4))  # 4x4 block means
        inputs = np.repeat(np.repeat(small, 4, axis=1), 4, axis=2).astype(np.float32)
    else:  # edges
        from skimage.filters import sobel  # scikit-image loads slowly: only for this demo

        magnitude = sobel((x[..., 0] + 1.0) / 2.0, axis=(1, 2))
        inputs = np.where(magnitude > 0.1, 1.0, -1.0).astype(np.float32)[..., None]
    return Pairs(name, inputs, x, paired=True)


def _pair_folders(root: Path, split: str, paired: bool, image_size: int | None,
                  progress) -> tuple[data.Dataset, data.Dataset]:
    """A/ and B/ of `root` (or of `root/test`), each packed and read by index like any folder
    (`load`). Paired sides hold files of the same relative paths, which sort alike."""
    base = root if split == "train" else root / split
    sides = [base / "A", base / "B"]
    if not base.is_dir():
        raise NoSplit(f"{root} has no {split}/ folder")
    for side in sides:
        if not side.is_dir():
            where = "" if split == "train" else f" (the {split} split)"
            raise KganError(f"{root} has no {side.relative_to(root)}/ folder{where}: image-to-"
                            "image data is a folder with A/ (inputs) and B/ (targets)")
    names = [data_sources.folder_files(side) for side in sides]  # relative paths, sorted
    if paired:
        for one, other, side, other_side in ((*names, *sides), (*names[::-1], *sides[::-1])):
            missing = sorted(set(one) - set(other), key=lambda name: name.split(os.sep))
            if missing:
                raise KganError(f"{side / missing[0]} has no partner {other_side / missing[0]} "
                                "(paired data needs files of the same names in A/ and B/)")
    if image_size is None:  # the images' own size, read from their headers: one for all
        ordered = [[side / name for name in side_names] for side, side_names in zip(sides, names)]
        sizes = [[_header_size(path) for path in paths] for paths in ordered]
        if paired:
            for pa, pb, sa, sb in zip(*ordered, *sizes):
                if sa != sb:
                    raise KganError(f"{pa} is {sa[0]}x{sa[1]} but {pb} is {sb[0]}x{sb[1]}: a "
                                    "pair must be the same size")
        for paths, side_sizes in zip(ordered, sizes):
            for path, size in zip(paths, side_sizes):
                if size != sizes[0][0]:
                    raise KganError(
                        f"{path} is {size[0]}x{size[1]} but {ordered[0][0]} is "
                        f"{sizes[0][0][0]}x{sizes[0][0][1]}: give --image-size to resize them "
                        "all")
        width, height = sizes[0][0]
        if width != height or width % 4:
            raise KganError(f"Images of {root} are {height}x{width}: image-to-image runs need "
                            "square sides divisible by 4 (resize with --image-size, e.g. 32)")
        image_size = width
    return tuple(data.load(str(side), image_size, crop="none", progress=progress) for side in sides)


def _header_size(path: Path) -> tuple[int, int]:
    """(width, height) from an image file's header (nothing is decoded)."""
    try:
        with Image.open(path) as img:
            return img.size
    except data_sources.DECODE_ERRORS as e:
        raise KganError(f"Cannot read image {path}: {data_sources.why_unreadable(e)}") from None


def _pair_npz(path: Path, split: str, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    suffix = "" if split == "train" else f"_{split}"
    keys = (f"x_a{suffix}", f"x_b{suffix}")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [key for key in keys if key not in f.files]
            if split != "train" and missing == list(keys):
                raise NoSplit(f"{path} has no {split} split ({' or '.join(keys)})")
            if missing:
                raise KganError(f"{path} has no `{missing[0]}` array (found: "
                                f"{', '.join(f.files) or 'nothing'})")
            sides = [f[key] for key in keys]
    except KganError:
        raise
    except Exception as e:
        raise KganError(f"Cannot read {path}: {first_line(e)}") from None
    for key, x in zip(keys, sides):
        if x.dtype.kind not in "uifb" or x.ndim not in (3, 4) or len(x) == 0 or (
                x.ndim == 4 and x.shape[-1] not in (1, 3)):
            raise KganError(f"`{key}` in {path} must hold numbers of shape (N, H, W) or "
                            f"(N, H, W, 1|3) with N > 0. Received: shape={x.shape}, "
                            f"dtype={x.dtype}")
    a, b = (x[..., None] if x.ndim == 3 else x for x in sides)
    if paired and (len(a) != len(b) or a.shape[1:3] != b.shape[1:3]):
        raise KganError(f"`{keys[0]}` and `{keys[1]}` in {path} must pair up: the same number "
                        f"of images of the same size. Received: shapes {a.shape} and {b.shape}")
    if a.shape[1:3] != b.shape[1:3]:
        raise KganError(f"`{keys[0]}` and `{keys[1]}` in {path} must hold images of the same "
                        f"size. Received: shapes {a.shape} and {b.shape}")
    return data.to_unit_range(a, f"{path} {keys[0]}"), data.to_unit_range(b, f"{path} {keys[1]}")
