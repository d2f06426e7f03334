"""The training watchdog's judgement: one epoch's numbers -> a `health` record (NumPy only).

`Watchdog.check` looks at what one epoch left (its mean losses, the share of real images D
calls real, the spread of a fixed-noise batch, the evaluation's class coverage) beside the
run's earlier epochs, and says what is wrong, if anything:

    {"status": "ok" | "warning" | "diverged" | "non_finite",
     "alarms": ["D overfits: it calls 98% of real images real (r_t 0.96)", ...],
     "r_t": 0.96, "diversity": 0.31}

`diverged` and `non_finite` are the two that `--recover` acts on; `warning`s are only shown.
"""

from __future__ import annotations

import math

import numpy as np

OK, WARNING, DIVERGED, NON_FINITE = "ok", "warning", "diverged", "non_finite"
RECOVERABLE = (DIVERGED, NON_FINITE)
SEVERITY = (OK, WARNING, DIVERGED, NON_FINITE)

D_WINS = 0.05  # D's loss below this (bce, minimax, lsgan, hinge: 0 is a perfect D) ...
CLIMB_EPOCHS = 3  # ... in this many epochs in a row, while G's loss does not fall
# bce, minimax, lsgan, hinge: a loss this large means logits in the thousands (healthy runs
# stay within tens); wgan-gp's critic is unbounded and has no such ceiling.
LOSS_CEILING = 1000.0
RANGE_WINDOW = 5  # earlier epochs whose losses make the "recent range"
RANGE_MIN_HISTORY = 3  # fewer earlier epochs than this: too early to know the range
RANGE_FACTOR = 10.0  # a loss this many widths beyond its recent range is divergence
OVERFIT_RT = 0.95  # r_t = E[sign(D(real))] at or above this: D memorizes the real images
COLLAPSE_SHARE = 0.25  # diversity below this share of the run's best: collapse
COLLAPSE_FLOOR = 0.01  # diversity below this (images in [-1, 1]): all fakes look the same
COVERAGE_DROP = 0.8  # coverage entropy below this share of the run's best: classes fade


def diversity(images: np.ndarray) -> float:
    """How different a batch of images is: the mean over pixels of their standard deviation
    across the batch (images in [-1, 1]; 0 when every image is the same)."""
    images = np.asarray(images, np.float64)
    return float(np.mean(np.std(images, axis=0)))


def weights_finite(weights) -> bool:
    """True when every array in `weights` holds finite numbers only."""
    return all(np.isfinite(np.asarray(w)).all() for w in weights)  # float or integer arrays


class Watchdog:
    """Judges each epoch against the run's earlier ones.

    Args:
        bounded: the run's D loss has a floor (`kgan.losses.GANLoss.bounded`); an unbounded
            one (`wgan-gp`'s critic) has no "D wins" level and no ceiling.
        history: the run's earlier epoch records from `metrics.jsonl` (those with a `health`
            field carry the diversity and coverage seen then).
    """

    def __init__(self, bounded: bool = True, history: list[dict] = ()):
        self.bounded = bounded
        self.history = [r for r in history if "source" not in r and "d_loss" in r]

    def check(self, record: dict, finite_weights: bool = True, spread: float | None = None,
              coverage_entropy: float | None = None, missing_classes: int | None = None) -> dict:
        """The health of the epoch `record` (its `d_loss`, `g_loss` and `r_t`) and remembers
        it as history for the next epoch."""
        alarms, status = [], OK

        def alarm(level, text):
            nonlocal status
            alarms.append(text)
            status = max(status, level, key=SEVERITY.index)

        losses = {key: float(record[key]) for key in ("d_loss", "g_loss") if key in record}
        for key, value in losses.items():
            if not math.isfinite(value):
                alarm(NON_FINITE, f"{key} is {value}")
        if not finite_weights:
            alarm(NON_FINITE, "the weights hold NaN or inf")
        if status == OK:
            for text in self._divergence(losses):
                alarm(DIVERGED, text)
        r_t = record.get("r_t")
        if r_t is not None and float(r_t) >= OVERFIT_RT:
            alarm(WARNING, f"D overfits: it calls {(float(r_t) + 1) / 2:.0%} of real images "
                  f"real (r_t {float(r_t):.2f})")
        best_spread = max((r["health"]["diversity"] for r in self._with_health("diversity")),
                          default=None)
        if spread is not None and (spread < COLLAPSE_FLOOR or (
                best_spread and spread < COLLAPSE_SHARE * best_spread)):
            best = f", best {best_spread:.3f}" if best_spread else ""
            alarm(WARNING, f"collapse: the fixed-noise images are nearly alike (diversity "
                  f"{spread:.3f}{best})")
        best_entropy = max((r["coverage_entropy"] for r in self.history
                            if isinstance(r.get("coverage_entropy"), (int, float))), default=None)
        if coverage_entropy is not None and best_entropy and (
                coverage_entropy < COVERAGE_DROP * best_entropy):
            alarm(WARNING, f"collapse: class coverage fell to {coverage_entropy:.2f} (best "
                  f"{best_entropy:.2f})")
        if missing_classes:
            alarm(WARNING, f"collapse: {missing_classes} classes never generated")

        health = {"status": status, "alarms": alarms}
        if r_t is not None:
            health["r_t"] = round(float(r_t), 4)
        if spread is not None:
            health["diversity"] = round(spread, 4)
        self.history.append({**record, "health": health})
        return health

    def _with_health(self, key):
        return [r for r in self.history if isinstance(r.get("health"), dict)
                and isinstance(r["health"].get(key), (int, float))]

    def _divergence(self, losses: dict) -> list[str]:
        alarms = []
        recent = self.history[-(CLIMB_EPOCHS - 1):] if CLIMB_EPOCHS > 1 else []
        if self.bounded:
            alarms += [f"{key} {value:.4g} is beyond {LOSS_CEILING:g}: the logits have blown up"
                       for key, value in losses.items() if abs(value) > LOSS_CEILING]
        if (self.bounded and len(recent) == CLIMB_EPOCHS - 1 and "d_loss" in losses
                and "g_loss" in losses):
            d = [float(r["d_loss"]) for r in recent] + [losses["d_loss"]]
            g = [float(r["g_loss"]) for r in recent] + [losses["g_loss"]]
            if max(d) < D_WINS and g[-1] >= g[0]:
                alarms.append(f"D wins: d_loss below {D_WINS} for {CLIMB_EPOCHS} epochs while "
                              f"g_loss did not fall (now {g[-1]:.4g})")
        window = self.history[-RANGE_WINDOW:]
        if len(window) >= RANGE_MIN_HISTORY:
            for key, value in losses.items():
                earlier = [float(r[key]) for r in window if key in r]
                low, high = min(earlier), max(earlier)
                # At least half the loss's size: an epoch-to-epoch swing of a healthy run is
                # not a divergence; a loss 6x its recent size (or NaN, caught above) is.
                width = max(high - low, 0.5 * max(abs(high), abs(low)), 1e-3)
                if value > high + RANGE_FACTOR * width or value < low - RANGE_FACTOR * width:
                    alarms.append(f"{key} {value:.4g} is far outside its recent range "
                                  f"[{low:.4g}, {high:.4g}]")
        return alarms
