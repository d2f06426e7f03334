"""`kgan train`: train a GAN, or resume one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.common import select_backend, user_errors
from kgan import runs
from kgan.config import TrainConfig
from kgan.errors import KganError

_D = TrainConfig()


def train(
    ctx: typer.Context,
    epochs: Annotated[int | None, typer.Option(
        help="Total epochs.", show_default=f"{_D.epochs}; with --resume, the run's own")] = None,
    dataset: Annotated[str, typer.Option(
        help="mnist, fashion_mnist, cifar10, a folder of png/jpg images (sub-folders are classes) "
             "or an .npz with x_train (and y_train).")] = _D.dataset,
    image_size: Annotated[int | None, typer.Option(
        help="Resize images to this square size.",
        show_default="the dataset's own; folders 64")] = None,
    arch: Annotated[str, typer.Option(help="Architecture: mlp or dcgan.")] = _D.arch,
    loss: Annotated[str, typer.Option(
        help="Loss: bce (non-saturating), minimax, lsgan, hinge or wgan-gp.")] = _D.loss,
    batch_size: Annotated[int, typer.Option(help="Batch size.")] = _D.batch_size,
    latent_dim: Annotated[int, typer.Option(help="Length of the noise vector z.")] = _D.latent_dim,
    lr: Annotated[float, typer.Option(help="Adam learning rate of G and D.")] = _D.lr,
    beta1: Annotated[float, typer.Option(help="Adam beta_1.")] = _D.beta1,
    beta2: Annotated[float, typer.Option(help="Adam beta_2.")] = _D.beta2,
    d_steps: Annotated[int, typer.Option(
        help="Discriminator updates per generator update.")] = _D.d_steps,
    gp_weight: Annotated[float, typer.Option(
        help="wgan-gp gradient penalty weight.")] = _D.gp_weight,
    seed: Annotated[int, typer.Option(
        help="Seed of weights, data order, noise and sample grid.")] = _D.seed,
    steps_per_epoch: Annotated[int | None, typer.Option(
        help="Cap on steps per epoch (quick runs).", show_default="one pass over the data")] = None,
    jit: Annotated[bool | None, typer.Option(
        "--jit/--no-jit", help="XLA compilation.",
        show_default="on for mlp, off for dcgan")] = None,
    steps_per_execution: Annotated[int | None, typer.Option(
        help="Training steps fused into one TensorFlow call (fewer progress updates).",
        show_default="16 for mlp on tensorflow, else 1")] = None,
    strategy: Annotated[str, typer.Option(
        help="Devices: auto (TPU, else all GPUs mirrored, else one device), default (one "
             "device), mirrored, multiworker (reads TF_CONFIG) or tpu.")] = _D.strategy,
    mixed_precision: Annotated[bool, typer.Option(
        "--mixed-precision", help="Compute in float16 on a GPU with TensorFlow (loss-scaled), "
        "else bfloat16; weights, logits and the gradient penalty stay float32.")] = False,
    conditional: Annotated[bool, typer.Option(
        "--conditional", help="Class-conditional GAN: G takes a label embedding, D a projection "
        "head (needs labels: sub-folders, y_train or a built-in).")] = False,
    ema: Annotated[float | None, typer.Option(
        help="Keep a moving average of G's weights with this decay (e.g. 0.999); sample, eval "
             "and export use it.", show_default="off")] = None,
    ema_start: Annotated[int, typer.Option(
        help="Generator steps before the average starts (it copies G until then).")
    ] = _D.ema_start,
    spectral_norm: Annotated[bool, typer.Option(
        "--spectral-norm", help="Spectrally normalize D's layers.")] = False,
    r1: Annotated[float, typer.Option(
        help="R1 penalty weight gamma on real images (e.g. 10; 0 = off).")] = _D.r1,
    r1_every: Annotated[int, typer.Option(
        help="Compute R1 every N discriminator steps (lazy regularization).")] = _D.r1_every,
    augment: Annotated[str, typer.Option(
        help="DiffAugment D's inputs, real and fake: comma-separated translation, cutout, "
             "color.", show_default="none")] = _D.augment,
    backend: Annotated[str, typer.Option(
        help="Keras backend: tensorflow, jax or torch.", envvar="KERAS_BACKEND")] = _D.backend,
    runs_dir: Annotated[Path, typer.Option(help="Where run directories go.")] = Path("runs"),
    name: Annotated[str | None, typer.Option(
        help="Run directory suffix.", show_default="<arch>-<dataset>")] = None,
    resume: Annotated[Path | None, typer.Option(
        help="Continue this run directory from its last checkpoint.")] = None,
    sample_every: Annotated[int, typer.Option(
        help="Write a sample grid every N epochs.")] = _D.sample_every,
    checkpoint_every: Annotated[int, typer.Option(
        help="Write a checkpoint every N epochs.")] = _D.checkpoint_every,
    eval_every: Annotated[int | None, typer.Option(
        help="Measure FID/KID every N epochs and keep checkpoints/best.keras.",
        show_default="never")] = None,
    eval_n: Annotated[int, typer.Option(
        help="Images per evaluation during training.")] = _D.eval_n,
    tensorboard: Annotated[bool, typer.Option(
        help="Write TensorBoard event files (view: tensorboard --logdir runs).")] = _D.tensorboard,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Train a GAN; print the run directory on stdout when done.

    Ctrl-C stops after the current step, saves a checkpoint and prints the command to resume.
    """
    with user_errors():
        if resume is not None:
            _, config = runs.open_run(resume)
            _check_resume_options(ctx, resume)
            if epochs is not None:
                config.epochs = epochs
                config.validate()
        else:
            config = TrainConfig(
                dataset=dataset, image_size=image_size, arch=arch, loss=loss,
                latent_dim=latent_dim, batch_size=batch_size,
                epochs=_D.epochs if epochs is None else epochs, steps_per_epoch=steps_per_epoch,
                lr=lr, beta1=beta1, beta2=beta2, d_steps=d_steps, gp_weight=gp_weight, seed=seed,
                jit=jit, steps_per_execution=steps_per_execution, sample_every=sample_every,
                checkpoint_every=checkpoint_every,
                tensorboard=tensorboard, eval_every=eval_every, eval_n=eval_n, backend=backend,
                strategy=strategy, mixed_precision=mixed_precision, conditional=conditional,
                ema=ema, ema_start=ema_start, spectral_norm=spectral_norm, r1=r1,
                r1_every=r1_every, augment=augment,
            ).validate()
        select_backend(config.backend)
        from kgan import training
        from kgan.callbacks import RichProgress

        progress = [] if quiet else [RichProgress(config.batch_size)]
        notify = None if quiet else lambda line: typer.echo(line, err=True)
        if resume is not None:
            result = training.resume(resume, epochs=epochs, callbacks=progress, notify=notify)
        else:
            result = training.train(config, runs_dir=runs_dir, name=name, callbacks=progress,
                                    notify=notify)
    typer.echo(result.run_dir)
    if result.status == "interrupted":
        typer.echo(
            f"Interrupted after {result.step} steps (epoch {result.epoch + 1} in progress). "
            f"Checkpoint saved. Resume with:\n  kgan train --resume {result.run_dir}", err=True)
        raise typer.Exit(130)


RESUME_OPTIONS = {"resume", "epochs", "quiet", "runs_dir"}  # --runs-dir: only where new runs go


def _check_resume_options(ctx: typer.Context, resume: Path) -> None:
    """A resumed run keeps its config.json: refuse options that would silently be ignored."""
    for param in ctx.params:
        source = ctx.get_parameter_source(param)
        if param not in RESUME_OPTIONS and source is not None and source.name == "COMMANDLINE":
            flag = "--" + param.replace("_", "-")
            raise KganError(f"{flag} cannot change when resuming: {resume}/config.json fixes the "
                            "run's settings (only --epochs and --quiet apply)")
