"""`segmint report campaign ID` and `segmint demo compare`: campaign reports as Rich tables or JSON.

The report reads the campaign's delivery ledger (the campaigns package, when installed) or a ledger file
given with --recipients (Parquet, CSV, JSON array or JSON lines with the ledger columns). With a server
running on the workspace, the report is asked from its API (the server owns the DuckDB file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from segmint.cli.common import console, handle_errors, open_workspace, print_json, running_server, workspace_path
from segmint.errors import InvalidInput, NotFound, SegmintError, WorkspaceError

report_app = typer.Typer(help="Reports: campaign performance, uplift vs control, sample sizes.",
                         no_args_is_help=True)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _won(x: float | None) -> str:
    return "-" if x is None else f"{'-' if x < 0 else ''}₩{abs(x):,.0f}"


def _ci(lo: float | None, hi: float | None) -> str:
    return "" if lo is None or hi is None else f" [{_pct(lo)}, {_pct(hi)}]"


def render_report(report: dict[str, Any]) -> list[Table]:
    """The report (its JSON form) as Rich tables: metrics per campaign x segment x variant, then uplift."""
    title = "campaign report" + (" (SIMULATED responses)" if report.get("simulated") else "")
    goal = report.get("goal") or {}
    days = (goal.get("window_seconds") or 0) / 86_400
    metrics = Table(title=f"{title}: goal {goal.get('event')} within {days:g} days")
    for col in ("campaign", "segment", "variant", "audience", "suppressed", "sent", "delivered", "open rate", "CTR",
                "conversion", "rev/recipient", "unsub"):
        metrics.add_column(col, justify="left" if col in ("campaign", "segment", "variant") else "right")
    for r in report["rows"]:
        reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(r["suppressed_by_reason"].items()))
        metrics.add_row(r["campaign_id"], r["segment"] or "(all)", r["variant"], f"{r['audience']:,}",
                        f"{r['suppressed']:,}" + (f" ({reasons})" if reasons else ""), f"{r['sent']:,}",
                        f"{r['delivered']:,}", _pct(r["open_rate"]), _pct(r["ctr"]),
                        f"{_pct(r['conversion_rate'])} ({r['converted']:,}/{r['measured']:,})",
                        _won(r["revenue_per_recipient"]), _pct(r["unsubscribe_rate"]))
    uplift = Table(title="uplift (95% CI; two-proportion z-test, Welch t-test)")
    for col in ("campaign", "segment", "variant", "vs", "conversion diff", "relative", "p", "rev/recipient diff",
                "p (rev)", "n per group for MDE"):
        uplift.add_column(col, justify="left" if col in ("campaign", "segment", "variant", "vs") else "right")
    for c in report["comparisons"]:
        conv, rev = c["conversion"], c["revenue_per_recipient"]
        rev_ci = rev.get("diff_ci") or (None, None)
        rev_text = "-" if rev.get("diff") is None else _won(rev["diff"]) + (
            f" [{_won(rev_ci[0])}, {_won(rev_ci[1])}]" if rev_ci[0] is not None else "")
        need = c.get("sample_size_per_group")
        uplift.add_row(c["campaign_id"], c["segment"] or "(all)", c["variant"], c["baseline"],
                       _pct(conv["diff"]) + _ci(*conv["diff_ci"]), _pct(conv["relative"]) + _ci(*conv["relative_ci"]),
                       "-" if conv["p_value"] is None else f"{conv['p_value']:.3f}", rev_text,
                       "-" if rev.get("p_value") is None else f"{rev['p_value']:.3f}",
                       "-" if need is None else f"{need:,} (+{100 * c['mde_relative']:.0f}%)")
    return [metrics, uplift]


def read_recipients(path: Path) -> Any:
    """A ledger file: .parquet, .csv, .json (array of rows) or .jsonl."""
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    if not path.exists():
        raise NotFound(f"no file {str(path)!r}", where="--recipients")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix == ".csv":
            return pcsv.read_csv(path)
        text = path.read_text(encoding="utf-8")
        if suffix == ".jsonl":
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        if suffix == ".json":
            rows = json.loads(text)
            if not isinstance(rows, list):
                raise InvalidInput("a .json ledger is an array of rows", where=str(path))
            return rows
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read the ledger file: {exc}", where=str(path)) from None
    raise InvalidInput("use a .parquet, .csv, .json or .jsonl ledger file", where="--recipients")


@report_app.command("campaign")
@handle_errors
def report_campaign(
    ctx: typer.Context,
    campaign_id: str = typer.Argument(None, help="Campaign id (optional with --recipients)."),
    recipients: Path = typer.Option(None, "--recipients", help="Ledger rows file (.parquet/.csv/.json/.jsonl)."),
    goal: str = typer.Option(None, "--goal", help="Goal event and filters, e.g. 'order_completed where revenue > 0'."),
    window: str = typer.Option(None, "--window", help="Attribution window, e.g. 3d, 12h (default: the campaign's)."),
    revenue: str = typer.Option(None, "--revenue", help="Revenue property of the goal event (default revenue)."),
    mde: float = typer.Option(0.2, "--mde", help="Relative minimum detectable effect for the sample size."),
    alpha: float = typer.Option(0.05, "--alpha", help="Significance level (CIs are 1 - alpha)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Audience, suppressions, sends, open rate, CTR, conversion, revenue per recipient and uplift vs control."""
    ws = open_workspace(ctx)
    rows = read_recipients(recipients) if recipients else None
    url = running_server(ws)
    if url:
        import httpx

        body = {"campaign_id": campaign_id, "recipients": _jsonable(rows), "goal": goal, "window": window,
                "revenue_property": revenue, "mde": mde, "alpha": alpha}
        resp = httpx.post(url + "/api/campaign-reports", json=body, timeout=300,
                          headers={"Authorization": f"Bearer {ws.config.admin_token}"})
        if resp.status_code >= 400:
            raise SegmintError(f"server answered {resp.status_code}: {resp.text[:500]}", where=url)
        report = resp.json()
    else:
        from segmint.analytics.campaign_report import workspace_report

        report = workspace_report(ws, campaign_id, rows, goal=goal, window=window, revenue_property=revenue, mde=mde,
                                  alpha=alpha)
    if as_json:
        print_json(report)
        return
    for table in render_report(report):
        console.print(table)


def _jsonable(rows: Any) -> Any:
    if rows is None or isinstance(rows, list):
        return rows
    return json.loads(json.dumps(rows.to_pylist(), default=str))


def demo_compare(
    ctx: typer.Context,
    seed: int = typer.Option(42, help="Seed of the simulated responses."),
    holdout: float = typer.Option(0.3, help="Holdout share of each campaign."),
    window: str = typer.Option("3d", help="Attribution window (the campaigns are sent this long before 'now')."),
    only: str = typer.Option(None, "--only", help="Comma-separated seeds, e.g. A1,A2 (default all four)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """For A1-A4: a campaign on the advanced segment vs one on the basic segment, responses SIMULATED."""
    from segmint.analytics.campaign_report import parse_window
    from segmint.demo.campaign_compare import (
        advanced_vs_basic,
        compare_seed_campaigns,
        comparison_rows,
        render_summary,
        render_table,
    )
    from segmint.demo.load import read_demo_info

    path = workspace_path(ctx)
    info = read_demo_info(path)
    if info is None or not info.complete:
        raise WorkspaceError("not a demo workspace; build one first with `segmint demo --no-serve`", where=str(path))
    ws = open_workspace(ctx)
    if url := running_server(ws):
        raise WorkspaceError(f"a server is running on this workspace ({url}); stop it first (the comparison "
                             "writes simulated events)", where=str(path))
    seeds = [s.strip().upper() for s in only.split(",") if s.strip()] if only else None
    results = compare_seed_campaigns(ws.store, info.spec.now, seed=seed, holdout=holdout,
                                     window=parse_window(window), seeds=seeds)
    if as_json:
        print_json({"simulated": True, "rows": comparison_rows(results),
                    "advanced_vs_basic": advanced_vs_basic(results), "campaigns": [r.to_dict() for r in results]})
    else:
        console.print(render_table(results))
        console.print(render_summary(results))
        console.print("[dim]responses are SIMULATED from the demo shop's behavioural model (events carry "
                      "simulated: true); see docs/experiments.md[/dim]")
    ws.close()


def register(app: typer.Typer) -> None:
    """Add `segmint report campaign`, `segmint demo compare`, and `segmint campaign report` when the
    campaigns CLI group is registered before this module."""
    from segmint.cli.demo import demo_app

    if not any(g.name == "report" for g in app.registered_groups):
        app.add_typer(report_app, name="report")
    if not any(c.name == "compare" for c in demo_app.registered_commands):
        demo_app.command("compare")(handle_errors(demo_compare))
    for group in app.registered_groups:
        sub = group.typer_instance
        if group.name == "campaign" and sub is not None and not any(c.name == "report"
                                                                    for c in sub.registered_commands):
            sub.command("report")(report_campaign)
