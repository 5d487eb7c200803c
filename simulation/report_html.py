"""Self-contained HTML reports for simulation, comparison and capacity runs.

Each page opens offline: no scripts, no external stylesheets, fonts or images. Plots are
rendered by matplotlib through ``Figure`` (no pyplot, so no GUI backend or global state) to SVG
with text drawn as paths, and inlined into the page. All text is escaped.
"""

from __future__ import annotations

import html as _html
import io
import itertools
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from simulation.results import (
    METRIC_DESCRIPTIONS,
    SHARE_METRICS,
    CapacityResult,
    ComparisonResult,
    Estimate,
    SimulationResult,
    Timeline,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TIERS = ("hot", "warm", "cold")
TTFC_DISTRIBUTIONS = {"ttfc_business_hours": "business hours", "ttfc_wall_hours": "wall-clock hours"}
COLOURS = ("#1f77b4", "#ff7f0e")

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif;
       margin: 2rem auto; max-width: 1000px; color: #222; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.significant td, tr.chosen td { background: #fff3c4; font-weight: 600; }
.note { color: #666; font-style: italic; }
.warning { background: #fff3c4; border-left: 4px solid #d49b00; padding: 6px 10px; }
figure { margin: 1rem 0; } figure svg { max-width: 100%; height: auto; }
"""

_figure_ids = itertools.count(1)


# ---------------------------------------------------------------- public API


def simulation_report(result: SimulationResult) -> str:
    """One page for one scenario: run facts, metrics with 95% CIs, and plots."""
    body = [
        f"<h1>Simulation: {_e(result.scenario)}</h1>",
        _run_facts([result]),
        _steady_state(result),
        "<h2>Metrics</h2>",
        _metrics_table(result),
        "<h2>Time to first contact</h2>",
        _plot_or_note(_ttfc_figure([result]), "No time-to-first-contact samples in this run."),
        "<h2>SLA attainment by tier</h2>",
        _plot_or_note(_sla_figure([result]), "No per-tier SLA attainment in this run."),
        "<h2>Queue depth and rep utilisation over time</h2>",
        _plot_or_note(_timeline_figure(result.timeline), "No timeline in this run."),
    ]
    return _page(f"Simulation: {result.scenario}", body)


def _steady_state(result: SimulationResult) -> str:
    check, timeline, cut = result.steady_state, result.timeline, ""
    if timeline is not None and timeline.warmup_hours > 0 and len(timeline.hours) > 1:
        horizon = timeline.hours[-1] + timeline.hours[1] - timeline.hours[0]
        cut = (f'<p class="note">Warm-up cut: the first {timeline.warmup_hours / 24:g} of {horizon / 24:.0f} days '
               "(simulated, not counted; shaded in the plots).</p>")
    if check is None:
        return cut
    css = "note" if check.steady else "warning"
    return cut + f'<p class="{css}">{_e(check.note)}</p>'


def comparison_report(result: ComparisonResult) -> str:
    """One page comparing scenario A with B: paired differences and overlaid plots."""
    a, b = result.a, result.b
    body = [
        f"<h1>Comparison: {_e(a.scenario)} (A) vs {_e(b.scenario)} (B)</h1>",
        _run_facts([a, b]),
        "<h2>Differences (B &minus; A)</h2>",
        _differences_table(result),
        "<h2>Time to first contact</h2>",
        _plot_or_note(_ttfc_figure([a, b]), "No time-to-first-contact samples in either run."),
        "<h2>SLA attainment by tier</h2>",
        _plot_or_note(_sla_figure([a, b]), "No per-tier SLA attainment in either run."),
        "<h2>Queue depth over time</h2>",
        _plot_or_note(_queue_overlay_figure(a, b), "No timeline in either run."),
    ]
    return _page(f"Comparison: {a.scenario} vs {b.scenario}", body)


def capacity_report(result: CapacityResult) -> str:
    """One page for a capacity search: target, chosen headcount, curve table and plot."""
    body = [
        f"<h1>Capacity: {_e(result.scenario)}</h1>",
        _capacity_summary(result),
        "<h2>Capacity curve</h2>",
        _capacity_table(result),
        _plot_or_note(_capacity_figure(result), "The capacity curve is empty."),
    ]
    return _page(f"Capacity: {result.scenario}", body)


def write_report(html: str, path: Path) -> Path:
    """Write the page as UTF-8, creating parent directories; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


# ---------------------------------------------------------------- formatting


def _e(text: object) -> str:
    return _html.escape(str(text), quote=True)


def _is_share(metric: str) -> bool:
    return metric.startswith("sla_attainment") or metric in SHARE_METRICS


def _fmt(metric: str, value: float, signed: bool = False) -> str:
    """Shares as percentages (differences in percentage points), counts with separators."""
    if not np.isfinite(value):
        return str(value)
    sign = "+" if signed else ""
    if _is_share(metric):
        return f"{value * 100:{sign}.1f}" + (" pp" if signed else "%")
    if abs(value) >= 100:
        return f"{value:{sign},.0f}"
    return f"{value:{sign}.2f}"


def _fmt_ci(metric: str, estimate: Estimate, signed: bool = False) -> str:
    lo, hi = estimate.ci95
    return f"[{_fmt(metric, lo, signed)}, {_fmt(metric, hi, signed)}]"


def _ordered(names: Iterable[str]) -> list[str]:
    known = list(METRIC_DESCRIPTIONS)
    return sorted(set(names), key=lambda n: (known.index(n) if n in known else len(known), n))


# ---------------------------------------------------------------- html pieces


def _page(title: str, body: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def _table(headers: Sequence[str], rows: Sequence[tuple[Sequence[str], str]], numeric: set[int]) -> str:
    """``rows`` are (already escaped cells, row css class); ``numeric`` column indexes align right."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    lines = []
    for cells, css in rows:
        tds = "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(cells))
        lines.append(f'<tr class="{css}">{tds}</tr>' if css else f"<tr>{tds}</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(lines) + "\n</tbody>\n</table>"


def _run_facts(results: Sequence[SimulationResult]) -> str:
    labels = ["A", "B"] if len(results) == 2 else [""]
    rows = [
        (
            [_e(label), _e(r.scenario), str(r.replications), f"{r.leads_simulated:,}", str(r.seed), f"{r.wall_seconds:.2f}"],
            "",
        )
        for label, r in zip(labels, results)
    ]
    headers = ["", "scenario", "replications", "leads simulated", "seed", "wall seconds"]
    if len(results) == 1:
        headers, rows = headers[1:], [(cells[1:], css) for cells, css in rows]
        return _table(headers, rows, numeric={1, 2, 3, 4})
    return _table(headers, rows, numeric={2, 3, 4, 5})


def _metrics_table(result: SimulationResult) -> str:
    if not result.metrics:
        return '<p class="note">No metrics in this run.</p>'
    rows = []
    for name in _ordered(result.metrics):
        est = result.metrics[name]
        cells = [_e(name), _e(METRIC_DESCRIPTIONS.get(name, "")), _fmt(name, est.mean), _fmt_ci(name, est)]
        rows.append((cells, ""))
    return _table(["metric", "description", "mean", "95% CI"], rows, numeric={2, 3})


def _differences_table(result: ComparisonResult) -> str:
    if not result.differences:
        return '<p class="note">No differences in this comparison.</p>'
    rows = []
    for name in _ordered(result.differences):
        d = result.differences[name]
        diff = f"{_fmt(name, d.difference.mean, signed=True)} {_fmt_ci(name, d.difference, signed=True)}"
        cells = [_e(name), _fmt(name, d.a), _fmt(name, d.b), diff, "yes" if d.significant else "no"]
        rows.append((cells, "significant" if d.significant else ""))
    note = ('<p class="note">Highlighted rows: a difference at the 5% family-wise level over every metric '
            'compared (Holm&rsquo;s step-down on paired t tests).</p>')
    return _table(["metric", "A", "B", "B − A (95% CI)", "significant"], rows, numeric={1, 2, 3}) + note


def _capacity_summary(result: CapacityResult) -> str:
    direction = "at least" if result.higher_is_better else "at most"
    target = f"{_e(result.metric)} {direction} {_fmt(result.metric, result.target)}"
    if result.smallest_meeting_target is None:
        chosen = '<span class="note">no headcount in the curve meets the target</span>'
    else:
        chosen = f"<strong>{result.smallest_meeting_target}</strong>"
    rows = [
        (["metric", _e(result.metric)], ""),
        (["description", _e(METRIC_DESCRIPTIONS.get(result.metric, ""))], ""),
        (["target", target], ""),
        (["smallest headcount meeting the target", chosen], ""),
    ]
    return _table(["", ""], rows, numeric=set())


def _capacity_table(result: CapacityResult) -> str:
    if not result.curve:
        return '<p class="note">No points on the capacity curve.</p>'
    rows = []
    for p in sorted(result.curve, key=lambda p: p.headcount):
        chosen = p.headcount == result.smallest_meeting_target
        label = f"{p.headcount} (recommended)" if chosen else str(p.headcount)
        cells = [label, _fmt(result.metric, p.metric.mean), _fmt_ci(result.metric, p.metric), "yes" if p.meets_target else "no"]
        rows.append((cells, "chosen" if chosen else ""))
    return _table(["headcount", "mean", "95% CI", "meets target"], rows, numeric={1, 2})


# ---------------------------------------------------------------- figures


def _plot_or_note(fig: Figure | None, note: str) -> str:
    if fig is None:
        return f'<p class="note">{_e(note)}</p>'
    return f"<figure>{_svg(fig)}</figure>"


def _svg(fig: Figure) -> str:
    """Inline SVG: no XML prolog or metadata, element ids prefixed so several figures can share a page."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)
    prefix = f"f{next(_figure_ids)}-"
    text = text.replace('id="', f'id="{prefix}').replace('href="#', f'href="#{prefix}').replace("url(#", f"url(#{prefix}")
    return text


def _new_figure(width: float = 8, height: float = 4, rows: int = 1) -> tuple[Figure, list]:
    from matplotlib.figure import Figure  # here, not at import: matplotlib is most of every CLI call's start-up

    fig = Figure(figsize=(width, height * rows), layout="constrained")
    axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
    return fig, list(axes)


def _finite(samples: Sequence[float]) -> np.ndarray:
    values = np.asarray(samples, dtype=float)
    return values[np.isfinite(values)]


def _ttfc_figure(results: Sequence[SimulationResult]) -> Figure | None:
    """Step histograms per TTFC distribution (one panel each), one line per result."""
    keys = [k for k in TTFC_DISTRIBUTIONS if any(_finite(r.distributions.get(k, [])).size for r in results)]
    if not keys:
        return None
    fig, axes = _new_figure(rows=len(keys), height=3.2)
    for ax, key in zip(axes, keys):
        samples = [_finite(r.distributions.get(key, [])) for r in results]
        pooled = np.concatenate(samples)
        upper = float(np.percentile(pooled, 99.5))
        bins = np.linspace(float(pooled.min()), max(upper, float(pooled.min()) + 1e-9), 41)
        for i, (_result, values) in enumerate(zip(results, samples)):
            if values.size:
                weights = np.full(values.size, 1 / values.size)
                ax.hist(np.clip(values, None, bins[-1]), bins=bins, weights=weights, histtype="step",
                        linewidth=1.6, color=COLOURS[i % 2], label=_series_label(results, i))
        ax.set_xlabel(f"time to first contact ({TTFC_DISTRIBUTIONS[key]}; tail above p99.5 in last bin)")
        ax.set_ylabel("share of leads")
        ax.legend()
    return fig


def _series_label(results: Sequence[SimulationResult], i: int) -> str:
    return results[i].scenario if len(results) == 1 else f"{'AB'[i]}: {results[i].scenario}"


def _sla_figure(results: Sequence[SimulationResult]) -> Figure | None:
    """Bars of SLA attainment per tier, side by side per result, with 95% CI error bars."""
    present = {name.removeprefix("sla_attainment_") for r in results for name in r.metrics if name.startswith("sla_attainment_")}
    tiers = [t for t in TIERS if t in present] + sorted(present - set(TIERS))
    if not tiers:
        return None
    fig, (ax,) = _new_figure(width=7)
    width = 0.8 / len(results)
    x = np.arange(len(tiers))
    for i, r in enumerate(results):
        ests = [r.metrics.get(f"sla_attainment_{t}") for t in tiers]
        means = np.array([e.mean if e else np.nan for e in ests]) * 100
        lo = np.array([e.mean - e.ci95[0] if e else 0 for e in ests]) * 100
        hi = np.array([e.ci95[1] - e.mean if e else 0 for e in ests]) * 100
        offset = (i - (len(results) - 1) / 2) * width
        ax.bar(x + offset, means, width, yerr=[np.clip(lo, 0, None), np.clip(hi, 0, None)], capsize=4,
               color=COLOURS[i % 2], label=_series_label(results, i))
    ax.set_xticks(x, tiers)
    ax.set_ylabel("SLA attainment (%)")
    ax.set_ylim(0, 118)
    ax.legend(loc="upper center", ncols=len(results))
    return fig


def _has_timeline(timeline: Timeline | None) -> bool:
    return timeline is not None and len(timeline.hours) > 0


def _bucket_edges(hours: Sequence[float]) -> np.ndarray:
    """Bucket starts plus the end of the last bucket (equal buckets; one hour if there is only one)."""
    width = hours[1] - hours[0] if len(hours) > 1 else 1.0
    return np.append(np.asarray(hours, dtype=float), hours[-1] + width)


def _timeline_figure(timeline: Timeline | None) -> Figure | None:
    if timeline is None or not _has_timeline(timeline):
        return None
    fig, (top, bottom) = _new_figure(rows=2, height=2.8)
    edges = _bucket_edges(timeline.hours)
    if timeline.warmup_hours > 0:
        for axis in (top, bottom):
            axis.axvspan(0, timeline.warmup_hours, color="#d5d8dc", alpha=0.5, linewidth=0,
                         label="warm-up: simulated, not counted")
    top.stairs(timeline.queue_depth, edges, color=COLOURS[0], linewidth=1.6)
    top.set_ylabel("MQLs waiting")
    bottom.stairs(np.asarray(timeline.utilisation) * 100, edges, color=COLOURS[1], linewidth=1.6)
    bottom.set_ylabel("rep utilisation (%)")
    bottom.set_xlabel("hours since start of horizon")
    if timeline.warmup_hours > 0:
        top.legend(loc="upper left")
    return fig


def _queue_overlay_figure(a: SimulationResult, b: SimulationResult) -> Figure | None:
    if not (_has_timeline(a.timeline) or _has_timeline(b.timeline)):
        return None
    fig, (ax,) = _new_figure()
    for i, r in enumerate((a, b)):
        if r.timeline is not None and _has_timeline(r.timeline):
            edges = _bucket_edges(r.timeline.hours)
            ax.stairs(r.timeline.queue_depth, edges, color=COLOURS[i], linewidth=1.6, label=_series_label([a, b], i))
    ax.set_xlabel("hours since start of horizon")
    ax.set_ylabel("MQLs waiting")
    ax.legend()
    return fig


def _capacity_figure(result: CapacityResult) -> Figure | None:
    if not result.curve:
        return None
    points = sorted(result.curve, key=lambda p: p.headcount)
    scale = 100 if _is_share(result.metric) else 1
    x = np.array([p.headcount for p in points])
    mean = np.array([p.metric.mean for p in points]) * scale
    lo = np.array([p.metric.ci95[0] for p in points]) * scale
    hi = np.array([p.metric.ci95[1] for p in points]) * scale
    fig, (ax,) = _new_figure(width=7)
    ax.fill_between(x, lo, hi, alpha=0.25, color=COLOURS[0], label="95% CI")
    ax.plot(x, mean, marker="o", color=COLOURS[0], label="mean")
    ax.axhline(result.target * scale, linestyle="--", color="#c0392b", label="target")
    chosen = [p for p in points if p.headcount == result.smallest_meeting_target]
    if chosen:
        y = chosen[0].metric.mean * scale
        ax.plot([chosen[0].headcount], [y], marker="*", markersize=18, color="#2ca02c", linestyle="none",
                label=f"recommended: {chosen[0].headcount}")
    ax.set_xlabel("headcount")
    ax.set_ylabel(result.metric + (" (%)" if scale == 100 else ""))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()
    return fig


# ---------------------------------------------------------------- shared with the live report (``leadflow report``)

escape = _e
page = _page
table = _table


def figure_html(fig: Figure) -> str:
    """A matplotlib figure as an inline SVG ``<figure>``."""
    return f"<figure>{_svg(fig)}</figure>"


def new_figure(width: float = 8, height: float = 4) -> tuple[Figure, Any]:
    """A figure with one set of axes (no pyplot)."""
    fig, axes = _new_figure(width, height)
    return fig, axes[0]
