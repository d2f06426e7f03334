"""Performance policy: XLA, fused steps and mixed precision, from the arch's measured defaults
(`kgan.families.Arch`) and the machine (`docs/performance.md` has the measurements)."""

from __future__ import annotations

from kgan import families
from kgan.config import TrainConfig


def jit_compile(config: TrainConfig, replicas: int = 1) -> bool:
    """XLA for the step: `--jit`, else where it measured faster. JAX always compiles with XLA;
    torch.compile cannot do wgan-gp's double backward, so off."""
    if config.jit is not None:
        return config.jit
    if config.backend == "tensorflow" and replicas > 1:
        return False  # Keras' XLA step failed under MirroredStrategy (TF 2.21)
    if config.backend == "tensorflow" and config.conditional and config.r1:
        return False  # XLA ran this step (R1 through the label projection) at 5 s, not 10 ms
    return {"jax": True, "torch": False}.get(config.backend, families.arch(config.arch).jit)


def steps_per_execution(config: TrainConfig, replicas: int = 1) -> int:
    """Steps fused into one TensorFlow call (the JAX trainer loops in Python either way, and
    Keras' torch trainer allows only 1)."""
    if config.steps_per_execution is not None:
        return config.steps_per_execution
    if replicas > 1:
        return 1  # Keras' multi-step loop failed to run under MirroredStrategy (TF 2.21)
    return families.arch(config.arch).fused_steps if config.backend == "tensorflow" else 1


def mixed_precision(config: TrainConfig) -> bool:
    """`config.mixed_precision`, or where it is None (auto): whether this run gains from it
    (an arch with `bfloat16` on TensorFlow on a CPU with bfloat16 units; not on GPUs,
    unmeasured)."""
    if config.mixed_precision is not None:
        return config.mixed_precision
    return (config.backend == "tensorflow" and families.arch(config.arch).bfloat16
            and cpu_has_bfloat16() and not _tensorflow_gpu(config))


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (x86 AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line for line in cpuinfo if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _tensorflow_gpu(config: TrainConfig) -> bool:
    """Whether the run is on TensorFlow and TensorFlow sees a GPU."""
    if config.backend != "tensorflow":
        return False
    import tensorflow as tf  # only on the TensorFlow backend: the others may lack its GPU

    return bool(tf.config.list_physical_devices("GPU"))


def precision_policy(config: TrainConfig) -> str:
    """`float32`, or with `mixed_precision`: `mixed_float16` where TensorFlow has a GPU (with
    loss scaling), else `mixed_bfloat16` (TPUs and CPUs; JAX and PyTorch everywhere)."""
    if not mixed_precision(config):
        return "float32"
    return "mixed_float16" if _tensorflow_gpu(config) else "mixed_bfloat16"
