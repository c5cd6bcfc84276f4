"""Per-nucleus measurements and per-image summaries a biologist reads."""

import numpy as np
import pytest

from nucseg.measure import MEASUREMENT_COLUMNS, measure_nuclei, summarize_nuclei


def test_measurements_of_two_squares_in_a_16_bit_image():
    labels = np.zeros((20, 30), np.int32)
    labels[2:6, 3:7] = 1  # 4 x 4
    labels[10:20, 10:20] = 2  # 10 x 10, touching the bottom border
    image = np.zeros((20, 30), np.uint16)
    image[2:6, 3:7] = 1000
    image[12, 12] = 40000
    table = measure_nuclei("img", labels, image)
    assert list(table.columns) == MEASUREMENT_COLUMNS and list(table.label) == [1, 2]
    first, second = table.iloc[0], table.iloc[1]
    assert (first.area, first.centroid_row, first.centroid_col) == (16, 3.5, 4.5)
    assert (first.bbox_top, first.bbox_left, first.bbox_bottom, first.bbox_right) == (2, 3, 6, 7)
    assert first.mean_intensity == 1000 and second.max_intensity == 40000  # own bit depth
    assert first.equivalent_diameter == pytest.approx(2 * np.sqrt(16 / np.pi), abs=1e-3)
    assert first.solidity == 1.0 and first.eccentricity == 0.0
    summary = summarize_nuclei(table, {"img": (20, 30), "empty": (10, 10)}).set_index("image")
    assert summary.loc["img", "count"] == 2 and summary.loc["img", "mean_area"] == 58.0
    assert summary.loc["img", "coverage"] == pytest.approx(116 / 600, abs=1e-5)
    assert summary.loc["empty", "count"] == 0 and summary.loc["empty", "coverage"] == 0


def test_colour_images_are_measured_on_the_mean_of_their_channels():
    labels = np.zeros((8, 8), np.int32)
    labels[2:4, 2:4] = 1
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 3] = 30, 90, 255  # alpha is not intensity
    assert measure_nuclei("c", labels, rgba).mean_intensity.iloc[0] == 40.0
    assert measure_nuclei("c", np.zeros((8, 8), np.int32), rgba).empty
