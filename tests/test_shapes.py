"""Outputs other tools open, each read back by its own library: ImageJ ROI sets (roifile),
QuPath GeoJSON (json + shapely), calibrated label TIFFs (tifffile)."""

import json

import numpy as np
import pytest
import roifile
import shapely
import tifffile
from skimage.draw import polygon2mask

from nucseg.io.shapes import outlines, write_geojson, write_imagej_rois, write_label_tiff
from nucseg.measure import measure_nuclei
from nucseg.synth.nuclei import SynthConfig, generate


@pytest.fixture(scope="module")
def labelled():
    """Generated nuclei: irregular, touching, cut by the border."""
    config = SynthConfig(n_images=3, seed=8, shapes=((96, 120),), shape_weights=(1.0,))
    return [(item.pixels, item.instance_labels) for item in generate(config, "o")]


def _filled(corners_xy: np.ndarray, shape) -> np.ndarray:
    """The pixels whose centres lie inside a polygon given by pixel-corner ``x, y``."""
    return polygon2mask(shape, corners_xy[:, ::-1] - 0.5)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return (a & b).sum() / (a | b).sum()


def test_imagej_rois_read_back_cover_each_nucleus(labelled, tmp_path):
    for k, (_, labels) in enumerate(labelled):
        path = tmp_path / f"img{k}_rois.zip"
        assert write_imagej_rois(labels, path) == labels.max()
        rois = roifile.roiread(path)
        assert [r.name for r in rois] == [str(i) for i in range(1, labels.max() + 1)]
        for roi in rois:
            nucleus = labels == int(roi.name)
            assert _iou(_filled(roi.coordinates(), labels.shape), nucleus) >= 0.9, roi.name


def test_qupath_geojson_reads_back_as_detections_with_measurements(labelled, tmp_path):
    image, labels = labelled[0]
    measurements = measure_nuclei("img", labels, image).drop(columns="image").set_index("label")
    assert write_geojson(labels, tmp_path / "img.geojson", measurements) == labels.max()
    collection = json.loads((tmp_path / "img.geojson").read_text())
    assert collection["type"] == "FeatureCollection"
    for feature in collection["features"]:
        label = int(feature["properties"]["name"])
        assert feature["properties"]["objectType"] == "detection"
        assert feature["properties"]["measurements"]["area"] == (labels == label).sum()
        polygon = shapely.geometry.shape(feature["geometry"])
        assert polygon.is_valid and polygon.area == pytest.approx((labels == label).sum())
        corners = np.asarray(polygon.exterior.coords)
        assert _iou(_filled(corners, labels.shape), labels == label) >= 0.9


def test_outlines_keep_the_largest_piece_of_a_split_nucleus():
    labels = np.zeros((20, 20), np.int32)
    labels[2:6, 2:6] = 1
    labels[10:18, 10:18] = 1  # the same label in two pieces
    [(label, polygon)] = list(outlines(labels))
    assert label == 1 and polygon.area == 64


def test_label_tiffs_carry_their_pixel_size_and_grow_to_32_bit(tmp_path):
    labels = np.arange(12 * 10, dtype=np.int32).reshape(12, 10)
    write_label_tiff(labels, tmp_path / "small.tif", pixel_size_um=0.5)
    with tifffile.TiffFile(tmp_path / "small.tif") as tif:
        assert tif.is_imagej and tif.imagej_metadata["unit"] == "um"
        assert tif.pages[0].dtype == np.uint16
        numerator, denominator = tif.pages[0].tags["XResolution"].value
        assert numerator / denominator == pytest.approx(2.0)  # pixels per micrometre
        np.testing.assert_array_equal(tif.asarray(), labels)
    many = np.arange(300 * 300, dtype=np.int32).reshape(300, 300)  # 89,999 nuclei
    write_label_tiff(many, tmp_path / "many.tif", pixel_size_um=0.5)
    read = tifffile.imread(tmp_path / "many.tif")
    assert read.dtype == np.uint32 and np.array_equal(read, many)
