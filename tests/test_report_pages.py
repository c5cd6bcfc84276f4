"""Report pages: scores readable as HTML tables with the best marked, and a chart."""

import pandas as pd

from nucseg.report_pages import dsb_chart, html_table, scores_page


def _scores():
    rows = []
    for entry, dsb in (("a", 0.5), ("b", 0.7)):
        rows.append(["i1", entry, "test", "fluorescence", dsb, 0.9, 0.8, 0.9, 0.8, 3, 3])
        for category in ("all", "fluorescence"):
            rows.append(["mean", entry, "all", category, dsb, 0.9, 0.8, 0.9, 0.8, 3, 3])
    columns = ["image_id", "ensemble", "source", "category", "dsb", "ap50", "ap75"]
    return pd.DataFrame(rows, columns=columns + ["f1_50", "pq", "n_true", "n_pred"])


def test_scores_page_shows_mean_rows_and_marks_the_best(tmp_path):
    scores_page(_scores(), tmp_path / "scores.html", "real (resources/x)")
    page = (tmp_path / "scores.html").read_text()
    assert page.count("<tr>") == 1 + 4  # header + 2 entries x 2 categories, no image rows
    assert '<td class="best">0.700</td>' in page and '<td class="">0.500</td>' in page
    assert "real (resources/x)" in page


def test_chart_and_plain_tables(tmp_path):
    dsb_chart(_scores(), tmp_path / "chart.png")
    assert (tmp_path / "chart.png").read_bytes()[:4] == b"\x89PNG"
    table = html_table(pd.DataFrame({"rule": ["<x>"], "s": [1.5]}))
    assert "&lt;x&gt;" in table and "1.500" in table
