"""The HTML reports: self-contained pages with the right tables and one inline SVG per plot."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import numpy as np
import pytest

from simulation.report_html import capacity_report, comparison_report, simulation_report, write_report
from simulation.results import (
    METRIC_DESCRIPTIONS,
    CapacityPoint,
    CapacityResult,
    ComparisonResult,
    Difference,
    Estimate,
    SimulationResult,
    Timeline,
)


def est(mean: float, half: float) -> Estimate:
    return Estimate(mean=mean, ci95=(mean - half, mean + half))


def sim(scenario: str = "baseline", *, full: bool = True, shift: float = 0.0) -> SimulationResult:
    rng = np.random.default_rng(7)
    metrics = {
        "sla_attainment": est(0.875 - shift, 0.0125),
        "ttfc_p90": est(3.25 + shift, 0.5),
        "sql": est(1234.0, 40.0),
    }
    if not full:
        return SimulationResult(
            scenario=scenario, replications=3, leads_simulated=300, wall_seconds=0.5, seed=1, metrics=metrics
        )
    metrics |= {"sla_attainment_hot": est(0.95, 0.02), "sla_attainment_warm": est(0.8, 0.05)}
    return SimulationResult(
        scenario=scenario,
        replications=20,
        leads_simulated=12_000,
        wall_seconds=4.321,
        seed=42,
        metrics=metrics,
        distributions={
            "ttfc_business_hours": list(rng.exponential(2.0 + shift, 500)),
            "ttfc_wall_hours": list(rng.exponential(9.0, 500)) + [float("inf")],
        },
        timeline=Timeline(hours=[0.0, 1.0, 2.0, 3.0], queue_depth=[0.0, 2.5, 4.0, 1.0], utilisation=[0.1, 0.6, 0.9, 0.4]),
    )


def comparison(full: bool = True) -> ComparisonResult:
    return ComparisonResult(
        a=sim("baseline", full=full),
        b=sim("more reps", full=full, shift=0.05),
        differences={
            "sla_attainment": Difference(a=0.875, b=0.825, difference=est(-0.05, 0.01), significant=True),
            "sql": Difference(a=1234.0, b=1240.0, difference=est(6.0, 20.0), significant=False),
        },
    )


def capacity(chosen: int | None = 6) -> CapacityResult:
    curve = [
        CapacityPoint(headcount=h, metric=est(m, 0.02), meets_target=m >= 0.9)
        for h, m in [(4, 0.7), (5, 0.85), (6, 0.92), (7, 0.96)]
    ]
    if chosen is None:
        curve = [p.model_copy(update={"meets_target": False}) for p in curve[:2]]
    return CapacityResult(
        scenario="capacity <team>",
        metric="sla_attainment",
        target=0.9,
        higher_is_better=True,
        curve=curve,
        smallest_meeting_target=chosen,
    )


class _Checker(HTMLParser):
    """Collects the tags, to check the page parses as one document with no external resources."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.external: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        for name, value in attrs:
            if name in {"src", "href", "xlink:href"} and value and not value.startswith("#"):
                self.external.append((tag, value))


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    for needle in ("<head>", "</head>", "<body>", "</body>", '<meta charset="utf-8">', "<style>"):
        assert needle in page
    lowered = page.lower()
    assert "<script" not in lowered
    assert "<link" not in lowered
    assert "<img" not in lowered
    assert "@import" not in lowered and "url(http" not in lowered
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", lowered)
    checker = _Checker()
    checker.feed(page)
    assert checker.tags[0] == "html"
    assert checker.external == []


def svg_count(page: str) -> int:
    return page.count("<svg")


def test_simulation_report_is_self_contained_with_all_plots():
    page = simulation_report(sim())
    assert_self_contained(page)
    assert svg_count(page) == 3  # TTFC histogram, SLA by tier, timeline
    assert "baseline" in page
    assert "87.5%" in page and "[86.2%, 88.8%]" in page
    assert "3.25" in page and "[2.75, 3.75]" in page
    assert "1,234" in page
    assert "median time to first contact" not in page  # only metrics that are present
    assert html.escape(METRIC_DESCRIPTIONS["sla_attainment"]) in page
    for fact in ("20", "12,000", "42", "4.32"):
        assert f'<td class="num">{fact}</td>' in page


def test_simulation_report_omits_plots_for_missing_data():
    page = simulation_report(sim(full=False))
    assert_self_contained(page)
    assert svg_count(page) == 0
    assert "No time-to-first-contact samples" in page
    assert "No per-tier SLA attainment" in page
    assert "No timeline" in page


def test_simulation_report_with_empty_timeline_and_only_wall_distribution():
    result = sim().model_copy(
        update={
            "distributions": {"ttfc_business_hours": [], "ttfc_wall_hours": [1.0, 2.0, 2.0]},
            "timeline": Timeline(hours=[], queue_depth=[], utilisation=[]),
        }
    )
    page = simulation_report(result)
    assert_self_contained(page)
    assert svg_count(page) == 2
    assert "No timeline" in page


def test_text_is_escaped():
    page = simulation_report(sim('<script>alert("x")</script> & co'))
    assert_self_contained(page)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co" in page


def test_svg_ids_are_unique_across_figures():
    page = simulation_report(sim())
    ids = re.findall(r'\sid="([^"]+)"', page)
    assert ids and len(ids) == len(set(ids))
    for ref in re.findall(r'href="#([^"]+)"', page):
        assert ref in ids


def test_comparison_report_marks_significant_differences():
    page = comparison_report(comparison())
    assert_self_contained(page)
    assert svg_count(page) == 3  # TTFC overlay, SLA side by side, queue depth A vs B
    assert "baseline" in page and "more reps" in page
    rows = {m.group(1): m.group(0) for m in re.finditer(r"<tr[^>]*><td>(\w+)</td>.*?</tr>", page)}
    assert 'class="significant"' in rows["sla_attainment"]
    assert "-5.0 pp [-6.0 pp, -4.0 pp]" in rows["sla_attainment"]
    assert "<td>yes</td>" in rows["sla_attainment"]
    assert 'class="significant"' not in rows["sql"]
    assert "+6.00 [-14.00, +26.00]" in rows["sql"]
    assert "<td>no</td>" in rows["sql"]


def test_comparison_report_omits_plots_for_missing_data():
    page = comparison_report(comparison(full=False))
    assert_self_contained(page)
    assert svg_count(page) == 0
    assert page.count('class="note"') >= 3


def test_comparison_report_with_timeline_on_one_side_only():
    result = comparison()
    result = result.model_copy(update={"b": result.b.model_copy(update={"timeline": None, "distributions": {}})})
    page = comparison_report(result)
    assert_self_contained(page)
    assert svg_count(page) == 3


def test_capacity_report_marks_recommended_headcount():
    page = capacity_report(capacity())
    assert_self_contained(page)
    assert svg_count(page) == 1
    assert "capacity &lt;team&gt;" in page
    assert "sla_attainment at least 90.0%" in page
    assert "<strong>6</strong>" in page
    chosen_rows = re.findall(r'<tr class="chosen">.*?</tr>', page)
    assert len(chosen_rows) == 1 and "6 (recommended)" in chosen_rows[0]
    assert "92.0%" in chosen_rows[0] and "[90.0%, 94.0%]" in chosen_rows[0]


def test_capacity_report_without_a_headcount_meeting_the_target():
    page = capacity_report(capacity(chosen=None))
    assert_self_contained(page)
    assert svg_count(page) == 1
    assert "no headcount in the curve meets the target" in page
    assert 'class="chosen"' not in page


def test_capacity_report_with_empty_curve():
    result = capacity(chosen=None).model_copy(update={"curve": []})
    page = capacity_report(result)
    assert_self_contained(page)
    assert svg_count(page) == 0
    assert "capacity curve is empty" in page


@pytest.mark.parametrize("make", [lambda: simulation_report(sim()), lambda: capacity_report(capacity())])
def test_write_report(tmp_path, make):
    page = make()
    path = write_report(page, tmp_path / "nested" / "report.html")
    assert path == tmp_path / "nested" / "report.html"
    assert path.read_text(encoding="utf-8") == page


def test_the_simulation_page_shows_the_warm_up_cut():
    result = sim("baseline").model_copy(update={"timeline": Timeline(
        hours=[0.0, 24.0, 48.0, 72.0], queue_depth=[0.0, 2.5, 4.0, 1.0], utilisation=[0.1, 0.6, 0.9, 0.4],
        warmup_hours=48.0)})
    page = simulation_report(result)
    assert "Warm-up cut: the first 2 of 4 days" in page
    assert "warm-up: simulated, not counted" in page  # the plots' shaded band, in their legend
    plain = simulation_report(sim("baseline"))
    assert "Warm-up cut" not in plain
