"""`evaluate()`: measures a run, an exported model or a dataset's own images offline.

A run or an export is loaded as its family's drawing source, and its family measures it
(`Family.evaluate`: FID, KID and the classifier's measures for noise GANs; L1, PSNR, SSIM, FID
and cycle error for image to image). The measures themselves are `kgan.metrics`.
"""

from __future__ import annotations

from pathlib import Path

from kgan import checkpoint, families, metrics, runs, serving, trackers
from kgan.config import TrainConfig, images_to_compare, one_of, seed_value
from kgan.errors import KganError, NotRecorded


def evaluate(run_dir: str | Path | None = None, model: str | Path | None = None,
             dataset: str | None = None, n: int = 10000, features: str = "classifier",
             classifier_path: str | Path | None = None, seed: int = 0,
             real_split: str = "test", on_train=None, ema: bool = True) -> dict:
    """Evaluates a run's latest checkpoint, an exported model, or (the floor) a dataset's own
    training images against its real test images.

    A run trained with `--ema` is evaluated with the moving average of its generator (`ema`).
    Conditional generators draw the classes in turn, and the classifier's `label_accuracy` is
    reported beside FID and KID. For a run, the result is also appended to its `metrics.jsonl`
    (with `"source": "eval"`). `features`, `classifier_path` and `real_split` are for noise
    GANs; image-to-image models are measured on their dataset's held-out pairs.
    """
    images_to_compare("n", n)
    seed_value("seed", seed)
    one_of(("test", "train"))("real_split", real_split)
    if sum(source is not None for source in (run_dir, model, dataset)) != 1:
        raise KganError("Evaluate one of: a run directory, an exported --model, a --dataset")
    if dataset is not None:
        fake, _ = metrics.real_images(dataset, None, n, "train", seed + 1)
        ext = metrics.extractor(features, dataset, None, classifier_path, on_train)
        result = metrics.Reference(ext, dataset, None, n, real_split, seed).compare(fake)
        return {"dataset": dataset, "images": "real train split", **result}
    if model is not None:
        version_dir = serving.resolve(model)
        config = TrainConfig.from_dict(serving.metadata(version_dir)["training_config"])
        family = families.of(config.arch)
        source = (family.export_sampler(version_dir) if family.samples
                  else family.export_translator(version_dir))
        record = {"model": str(version_dir)}
    else:
        run_dir, config = runs.open_run(run_dir)
        family = families.of(config.arch)
        gan, _ = checkpoint.load_gan(run_dir, ema=ema)
        source = (family.sampler(gan, run_dir) if family.samples
                  else family.translator(gan, run_dir))
        records, _ = runs.read_metrics(run_dir)
        epoch = max([r["epoch"] for r in records if r.get("step", 0) <= gan.steps], default=0)
        record = {"epoch": epoch, "step": gan.steps, "source": "eval"}
    result = {**record, **family.evaluate(source, config, n, seed, on_train, features=features,
                                          classifier_path=classifier_path,
                                          real_split=real_split)}
    result["protocol"]["family"] = family.name  # which measures these are
    if run_dir is not None:
        try:
            runs.append_metrics(run_dir, result)
        except KganError as e:  # the result is not lost with its record
            raise NotRecorded(f"{e} (the result above is not in the run's record)",
                              result) from None
        numbers = {f"eval/{key}": value for key, value in result.items()
                   if isinstance(value, (int, float)) and key not in ("epoch", "step")}
        try:
            trackers.record(run_dir, config, gan.steps, numbers,
                            (f"eval-step-{gan.steps}", result))
        except KganError as e:
            raise NotRecorded(f"{e} (the result above is in {runs.METRICS}, not in the "
                              "tracker)", result) from None
    return result
