"""``leadflow report``: the closed-loop marketing-sales SLA report, from the ledger."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cli.errors import CliError, friendly_errors
from cli.report_html import readable_hours
from leadflow.report import Attainment, Dimension, FunnelCounts, PeriodError, SlaReport, report_period
from runtime.settings import current_settings, load_policy_file

out = Console(highlight=False, soft_wrap=True)


def period(since: str | None, until: str | None, today: date) -> tuple[datetime, datetime]:
    """``--since``/``--until`` (both days included, UTC) as instants; the last four weeks by default."""

    def day(text: str | None, option: str) -> date | None:
        try:
            return date.fromisoformat(text) if text else None
        except ValueError:
            raise CliError(f"{option} {text!r} is not a date: give YYYY-MM-DD") from None

    try:
        return report_period(day(since, "--since"), day(until, "--until"), today)
    except PeriodError as error:
        raise CliError(f"{error}: give --since on or before --until") from None


def build_report(since: datetime, until: datetime, by: Dimension, now: datetime | None = None) -> SlaReport:
    """The report from the ledger (``LEADFLOW_DATABASE_URL``), held to the policy the workers serve
    (the ledger's latest rollout, else ``LEADFLOW_POLICY``)."""
    from activities.ledger import Ledger
    from activities.report_source import ledger_report, serving_policy

    settings = current_settings()
    ledger = Ledger(settings.ledger_url)
    try:
        ledger.create_schema()
        policy = serving_policy(ledger, load_policy_file(settings.policy_path))
        return ledger_report(ledger, policy, since, until, by, now or datetime.now(timezone.utc))
    finally:
        ledger.dispose()


@friendly_errors
def report_command(
    since: str = typer.Option(None, "--since", help="first day (YYYY-MM-DD, UTC; default: four weeks before --until)"),
    until: str = typer.Option(None, "--until", help="last day, included (YYYY-MM-DD, UTC; default: today)"),
    by: Dimension = typer.Option(Dimension.SOURCE, "--by", help="break the funnel down by this"),
    as_json: bool = typer.Option(False, "--json", help="print the report as one JSON document"),
    html: Path = typer.Option(None, "--html", help="also write the report as an HTML page here"),
) -> None:
    """The marketing-sales SLA scorecard from the ledger: funnel, both sides' commitments, losses, leads past due."""
    first, end = period(since, until, datetime.now(timezone.utc).date())
    report = build_report(first, end, by)
    if html is not None:
        from cli.report_html import write_report_html

        write_report_html(report, html)
    if as_json:
        print(report.model_dump_json(indent=2))
        return
    show(report)
    if html is not None:
        out.print(f"wrote {html}")


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def show(report: SlaReport) -> None:
    """The report as tables on the terminal."""
    last_day = (report.until - timedelta(days=1)).date()
    out.print(f"[bold]Marketing-sales SLA report[/bold] {report.since.date()} to {last_day} (UTC), "
              f"policy {report.policy_version}")
    funnel = Table(title=f"Funnel by {report.by}", title_justify="left")
    for column in ("", "leads", "MQL", "accepted", "SQL", "converted", "MQL→SQL"):
        funnel.add_column(column, justify="left" if not column else "right")
    breakdown = report.funnel[f"by_{report.by}"]
    rows = [("total", report.funnel["total"]), *(breakdown.items() if isinstance(breakdown, dict) else [])]
    for name, counts in rows:
        assert isinstance(counts, FunnelCounts)
        sql_per_mql = counts.sql / counts.mql if counts.mql else None
        funnel.add_row(name, str(counts.leads), str(counts.mql), str(counts.accepted), str(counts.sql),
                       str(counts.converted), _share(sql_per_mql))
    out.print(funnel)

    sla = Table(title="Sales: SLA attainment (met / settled)", title_justify="left")
    for column in ("clock", "tier", "met", "missed", "attainment"):
        sla.add_column(column, justify="right" if column in ("met", "missed", "attainment") else "left")
    for clock, tiers in report.sla.items():
        for tier, settled in sorted(tiers.items()):
            assert isinstance(settled, Attainment)
            sla.add_row(clock, tier, str(settled.met), str(settled.missed), _share(settled.attainment))
    out.print(sla)
    ttfc = report.ttfc_hours
    out.print(f"Time to first contact (business time, n={ttfc.n}): p50 {readable_hours(ttfc.p50)}, p90 {readable_hours(ttfc.p90)}; "
              f"systems (MQL→assigned) p50 {readable_hours(ttfc.systems.p50)}, p90 {readable_hours(ttfc.systems.p90)}; "
              f"human (assigned→first attempt) p50 {readable_hours(ttfc.human.p50)}, p90 {readable_hours(ttfc.human.p90)}")
    attempts = report.attempts
    mean = "–" if attempts.mean_before_disposition is None else f"{attempts.mean_before_disposition:.1f}"
    out.print(f"Attempts before disposition: mean {mean} (connected leads count too); the cadence's minimum before giving "
              f"up on an unreached lead is {attempts.minimum}: {attempts.below_minimum} of {attempts.dispositioned} "
              "dispositioned below it without a connect")

    commitments = Table(title="Marketing: MQLs delivered per week", title_justify="left")
    for column in ("week", "committed", "delivered"):
        commitments.add_column(column, justify="left" if column == "week" else "right")
    for week, weekly in report.commitments.mql_per_week.items():
        label = week if weekly.days == 7 else f"{week} ({weekly.days} of 7 days)"
        commitments.add_row(label, "–" if weekly.committed is None else str(weekly.committed), str(weekly.delivered))
    out.print(commitments)
    rate = report.commitments.acceptance_rate
    target = report.commitments.min_acceptance_rate
    out.print(f"Acceptance rate: {_share(rate.attainment)} of {rate.met + rate.missed} MQLs sales decided on"
              + (f" (committed: at least {target:.0%})" if target is not None else ""))
    rejected = ", ".join(f"{reason} {count}" for reason, count in sorted(report.rejections.items()))
    out.print(f"Rejected back to marketing: {rejected or 'none'}")
    for kind, by_source in report.losses.items():
        reasons = ", ".join(f"{source}: " + ", ".join(f"{reason} {count}" for reason, count in sorted(counts.items()))
                            for source, counts in by_source.items())
        out.print(f"{kind.capitalize()}: {reasons or 'none'}")
    past_due = ", ".join(f"{owner} {count}" for owner, count in report.open_now.items())
    out.print(f"Open leads past their SLA due time: {past_due or 'none'}")
