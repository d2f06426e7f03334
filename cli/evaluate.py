"""`kgan eval`: FID, KID, classifier score and class coverage of a run or an exported model."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.common import RunsDir, UseEma, fail, select_backend, user_errors
from kgan import runs
from kgan.config import images_to_compare
from kgan.errors import KganError, NotRecorded


def evaluate(
    run_dir: Annotated[Path | None, typer.Argument(
        help="Run to evaluate.", show_default="the newest run in --runs-dir")] = None,
    model: Annotated[Path | None, typer.Option(
        help="Evaluate an exported model instead: saved_models/NAME or "
             "saved_models/NAME/VERSION.")] = None,
    dataset: Annotated[str | None, typer.Option(
        help="Evaluate this dataset's real training images instead (the best a GAN can do).")
    ] = None,
    n: Annotated[int, typer.Option("--n", "-n", help="Generated images to evaluate.")] = 10000,
    features: Annotated[str, typer.Option(
        help="Feature space: classifier (trained on the dataset, cached), inception (Keras' "
             "ImageNet InceptionV3) or fid-inception (the network of pytorch-fid and TF-GAN: "
             "FIDs comparable with papers).")] = "classifier",
    fid_weights: Annotated[Path | None, typer.Option(
        help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth, for --features "
             "fid-inception.", show_default="$KGAN_FID_WEIGHTS, else pytorch-fid's or kgan's "
             "cache, else downloaded")] = None,
    classifier: Annotated[Path | None, typer.Option(
        help="Use this classifier (.keras) instead of the cached one.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the generated and the real samples.")] = 0,
    real_split: Annotated[str, typer.Option(
        help="Real images to compare with: test (train if the dataset has no test split) "
             "or train.")] = "test",
    ema: UseEma = True,
    as_json: Annotated[bool, typer.Option("--json", help="Also print JSON on stdout.")] = False,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Measure a run (or an export) against real images; a run's result joins its metrics.jsonl."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    def on_train(path):
        err.print(f"Training the evaluation classifier (once; cached at {path}) ...")

    with user_errors():
        images_to_compare("n", n)
        if fid_weights is not None:
            if features != "fid-inception":
                raise KganError(f"--fid-weights is for --features fid-inception. Received: "
                                f"features={features}")
            os.environ["KGAN_FID_WEIGHTS"] = str(fid_weights)  # where metrics.fid_inception looks
        if model is None and dataset is None:
            run_dir, config = runs.open_run(run_dir or runs.newest(runs_dir))
            select_backend(config.backend)
        else:
            select_backend("tensorflow")
            run_dir = None
        from kgan import evaluate as lib  # loads Keras: after the backend is chosen

        unrecorded = None
        try:
            result = lib.evaluate(run_dir, model, dataset, n, features, classifier, seed,
                                  real_split, on_train=on_train, ema=ema)
        except NotRecorded as e:  # shown first, then the error
            result, unrecorded = e.result, str(e)
    for warning in result["protocol"]["warnings"]:  # the metric card's
        err.print(f"[yellow]warning:[/] {warning}")
    err.print(TABLES[result["protocol"].get("family", "noise")](result))
    cov = result.get("coverage")
    if cov and (cov["missing_classes"] or cov["top_class_fraction"] > 0.5):
        err.print(f"[yellow]warning:[/] possible mode collapse: classes never generated "
                  f"{cov['missing_classes']}, largest class {cov['top_class_fraction']:.0%} of "
                  "the samples")
    if as_json:
        typer.echo(json.dumps(result))
    if unrecorded:
        fail(unrecorded)


TRANSLATION_ROWS = {  # key: (row name, format)
    "l1": ("L1 (outputs vs targets)", ".4f"), "psnr": ("PSNR dB", ".2f"), "ssim": ("SSIM", ".4f"),
    "input_l1": ("L1 of the input itself", ".4f"), "input_psnr": ("PSNR of the input itself",
                                                                  ".2f"),
    "input_ssim": ("SSIM of the input itself", ".4f"), "fid": ("FID (outputs vs targets)", ".3f"),
    "cycle_l1": ("cycle error a->b->a (L1)", ".4f"),
    "target_share": ("outputs classified as B's class", ".1%"),
    "input_target_share": ("inputs classified as B's class", ".1%"),
}


def translation_table(result: dict):
    protocol = result["protocol"]
    fid = (f"FID in {protocol['features']} features" if protocol["features"]
           else "no FID (see the warning)")
    out = Table(title=f"{protocol['n']} held-out images ({protocol['split']} split), {fid}")
    out.add_column("metric")
    out.add_column("value", justify="right")
    for key, (name, spec) in TRANSLATION_ROWS.items():
        if key in result:
            out.add_row(name, format(result[key], spec))
    return out


def table(result: dict):
    protocol = result["protocol"]
    out = Table(title=f"{protocol['n_fake']} images vs {protocol['n_real']} real "
                      f"({protocol['real_split']}) images, {protocol['features']} features")
    out.add_column("metric")
    out.add_column("value", justify="right")
    out.add_row("FID", f"{result['fid']:.3f}")
    out.add_row("KID", f"{result['kid']:.5f} ± {result['kid_std']:.5f}")
    if "classifier_score" in result:
        out.add_row("classifier score",
                    f"{result['classifier_score']:.3f} ± {result['classifier_score_std']:.3f}")
        cov = result["coverage"]
        out.add_row("class coverage entropy", f"{cov['entropy_normalized']:.3f} (1 = uniform)")
        out.add_row("classes never generated", str(len(cov["missing_classes"])))
    if "label_accuracy" in result:
        out.add_row("label accuracy (conditional)", f"{result['label_accuracy']:.4f}")
    if protocol.get("classifier_accuracy") is not None:
        out.add_row("classifier test accuracy", f"{protocol['classifier_accuracy']:.4f}")
    return out


TABLES = {"noise": table, "translation": translation_table}  # by the result's family
