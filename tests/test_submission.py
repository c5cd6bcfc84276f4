import numpy as np
import pandas as pd
import pytest

from nucseg.errors import NucsegInputError
from nucseg.submission import read_submission, score_images, summarize_scores, write_submission


def test_submission_rows_and_empty_image(tmp_path):
    instances = {"b": np.array([[1, 0], [1, 2]]), "a": np.zeros((2, 2), int)}
    write_submission(instances, tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text() == "ImageId,EncodedPixels\na,\nb,1 2\nb,4 1\n"
    decoded = read_submission(tmp_path / "s.csv", {"a": (2, 2), "b": (2, 2)})
    np.testing.assert_array_equal(decoded["b"], instances["b"])
    assert decoded["a"].max() == 0


def test_validator_names_missing_and_unknown_images(tmp_path):
    pd.DataFrame({"ImageId": ["a"], "EncodedPixels": ["1 1"]}).to_csv(
        tmp_path / "s.csv", index=False
    )
    with pytest.raises(NucsegInputError, match="missing, e.g. b"):
        read_submission(tmp_path / "s.csv", {"a": (2, 2), "b": (2, 2)})
    with pytest.raises(NucsegInputError, match="not in the test set"):
        read_submission(tmp_path / "s.csv", {})


def test_validator_refuses_out_of_bounds_runs(tmp_path):
    pd.DataFrame({"ImageId": ["a"], "EncodedPixels": ["3 5"]}).to_csv(
        tmp_path / "s.csv", index=False
    )
    with pytest.raises(NucsegInputError, match=r"s\.csv \(image a\).*beyond"):
        read_submission(tmp_path / "s.csv", {"a": (2, 2)})


def test_score_table_counts_nuclei():
    truth = {"x": np.array([[1, 0], [0, 2]])}
    table = score_images(truth, {"x": np.array([[1, 0], [0, 0]])})
    row = table.iloc[0]
    assert (row.n_true, row.n_pred, row.dsb) == (2, 1, 0.5)


def test_score_command_prints_every_summary_score(tmp_path, capsys):
    from nucseg.cli import main
    from nucseg.io.kaggle import read_solution_csv
    from nucseg.synth.nuclei import write_demo_sources

    write_demo_sources(tmp_path, n_train=1, n_test=3, seed=4, shapes=((64, 64),))
    truth = read_solution_csv(tmp_path / "stage1_solution.csv")
    write_submission(truth, tmp_path / "perfect.csv")
    main(
        [
            "score",
            str(tmp_path / "perfect.csv"),
            str(tmp_path / "stage1_solution.csv"),
            "--per-image",
            str(tmp_path / "per_image.tsv"),
        ]
    )
    printed = capsys.readouterr().out
    assert "DSB score 1.0000 over 3 images" in printed and "PQ 1.0000" in printed
    assert len(pd.read_csv(tmp_path / "per_image.tsv", sep="\t")) == 3


def test_scores_are_summarised_per_test_set_when_there_are_several():
    truth = {"a": np.array([[1, 0], [0, 2]]), "b": np.array([[1, 1], [0, 0]])}
    predicted = {"a": np.array([[1, 0], [0, 0]]), "b": np.array([[1, 1], [0, 0]])}
    categories = {"a": "fluorescence", "b": "fluorescence"}
    per_image = score_images(truth, predicted, categories, {"a": "real", "b": "generated"})
    summary = summarize_scores(per_image).set_index(["source", "category"]).dsb
    assert summary["all", "all"] == 0.75 and summary["all", "fluorescence"] == 0.75
    assert summary["real", "all"] == 0.5 and summary["generated", "fluorescence"] == 1.0
    one_set = summarize_scores(score_images(truth, predicted, categories))
    assert set(one_set.source) == {"all"}  # one test set: no per-set rows
