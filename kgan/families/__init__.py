"""The registry: every architecture as one row, and the family that trains it.

A family is a package beside this module (`kgan.families.noise`, `kgan.families.translation`)
whose `FAMILY` implements `kgan.families.family.Family`: defaults, checks, data, build, grid,
drawing source, serving signatures and their checks, evaluation. Shared code asks the registry
(`of(config)`) and never tests an arch by name.

This module is data only, with no Keras import: `kgan.config` reads the rows to check and
default its options before TensorFlow is loaded. A family's package is imported on first use.

To add an arch: write its builders in its family's `nets.py` and add a row here. To add a
family: a package with a `FAMILY`, a row per arch, and a `FAMILIES` line.
"""

from __future__ import annotations

import dataclasses
import importlib

from kgan.errors import KganError

FAMILIES = {  # family -> what its GANs map from and to (error messages and docs)
    "noise": "noise-to-image GANs",
    "translation": "image-to-image runs",
}


@dataclasses.dataclass(frozen=True)
class Arch:
    """One architecture: its family, builders and measured defaults."""

    name: str
    family: str  # a key of FAMILIES: the package kgan.families.<family>
    about: str  # for `--arch` in `kgan train --help`
    builders: tuple[str, ...]  # functions of kgan.families.<family>.nets that build its models
    defaults: dict = dataclasses.field(default_factory=dict)  # its papers' option defaults
    convolutional: bool = False  # square images, sides halved down to 4..7 (noise)
    # TensorFlow performance defaults, measured on the 2-core CI machine (docs/performance.md):
    jit: bool = False  # XLA: the MLP's dense step ran 50 vs 34 steps/s; convolutions slower
    fused_steps: int = 1  # steps per call: the MLP's ~17 ms step paid ~3 ms of dispatch
    bfloat16: bool = False  # on a CPU with bfloat16 units: the DCGAN ran 1.34x at equal FID


ARCHS = {arch.name: arch for arch in (
    Arch("mlp", "noise", "the classic MLP GAN", ("mlp_generator", "mlp_discriminator"),
         jit=True, fused_steps=16),
    Arch("dcgan", "noise", "convolutional; sizes like 28, 32, 64",
         ("dcgan_generator", "dcgan_discriminator"), convolutional=True, bfloat16=True),
    Arch("resnet", "noise", "SNGAN/BigGAN residual blocks",
         ("resnet_generator", "resnet_discriminator"), convolutional=True,
         defaults={"loss": "hinge", "spectral_norm": True}),
    Arch("stylegan", "noise", "StyleGAN2-style", ("stylegan_generator", "stylegan_discriminator"),
         convolutional=True,
         defaults={"base_filters": 32, "r1": 1.0, "mapping_layers": 2, "style_mixing": 0.9}),
    Arch("custom", "noise", "your own Keras generator and discriminator, given from Python: "
         "kgan.train(config, models=(G, D))", ()),
    Arch("pix2pix", "translation", "image to image, paired A/B data",
         ("unet", "patch_discriminator"), defaults={"batch_size": 1, "l1": 100.0}),
    Arch("cyclegan", "translation", "image to image, unpaired",
         ("resnet_generator", "patch_discriminator"),
         defaults={"batch_size": 1, "loss": "lsgan", "cycle": 10.0, "identity": 0.5,
                   "pool_size": 50}),
)}


def arch(name: str) -> Arch:
    """The row of `name`; an unknown one lists the valid ones."""
    try:
        return ARCHS[name]
    except KeyError:
        raise KganError(f"Unknown arch {name!r}. Valid values: {', '.join(ARCHS)}. "
                        f"Received: arch={name}") from None


def of(name: str):
    """The `Family` that trains arch `name` (its package is imported here, on first use)."""
    return importlib.import_module(f"kgan.families.{arch(name).family}").FAMILY


def family_of_export(meta: dict):
    """The `Family` of an export, from its `kgan.json` (exports made before families were
    recorded: a translation one lists its `shapes`)."""
    name = meta.get("family") or ("translation" if "shapes" in meta else "noise")
    return importlib.import_module(f"kgan.families.{name}").FAMILY
