import numpy as np
import pandas as pd
from skimage.draw import disk

from nucseg.acquisitions import FEATURES, acquisition_features, cluster_acquisitions


def _plate(seed, brightness, radius, n=4, size=128):
    """``n`` images of one microscope setting: nuclei of one radius and brightness (each
    image with its own positions and noise) on a dark background."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        labels = np.zeros((size, size), np.int32)
        for label in range(1, 13):
            centre = rng.integers(radius, size - radius, 2)
            labels[disk(tuple(centre), radius, shape=labels.shape)] = label
        signal = np.where(labels > 0, brightness * rng.uniform(0.8, 1.2), 8.0)
        gray = np.clip(signal + rng.normal(0, 3, labels.shape), 0, 255).astype(np.uint8)
        images.append((gray, labels))
    return images


def test_features_measure_in_the_images_own_range():
    gray, labels = _plate(1, 200.0, 6)[0]
    deep = gray.astype(np.uint16) * 40 + 2_000  # the same picture from a 16-bit camera
    eight, sixteen = acquisition_features(gray, labels), acquisition_features(deep, labels)
    assert set(eight) == set(FEATURES) and sixteen["nucleus_area"] == eight["nucleus_area"]
    assert abs(sixteen["p99"] - eight["p99"]) < 0.3


def test_images_of_one_setting_cluster_and_different_settings_do_not():
    plates = _plate(2, 60.0, 5) + _plate(3, 220.0, 11)
    rows = [
        {"category": "fluorescence", "height": 128, "width": 128}
        | acquisition_features(image, labels)
        for image, labels in plates
    ]
    names = cluster_acquisitions(pd.DataFrame(rows, index=[f"o{k}" for k in range(8)]), "src")
    assert names[:4].nunique() == 1 and names[4:].nunique() == 1
    assert names.iloc[0] == "src:fluorescence:128x128:1" != names.iloc[4]


def test_images_of_other_sizes_are_other_acquisitions():
    rows = pd.DataFrame(
        [
            {"category": "histology", "height": h, "width": 320} | dict.fromkeys(FEATURES, 0.0)
            for h in (256, 256, 512)
        ],
        index=["a", "b", "c"],
    )
    names = cluster_acquisitions(rows, "s")
    assert names["a"] == names["b"] != names["c"]
