"""`Family`: what a family of architectures gives the shared code (training, drawing, export,
evaluation), so that none of it tests an arch or a family by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kgan.config import TrainConfig
from kgan.errors import KganError


class Grid:
    """A run's per-epoch picture: `draw(model)` -> a uint8 grid image; `spread(model)` -> the
    diversity of the raw generator's images (`kgan.health.diversity`), or None where it says
    nothing (an output that follows its input)."""

    def draw(self, model) -> np.ndarray:
        raise NotImplementedError

    def spread(self, model) -> float | None:
        return None


class Family:
    """The interface of a family package's `FAMILY` (see `kgan.families`).

    Attributes:
        name: its key in `kgan.families.FAMILIES`.
        batch_unit: what one batch row is, for messages ("images", "images a side").
        distributes: it trains under `--strategy` (else on one device).
        samples: its models draw images from noise (`sampler`, `kgan sample`).
        translates: its models translate images (`translator`, `kgan translate`).
    """

    name: str
    batch_unit = "images"
    distributes = False
    samples = False
    translates = False

    def check(self, config: TrainConfig) -> None:
        """Checks what the config's own checks cannot (before any data is read)."""

    def load(self, config: TrainConfig, split: str = "train", progress=None):
        """The run's data of `split` (a `kgan.data.Dataset`; image to image, a
        `kgan.families.translation.sides.Pairs`), with the `key` a resume checks."""
        raise NotImplementedError

    def fill(self, config: TrainConfig, data) -> None:
        """Fills in `config`'s fields that come from the data, and checks the data fits."""
        raise NotImplementedError

    def arrays(self, config: TrainConfig, data) -> tuple:
        """What each training step gets, read by index: its first array's rows are the run's."""
        raise NotImplementedError

    def paired(self, config: TrainConfig) -> bool:
        """Whether the arrays share one order (else each has its own)."""
        return True

    def networks(self, config: TrainConfig) -> dict:
        """The networks of `config.arch` (its row's `builders`), by the model's argument names."""
        raise NotImplementedError

    def model(self, config: TrainConfig, networks: dict, optimizer, steps_per_epoch: int = 1,
              **compile):
        """The compiled model over `networks`; `optimizer(rate)` makes each optimizer,
        `compile` are Keras' (`jit_compile`, `steps_per_execution`)."""
        raise NotImplementedError

    def grid(self, config: TrainConfig, data) -> Grid:
        raise NotImplementedError

    def sampler(self, model, where: Path):
        """A `kgan.drawing.Source` of a run's model at `where` (`kgan sample`)."""
        raise KganError(self.no_sampling(where))

    def translator(self, model, where: Path):
        """A `kgan.drawing.Translation` of a run's model at `where` (`kgan translate`)."""
        raise KganError(self.no_translation(where))

    def export_sampler(self, version_dir: Path):
        raise KganError(self.no_sampling(version_dir))

    def export_translator(self, version_dir: Path):
        raise KganError(self.no_translation(version_dir))

    def export_generator(self, version_dir: Path):
        """An export's generator as `kgan.project` moves through it (a noise family's)."""
        raise KganError(self.no_sampling(version_dir))

    def no_sampling(self, where: Path, arch: str | None = None) -> str:
        """Why the run (of `arch`) or export at `where` cannot be sampled."""
        return f"{where} cannot be sampled"

    def no_translation(self, where: Path, arch: str | None = None) -> str:
        """Why the run (of `arch`) or export at `where` cannot translate."""
        return f"{where} does not translate images"

    def write_export(self, model, config: TrainConfig, path: Path, max_batch: int,
                     ema: bool) -> dict:
        """Writes the SavedModel's signatures; returns what `kgan.json` says of them (the
        warm-up requests are built from `export_checks`' inputs)."""
        raise NotImplementedError

    def export_checks(self, model, n: int) -> tuple[list, dict, dict]:
        """The export check's calls, their inputs and the answers `model` gives them."""
        raise NotImplementedError

    def forward_paths(self, model, n: int) -> list[tuple[str, object, list]]:
        """The generator's forward paths as `(name, keras.Model, inputs)`: what
        `kgan export --format keras|litert|onnx` writes, one file each, and checks on `inputs`
        (`n` rows, in the model's input order; images in [-1, 1] out)."""
        raise NotImplementedError

    def evaluate_against(self, model, reference, n: int, seed: int) -> dict:
        """Measures a training model against `reference` (`kgan.metrics.Reference`): what
        `--eval-every` logs."""
        raise KganError("--eval-every is for noise-to-image GANs")

    def evaluate(self, source, config: TrainConfig, n: int, seed: int, on_train=None,
                 **options) -> dict:
        """Measures `source` (a `sampler` or `translator`, of a run or an export)."""
        raise NotImplementedError
