"""Report pages people read without downloading anything: HTML tables of the scores, the
validation scores, the dataset statistics and the job benchmarks, and a chart of the DSB
score per category of every model and ensemble (Snakemake ``--report`` shows them inline)."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from nucseg.io.atomic import atomic_path  # noqa: E402

#: score columns where higher is better (marked best per category)
SCORE_COLUMNS = ["dsb", "ap50", "ap75", "f1_50", "pq"]

_STYLE = """<style>
body { font-family: sans-serif; font-size: 14px; margin: 12px; }
table { border-collapse: collapse; margin-bottom: 18px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f0f0f0; } td.text { text-align: left; }
td.best { font-weight: bold; background: #e6f4e6; }
p.note { color: #444; max-width: 60em; }
</style>"""


def _cell(value, best: bool = False) -> str:
    if isinstance(value, float):
        text = f"{value:.3f}"
        css = "best" if best else ""
    else:
        text = html.escape(str(value))
        css = "text"
    return f'<td class="{css}">{text}</td>'


def html_table(table: pd.DataFrame, best_within: pd.Series | None = None) -> str:
    """An HTML table of ``table``; with ``best_within`` (a group label per row), the highest
    value of each score column among rows of one group is marked."""
    best = pd.DataFrame(False, index=table.index, columns=table.columns)
    if best_within is not None:
        for column in [c for c in SCORE_COLUMNS if c in table]:
            top = table[column].groupby(best_within).transform("max")
            best[column] = table[column] == top
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    rows = [
        "<tr>"
        + "".join(_cell(table.at[i, c], bool(best.at[i, c])) for c in table.columns)
        + "</tr>"
        for i in table.index
    ]
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def write_page(path: Path | str, title: str, body: str) -> None:
    """A standalone HTML page, written atomically."""
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"{_STYLE}</head><body><h2>{html.escape(title)}</h2>{body}</body></html>\n"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(page)


def mean_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """The ``mean`` rows of a scores table: one per model/ensemble, test set and category."""
    means = scores[scores["image_id"] == "mean"].drop(columns="image_id")
    columns = ["source", "category", "ensemble"] if "source" in means else ["category", "ensemble"]
    return means.sort_values(columns, kind="stable").reset_index(drop=True)[
        columns + [c for c in means.columns if c not in columns]
    ]


def scores_page(scores: pd.DataFrame, path: Path | str, test_sets: str) -> None:
    """The mean scores per model/ensemble and category (best per column marked)."""
    means = mean_scores(scores)
    group = means["source"] + "/" + means["category"] if "source" in means else means["category"]
    body = (
        f"<p class='note'>Test images: {html.escape(test_sets)}. DSB: mean over IoU "
        "0.50-0.95 of TP/(TP+FP+FN); AP at IoU 0.5 and 0.75; F1 at 0.5; PQ: panoptic "
        "quality; n_true / n_pred: nuclei in the truth / found. The best value of each "
        "column per test set and category is marked.</p>" + html_table(means, best_within=group)
    )
    write_page(path, "Scores on the test images", body)


def dsb_chart(scores: pd.DataFrame, path: Path | str) -> None:
    """Bars of the mean DSB score per category (and overall) of every model and ensemble."""
    means = mean_scores(scores)
    if "source" in means:
        means = means[means["source"] == "all"]
    table = means.pivot_table(index="category", columns="ensemble", values="dsb")
    figure, axis = plt.subplots(figsize=(7, 3.5), dpi=100)
    table.plot.bar(ax=axis, rot=0, width=0.8)
    axis.set_ylabel("mean DSB score")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8, ncols=min(4, len(table.columns)))
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(figure)


def table_page(table: pd.DataFrame, path: Path | str, title: str, note: str) -> None:
    """Any table as a page, with a sentence saying what it is."""
    write_page(path, title, f"<p class='note'>{html.escape(note)}</p>" + html_table(table))
