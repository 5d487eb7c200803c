"""The closed-loop SLA report as a page a VP of Sales can put on the screen in the weekly meeting.

Self-contained like the simulator's pages (no scripts, no external files): the weekly
first-contact attainment against its target, the funnel by source, where the time to first
contact goes (systems vs human delay), and why leads were lost.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from leadflow.report import FunnelCounts, SlaReport
from simulation.report_html import escape, figure_html, new_figure, page, table, write_report

ATTAINMENT_TARGET = 0.9  # the alert's target (deploy/prometheus/alert-rules.yml)


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def readable_hours(value: float | None) -> str:
    """Business hours in the unit that reads best: seconds, minutes or hours."""
    if value is None:
        return "–"
    if value < 1 / 60:
        return f"{value * 3600:.1f} s"
    if value < 1:
        return f"{value * 60:.1f} min"
    return f"{value:.2f} h"


def _scale(largest: float) -> tuple[float, str]:
    """A factor and unit for an axis of business hours whose largest value is ``largest``."""
    if largest < 1 / 60:
        return 3600.0, "business seconds"
    if largest < 1:
        return 60.0, "business minutes"
    return 1.0, "business hours"


def report_page(report: SlaReport) -> str:
    last_day = (report.until - timedelta(days=1)).date()
    title = f"Marketing–sales SLA, {report.since.date()} to {last_day}"
    total = report.funnel["total"]
    assert isinstance(total, FunnelCounts)
    body = [f"<h1>{escape(title)}</h1>",
            f'<p class="note">From the leadflow ledger, policy {escape(report.policy_version)}; dates in UTC. '
            "SLA attainment = met / (met + missed) as defined in leadflow/kpis.py.</p>"]

    body.append("<h2>Funnel</h2>")
    rows = []
    by_source = report.funnel["by_source"]
    assert isinstance(by_source, dict)
    for name, counts in [("total", total), *by_source.items()]:
        rows.append(([escape(name), str(counts.leads), str(counts.mql), str(counts.accepted), str(counts.sql),
                      str(counts.converted), _share(counts.rates.get("accepted_per_mql")),
                      _share(counts.sql / counts.mql if counts.mql else None)], "chosen" if name == "total" else ""))
    body.append(table(["source", "leads", "MQLs", "accepted", "SQLs", "converted", "accepted / MQL", "SQL / MQL"],
                      rows, numeric={1, 2, 3, 4, 5, 6, 7}))
    if by_source:
        fig, axes = new_figure(8, 3.2)
        names = list(by_source)
        mqls = [counts.mql for counts in by_source.values()]
        sqls = [counts.sql for counts in by_source.values()]
        positions = range(len(names))
        axes.barh([p + 0.2 for p in positions], mqls, height=0.4, label="MQLs", color="#1f77b4")
        axes.barh([p - 0.2 for p in positions], sqls, height=0.4, label="SQLs", color="#ff7f0e")
        axes.set_yticks(list(positions), names)
        axes.set_xlabel("leads in the period (count)")
        axes.set_title("MQLs and SQLs by source")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        body.append(figure_html(fig))

    body.append("<h2>Sales: first-contact SLA by week</h2>")
    weeks = list(report.commitments.mql_per_week) or list(report.sla_by_week)  # every week of the period
    if report.sla_by_week:
        fig, axes = new_figure(8, 3.2)
        tiers = sorted({tier for by_tier in report.sla_by_week.values() for tier in by_tier})
        for tier in tiers:
            values = [report.sla_by_week.get(week, {}).get(tier) for week in weeks]
            axes.plot(range(len(weeks)), [item.attainment * 100 if item and item.attainment is not None else float("nan")
                                          for item in values], marker="o", label=tier)
        axes.axhline(ATTAINMENT_TARGET * 100, color="#c0392b", linestyle="--", label=f"target {ATTAINMENT_TARGET:.0%}")
        axes.set_ylim(0, 105)
        axes.set_xticks(range(len(weeks)), weeks)
        axes.set_xlim(-0.5, len(weeks) - 0.5)
        axes.set_ylabel("first contacts in SLA (%)")
        axes.set_xlabel("ISO week (UTC)")
        axes.set_title("First-contact SLA attainment by tier, week by week")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        body.append(figure_html(fig))
    else:
        body.append('<p class="note">No first-contact SLA was settled in the period.</p>')
    sla_rows = []
    for clock, tiers_of in report.sla.items():
        for tier, item in sorted(tiers_of.items()):
            sla_rows.append(([escape(clock), escape(tier), str(item.met), str(item.missed), _share(item.attainment)], ""))
    body.append(table(["SLA clock", "tier", "met", "missed", "attainment"], sla_rows, numeric={2, 3, 4}))

    ttfc = report.ttfc_hours
    body.append("<h2>Where the time to first contact goes</h2>")
    body.append(f"<p>Business time from MQL to first contact, {ttfc.n} first contacts: median {readable_hours(ttfc.p50)}, "
                f"90th percentile {readable_hours(ttfc.p90)}.</p>")
    if ttfc.n:
        fig, axes = new_figure(8, 2.4)
        parts = [("systems delay (MQL → assigned)", ttfc.systems), ("human delay (assigned → first attempt)", ttfc.human)]
        factor, unit = _scale(max([part.p90 or 0.0 for _, part in parts] + [ttfc.p90 or 0.0]))
        for index, (_, part) in enumerate(parts):
            axes.barh([index + 0.2], [(part.p50 or 0.0) * factor], height=0.4, color="#1f77b4",
                      label="median" if index == 0 else None)
            axes.barh([index - 0.2], [(part.p90 or 0.0) * factor], height=0.4, color="#aec7e8",
                      label="90th percentile" if index == 0 else None)
        axes.set_yticks([0, 1], [label for label, _ in parts])
        axes.set_xlabel(unit)
        axes.set_title(f"Time to first contact, split (n = {ttfc.n})")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        body.append(figure_html(fig))
    attempts = report.attempts
    body.append(f"<p>Attempts before a rep's disposition: mean "
                f"{'–' if attempts.mean_before_disposition is None else f'{attempts.mean_before_disposition:.1f}'} "
                f"(the cadence asks for {attempts.minimum}); {attempts.below_minimum} of {attempts.dispositioned} "
                "leads closed with fewer attempts and no connect.</p>")

    body.append("<h2>Marketing: MQLs delivered against the commitment</h2>")
    body.append(table(["ISO week", "committed", "delivered"],
                      [([escape(week if item.days == 7 else f"{week} ({item.days} of 7 days)"),
                         "–" if item.committed is None else str(item.committed), str(item.delivered)], "")
                       for week, item in report.commitments.mql_per_week.items()], numeric={1, 2}))
    rate = report.commitments.acceptance_rate
    target = report.commitments.min_acceptance_rate
    body.append(f"<p>Acceptance rate: {_share(rate.attainment)} of the {rate.met + rate.missed} MQLs sales decided on"
                + (f" (committed: at least {target:.0%})" if target is not None else "") + ".</p>")

    body.append("<h2>Why leads were lost</h2>")
    reasons: dict[str, int] = {}
    for kind, by_source_reasons in report.losses.items():
        for reason_counts in by_source_reasons.values():
            for reason, count in reason_counts.items():
                reasons[f"{kind}: {reason}"] = reasons.get(f"{kind}: {reason}", 0) + count
    for reason, count in report.rejections.items():
        reasons[f"rejected: {reason}"] = reasons.get(f"rejected: {reason}", 0) + count
    if reasons:
        ordered = sorted(reasons.items(), key=lambda item: -item[1])
        fig, axes = new_figure(8, 0.4 * len(ordered) + 1.2)
        axes.barh([name for name, _ in reversed(ordered)], [count for _, count in reversed(ordered)], color="#7f7f7f")
        axes.set_xlabel("leads (count)")
        axes.set_title("Disqualify and recycle reasons, most frequent first")
        body.append(figure_html(fig))
    else:
        body.append('<p class="note">No lead was disqualified or recycled in the period.</p>')
    handling = report.escalations["by_team"]
    body.append(table(["team", "escalations", "reassignments"],
                      [([escape(team), str(item.escalations), str(item.reassignments)], "") for team, item in handling.items()],
                      numeric={1, 2}))
    body.append("<h2>Open now: leads past their SLA due time</h2>")
    body.append(table(["owner", "leads past due"], [([escape(owner), str(count)], "") for owner, count in report.open_now.items()],
                      numeric={1}) if report.open_now else '<p class="note">None.</p>')
    return page(title, body)


def write_report_html(report: SlaReport, path: Path) -> Path:
    return write_report(report_page(report), path)
