"""`report.html`: a self-contained page of a run (sample timeline, curves, config, metrics).

Images are linked by relative paths, so the page works from the run folder with no server.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from kgan import runs

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
.timeline { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figcaption { text-align: center; font-size: 0.9em; }
img { image-rendering: pixelated; }
.problem { color: #a00; }
"""
# Each image marks itself when it loads or fails, so a headless browser test can check them.
_IMG = '<img src="{src}" alt="{alt}" {size}onload="this.dataset.loaded=1" ' \
       'onerror="this.dataset.failed=1">'


def write(run_dir: Path) -> Path:
    """Writes `run_dir/report.html` (atomically) and returns its path."""
    metrics = runs.read_metrics(run_dir)
    info, records = runs.summary(run_dir, metrics), metrics[0]
    config = json.loads((run_dir / runs.CONFIG).read_text())
    grids = sorted((run_dir / runs.SAMPLES).glob("epoch-*.png"))
    parts = [f"<h1>{html.escape(run_dir.name)}</h1>",
             f"<p>Status: <b>{html.escape(info['status'])}</b> &middot; epoch "
             f"{info['epochs_done']} of {info['epochs']} &middot; step {info['step']}</p>"]
    parts += [f'<p class="problem">{html.escape(p)}</p>' for p in info["problems"]]
    if (run_dir / runs.CURVES).exists():
        parts += ["<h2>Curves</h2>", _img(runs.CURVES, "training curves")]
    if grids:
        parts.append("<h2>Samples (same noise every epoch)</h2><div class='timeline'>")
        for grid in grids:
            epoch = int(grid.stem.split("-")[1])
            src = f"{runs.SAMPLES}/{grid.name}"
            parts.append(f"<figure>{_img(src, f'epoch {epoch}', width=242)}"
                         f"<figcaption>epoch {epoch}</figcaption></figure>")
        parts.append("</div>")
    if records:
        keys = [k for k in records[-1] if k not in ("epoch", "protocol")]
        parts += ["<h2>Metrics</h2><table><tr><th>epoch</th>",
                  *(f"<th>{html.escape(k)}</th>" for k in keys), "</tr>"]
        for record in records:
            cells = "".join(f"<td>{_fmt(record.get(k))}</td>" for k in keys)
            parts.append(f"<tr><td>{record['epoch']}</td>{cells}</tr>")
        parts.append("</table>")
    cards = [r["protocol"] for r in records if isinstance(r.get("protocol"), dict)]
    if cards:  # how the last evaluation's numbers were made
        parts += ["<h2>Metric card (last evaluation)</h2><table>",
                  *(f"<tr><th>{html.escape(k)}</th><td>{html.escape(json.dumps(v))}</td></tr>"
                    for k, v in cards[-1].items()), "</table>"]
    parts += ["<h2>Config</h2><table>",
              *(f"<tr><th>{html.escape(k)}</th><td>{html.escape(json.dumps(v))}</td></tr>"
                for k, v in config.items()), "</table>"]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(run_dir.name)}"
            f"</title><style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
    path = run_dir / runs.REPORT
    with runs.atomic_path(path) as tmp:
        tmp.write_text(page)
    return path


def _img(src: str, alt: str, width: int | None = None) -> str:
    size = f'width="{width}" ' if width else ""
    return _IMG.format(src=html.escape(src), alt=html.escape(alt), size=size)


def _fmt(value) -> str:
    if isinstance(value, dict) and "alarms" in value:  # the watchdog's verdict
        return html.escape("; ".join(value["alarms"]) or value["status"])
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))
