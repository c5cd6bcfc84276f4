import numpy as np
import pytest
import tifffile
from helpers import build_version

from nucseg.datasets import SourceSpec
from nucseg.errors import NucsegInputError
from nucseg.io.images import read_image
from nucseg.io.sources import list_source
from nucseg.metrics import match_counts
from nucseg.synth.nuclei import SynthConfig, generate, write_ctc, write_demo_sources, write_monuseg


def test_monuseg_polygons_rasterise_back_to_the_rendered_nuclei(tmp_path):
    write_monuseg(tmp_path, n_tiles=1, seed=3, shape=(160, 200))
    (item,) = list_source("monuseg", tmp_path)
    (truth,) = generate(
        SynthConfig(
            n_images=1, seed=3, kind_weights=(0, 0, 1), shapes=((160, 200),), shape_weights=(1,)
        ),
        "monuseg",
    )
    image = read_image(item.image_path)
    np.testing.assert_array_equal(image, truth.pixels)
    labels = item.read_labels(image.shape[:2])
    counts = match_counts(truth.instance_labels, labels, thresholds=np.array([0.8]))
    assert counts.tp[0] >= 0.95 * truth.instance_labels.max()


def test_xml_without_regions_or_with_bad_vertices_is_named(tmp_path):
    write_monuseg(tmp_path, n_tiles=1, seed=3, shape=(64, 64))
    (xml_path,) = (tmp_path / "Annotations").glob("*.xml")
    (item,) = list_source("monuseg", tmp_path)
    text = xml_path.read_text()
    xml_path.write_text(text.replace('X="', 'Q="', 1))
    with pytest.raises(
        NucsegInputError, match=f"{xml_path.name}: region 1 has a vertex without numeric X"
    ):
        item.read_labels((64, 64))
    xml_path.write_text('<Annotations><Annotation Id="1"><Regions/></Annotation></Annotations>')
    with pytest.raises(NucsegInputError, match=f"{xml_path.name}: no Region"):
        item.read_labels((64, 64))
    xml_path.write_text("<Annotations><oops")
    with pytest.raises(NucsegInputError, match="not a readable XML"):
        item.read_labels((64, 64))


def test_ctc_lists_only_annotated_frames_with_one_origin_per_sequence(tmp_path):
    root = tmp_path / "Fluo-N2DH-SYN"
    write_ctc(root, n_frames=5, seed=2, annotate_every=2, shape=(64, 80))
    items = list_source("ctc", root)
    assert [i.image_id for i in items] == [f"Fluo-N2DH-SYN_01_t{n:03d}" for n in (0, 2, 4)]
    assert {i.origin for i in items} == {"Fluo-N2DH-SYN_01"}
    frame = read_image(items[0].image_path)
    assert frame.dtype == np.uint16
    assert items[0].read_labels(frame.shape).max() > 0


def test_ctc_label_image_with_wrong_dtype_is_named(tmp_path):
    root = tmp_path / "Fluo"
    write_ctc(root, n_frames=1, seed=2, shape=(64, 80))
    label_path = root / "01_GT" / "SEG" / "man_seg000.tif"
    tifffile.imwrite(label_path, np.zeros((64, 80), np.float32))
    # frame selection reads every label image, so a bad one stops the listing
    with pytest.raises(NucsegInputError, match="man_seg000.tif: label image has dtype float32"):
        list_source("ctc", root)


def test_plain_folder_pairs_and_missing_label(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((20, 30), np.uint8))
    tifffile.imwrite(tmp_path / "a_label.tif", np.arange(600, dtype=np.uint16).reshape(20, 30) % 3)
    (item,) = list_source("folder", tmp_path)
    assert item.image_id == "a" and item.read_labels((20, 30)).max() == 2
    tifffile.imwrite(tmp_path / "b.tif", np.zeros((20, 30), np.uint8))
    with pytest.raises(NucsegInputError, match="b.tif: no label image b_label.tif"):
        list_source("folder", tmp_path)


def test_assembly_mixes_every_format_with_categories_and_origins(tmp_path):
    write_demo_sources(tmp_path / "kaggle", n_train=2, n_test=1, seed=1, shapes=((64, 64),))
    write_monuseg(tmp_path / "monuseg", n_tiles=1, seed=1, shape=(96, 96))
    write_ctc(tmp_path / "ctc" / "Fluo-SYN", n_frames=4, seed=1, annotate_every=2, shape=(64, 64))
    sources = [
        SourceSpec("dsb", "kaggle_stage1", tmp_path / "kaggle" / "stage1_train"),
        SourceSpec("tcga", "monuseg", tmp_path / "monuseg"),
        SourceSpec("ctc", "ctc", tmp_path / "ctc" / "Fluo-SYN"),
    ]
    manifest = build_version(sources, tmp_path / "v1")
    assert manifest.groupby("source").size().to_dict() == {"ctc": 2, "dsb": 2, "tcga": 1}
    assert set(manifest[manifest.source == "tcga"].category) == {"histology"}
    assert set(manifest[manifest.source == "ctc"].category) == {"fluorescence"}
    assert manifest[manifest.source == "ctc"].origin.nunique() == 1
    assert (manifest.n_nuclei > 0).all()


def test_unknown_format_is_named():
    with pytest.raises(NucsegInputError, match="'zarr' is unknown"):
        list_source("zarr", ".")


def _labels_csv_from_masks(root, csv_path):
    """Turn a stage1_train tree into images + stage1_train_labels.csv (masks removed)."""
    import shutil

    from nucseg.io.kaggle import list_stage1, read_mask_labels
    from nucseg.rle import encode_labels

    lines = ["ImageId,EncodedPixels"]
    expected = {}
    for entry in list_stage1(root, require_masks=True):
        shape = read_image(entry.image_path).shape[:2]
        labels = read_mask_labels(entry.mask_paths, shape)
        expected[entry.image_id] = labels
        lines += [f"{entry.image_id},{rle}" for rle in encode_labels(labels).values()]
        shutil.rmtree(entry.image_path.parents[1] / "masks")
    csv_path.write_text("\n".join(lines) + "\n")
    return expected


def test_kaggle_nuclei_can_come_from_the_labels_csv(tmp_path):
    from nucseg.io.sources import SourceOptions

    write_demo_sources(tmp_path, n_train=3, n_test=1, seed=4, shapes=((64, 80),))
    csv_path = tmp_path / "stage1_train_labels.csv"
    expected = _labels_csv_from_masks(tmp_path / "stage1_train", csv_path)
    items = list_source(
        "kaggle_stage1", tmp_path / "stage1_train", SourceOptions(labels_csv=csv_path)
    )
    for item in items:
        np.testing.assert_array_equal(item.read_labels((64, 80)), expected[item.image_id])
    csv_path.write_text(csv_path.read_text() + "ffff,1 1\n")
    with pytest.raises(NucsegInputError, match="image ffff has rows but no folder"):
        list_source("kaggle_stage1", tmp_path / "stage1_train", SourceOptions(labels_csv=csv_path))
