"""Reports of an experiment: tidy CSV, tables laid out like the paper's, plotly figures, written
into one folder (:func:`write_report`).

Everything is computed from the run folders, so a report can be written at any time (while an
experiment runs, tables and figures fill in). The tables and their aggregation rules are in
:mod:`iaead_core.experiments.tables`, the figures in :mod:`iaead_core.experiments.figures`;
this module writes them as CSV, Markdown and one standalone HTML page.
"""

from __future__ import annotations

import html
from pathlib import Path

from iaead_core.experiments.figures import figure_ablation, figure_lambda, figure_rho
from iaead_core.experiments.runner import Plan
from iaead_core.experiments.tables import (ablation_markdown, aggregate, protocol_note,
                                           results_frame, runs_frame, table2_markdown,
                                           table3_markdown, varying_axes)
from iaead_core.storage import atomic_output, check_folder, check_target, write_text
__all__ = ["write_report"]


# --------------------------------------------------------------------------------- writing

def _inline(text: str) -> str:
    """Escape ``text`` for HTML and render its **bold** and `code` spans."""
    import re

    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def _html_table(md_header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_inline(h)}</th>" for h in md_header)
    body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_to_html(md: str) -> str:
    """The small Markdown subset these reports use (headings, tables, paragraphs, bold)."""
    import re

    out, table = [], []

    def flush():
        if table:
            cells = [[c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
                     for line in table]
            out.append(_html_table(cells[0], [r for r in cells[2:]]))
            table.clear()
    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        flush()
        if line.startswith("### "):
            out.append(f"<h3>{html.escape(line[4:])}</h3>")
        elif line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
    flush()
    return "\n".join(out)


def write_report(plan: Plan, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Write the report of ``plan`` (CSV, Markdown, standalone HTML) and return the paths.

    Files (in ``out_dir``, default the experiment's ``report/``): ``runs.csv`` (one row per
    run), ``results.csv`` (one row per run and rule), ``table2.csv`` / ``table3.csv``
    (aggregated cells), ``table2.md``, ``table3.md``, ``ablation.md`` (the ablation kind, or
    a custom spec with a varying rule or init), and ``report.html`` (plotly inline: opens
    offline). The HTML's figures follow the spec's kind: Fig. 2 for ``fig2-rho`` and
    ``table2`` (several ρ), Fig. 4 for ``fig4-lambda``, the bars for ``ablation``; a
    ``custom`` spec gets each one its axes allow.

    Every file is written through a uniquely named temporary file and one rename
    (:mod:`iaead_core.storage`).

    Raises
    ------
    iaead_core.storage.StorageError
        The report folder cannot be written (read-only, disk full, permission denied), or one
        of its file names is taken by a folder, a device or a symbolic link: checked before
        the tables are computed; the message names the folder.
    """
    out = Path(out_dir) if out_dir is not None else plan.folder.report_dir
    check_folder(out, create=True)
    for name in ("runs.csv", "results.csv", "table2.csv", "table3.csv", "table2.md",
                 "table3.md", "ablation.md", "report.html"):
        check_target(out / name)
    results = results_frame(plan)
    agg = aggregate(results, plan)
    agg_class = aggregate(results, plan, by_class=True)
    paths = {"runs.csv": out / "runs.csv", "results.csv": out / "results.csv",
             "table2.csv": out / "table2.csv", "table3.csv": out / "table3.csv",
             "table2.md": out / "table2.md", "table3.md": out / "table3.md",
             "report.html": out / "report.html"}
    for name, frame in (("runs.csv", runs_frame(plan)), ("results.csv", results),
                        ("table2.csv", agg), ("table3.csv", agg_class)):
        with atomic_output(paths[name], "w", newline="") as f:
            frame.to_csv(f, index=False)
    note = protocol_note(plan)
    t2 = table2_markdown(agg, results, plan)
    t3 = table3_markdown(agg_class, agg, results, plan)
    write_text(paths["table2.md"], f"# {plan.folder.dir.name}: Table 2 (class-averaged)\n\n{note}\n\n{t2}\n")
    write_text(paths["table3.md"], f"# {plan.folder.dir.name}: Table 3 (per class)\n\n{note}\n\n{t3}\n")
    sections: list[tuple[str, str]] = []
    figures = []
    varying = varying_axes(results, plan)
    kind = plan.spec.kind
    # The kind picks the main view; a custom spec gets every view its axes allow.
    if kind in ("fig2-rho", "table2", "custom") and results["rho"].nunique() > 1:
        figures.append(figure_rho(agg, results, plan))
    lam_values = {float(v) for v in results["lam"].dropna()}
    if kind in ("fig4-lambda", "custom") and len(lam_values) > 1:
        figures.append(figure_lambda(agg, results, plan))
        if results["normal_class"].nunique() > 1 or results["dataset"].nunique() > 1:
            figures.append(figure_lambda(agg_class, results, plan, by_class=True))
    ablation_md = ""
    if kind == "ablation" or (kind == "custom" and ("rule" in varying or "init" in varying)):
        ablation_md = ablation_markdown(results, plan)
        paths["ablation.md"] = out / "ablation.md"
        write_text(paths["ablation.md"], f"# {plan.folder.dir.name}: ablation\n\n{note}\n\n{ablation_md}\n")
        figures.append(figure_ablation(results, plan))
    if ablation_md:
        sections.append(("Ablation", ablation_md))
    sections += [("Table 2 (class-averaged)", t2), ("Table 3 (per class)", t3)]
    parts = []
    for i, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False))
    body = "\n".join(f"<h2>{html.escape(t)}</h2>\n{_md_to_html(md)}" for t, md in sections)
    files = " · ".join(f'<a href="{html.escape(p.name)}">{html.escape(p.name)}</a>'
                       for k, p in paths.items() if k != "report.html")
    doc = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(plan.folder.dir.name)} — iaead experiment report</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}} th{{background:#f3f3f3}}
td:first-child,th:first-child{{text-align:left}}</style></head>
<body><h1>{html.escape(plan.folder.dir.name)} ({html.escape(plan.spec.kind)}, preset {html.escape(plan.spec.preset)})</h1>
<p>{html.escape(plan.spec.description)}</p>
{_md_to_html(note)}
{''.join(parts)}
{body}
<p>Files: {files}</p>
</body></html>
"""
    write_text(paths["report.html"], doc)
    return paths
