import numpy as np
import pytest

from nucseg.metrics import (
    DSB_THRESHOLDS,
    dsb_score,
    instance_scores,
    match_counts,
    matched_ious,
    matched_pairs,
)


def test_perfect_prediction_scores_one_regardless_of_label_values():
    truth = np.array([[1, 1, 0], [0, 2, 2]])
    assert dsb_score(truth, truth * 7) == 1.0


def test_empty_versus_empty_scores_one():
    empty = np.zeros((4, 4), int)
    assert dsb_score(empty, empty) == 1.0


def test_prediction_on_empty_truth_scores_zero():
    empty = np.zeros((4, 4), int)
    pred = empty.copy()
    pred[0, 0] = 1
    assert dsb_score(empty, pred) == 0.0


def test_one_missed_nucleus_out_of_two():
    truth = np.zeros((4, 4), int)
    truth[0, :2], truth[3, 2:] = 1, 2
    pred = np.where(truth == 1, 1, 0)
    # each threshold: TP=1, FP=0, FN=1 -> 1/2
    assert dsb_score(truth, pred) == pytest.approx(0.5)


def test_iou_exactly_at_threshold_is_not_a_match():
    truth = np.zeros((1, 4), int)
    truth[0, :2] = 1
    pred = np.zeros((1, 4), int)
    pred[0, 1:4] = 1  # intersection 1, union 4 -> IoU 0.25
    pred2 = np.zeros((1, 4), int)
    pred2[0, :4] = 1  # intersection 2, union 4 -> IoU exactly 0.5
    counts = match_counts(truth, pred2)
    assert counts.tp[0] == 0 and counts.fp[0] == 1 and counts.fn[0] == 1
    assert dsb_score(truth, pred) == 0.0


def test_hand_computed_partial_overlap():
    truth = np.zeros((1, 10), int)
    truth[0, :10] = 1
    pred = np.zeros((1, 10), int)
    pred[0, :8] = 1  # IoU 0.8: match at 0.50..0.75 (6 thresholds), not at 0.80..0.95 (4)
    assert dsb_score(truth, pred) == pytest.approx(6 / 10)


def test_matched_ious_keep_pairs_above_one_half_whatever_the_label_values():
    truth = np.array([[1, 1, 1, 2, 2, 0]])
    pred = np.array([[5, 5, 0, 9, 9, 9]])  # IoU 2/3 and 2/3
    ious, n_true, n_pred = matched_ious(truth, pred)
    np.testing.assert_allclose(np.sort(ious), [2 / 3, 2 / 3])
    assert (n_true, n_pred) == (2, 2)
    huge = np.where(pred > 0, pred + 2**40, 0)  # sparse huge ids take the other path
    true_ids, pred_ids, ious, _, _ = matched_pairs(truth * 10**9, huge)
    np.testing.assert_allclose(ious, [2 / 3, 2 / 3])
    assert set(zip(true_ids.tolist(), pred_ids.tolist(), strict=True)) == {
        (10**9, 5 + 2**40),
        (2 * 10**9, 9 + 2**40),
    }
    full = np.array([[3, 3, 4, 4]])  # no background at all
    assert matched_ious(full, full)[1:] == (2, 2) and matched_ious(full * 10**12, full)[0].size == 2


def test_instance_scores_by_hand():
    truth = np.zeros((1, 20), int)
    truth[0, :10], truth[0, 12:16] = 1, 2  # two nuclei
    pred = np.zeros((1, 20), int)
    pred[0, :8] = 3  # IoU 0.8 with nucleus 1
    pred[0, 17:19] = 4  # a false positive; nucleus 2 is missed
    scores = instance_scores(truth, pred)
    assert scores["n_true"] == 2 and scores["n_pred"] == 2
    # TP 1, FP 1, FN 1 up to IoU 0.75; TP 0 from 0.80
    assert scores["ap50"] == pytest.approx(1 / 3) and scores["ap75"] == pytest.approx(1 / 3)
    assert scores["dsb"] == pytest.approx(6 / 10 * 1 / 3)
    assert scores["f1_50"] == pytest.approx(0.5) and scores["pq"] == pytest.approx(0.8 / 2)
    empty = np.zeros((3, 3), int)
    assert set(instance_scores(empty, empty).values()) == {0, 1.0}


def test_thresholds_are_the_kaggle_ones():
    np.testing.assert_allclose(
        DSB_THRESHOLDS, [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    )


def test_relabel_sequential_keeps_order_and_handles_sparse_huge_ids():
    from nucseg.labels import relabel_sequential

    labels = np.array([[0, 5, 5], [9, 0, 2]], np.uint16)
    renumbered, n = relabel_sequential(labels)
    assert n == 3 and renumbered.tolist() == [[0, 2, 2], [3, 0, 1]]
    sparse = np.array([[0, 4_000_000_000], [7, 7]], np.uint32)
    renumbered, n = relabel_sequential(sparse)
    assert n == 2 and renumbered.tolist() == [[0, 2], [1, 1]]
