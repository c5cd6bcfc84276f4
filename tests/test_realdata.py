"""Real annotated files (``../shared/realdata`` beside the repository, or ``$NUCSEG_REALDATA``):
every reader on a few images of each set, the CTC frame selection, category detection and
nuclei-bright normalisation.  A user's clone has no such folder: the tests skip then."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from nucseg.datasets import SourceSpec, convert_source
from nucseg.errors import NucsegInputError
from nucseg.io.images import read_image
from nucseg.io.sources import SourceOptions, list_source
from nucseg.normalize import detect_category, normalize_image

REALDATA = Path(
    os.environ.get("NUCSEG_REALDATA", Path(__file__).resolve().parents[2] / "shared" / "realdata")
)
pytestmark = pytest.mark.skipif(
    not (REALDATA / "dsb2018").is_dir(),
    reason=f"no real data at {REALDATA} (set NUCSEG_REALDATA to the shared realdata folder)",
)
DSB = REALDATA / "dsb2018" / "stage1_train"
MONUSEG = REALDATA / "monuseg"
CTC = REALDATA / "ctc" / "Fluo-N2DH-GOWT1"

# one image of each DSB2018 kind: (id, category, height, width, nuclei)
DSB_SAMPLES = [
    (
        "00071198d059ba7f5914a526d124d28e6d010c92466da21d4a04cd5413362552",
        "fluorescence",
        256,
        256,
        27,
    ),
    ("00ae65c1c6631ae6f2be1a449902976e6eb8483bf6b0740d00530220832c6d3e", "histology", 256, 320, 70),
    (
        "08275a5b1c2dfcd739e8c4888a5ee2d29f83eccfa75185404ced1dc0866ea992",
        "brightfield",
        1024,
        1024,
        98,
    ),
]


@pytest.fixture(scope="module")
def dsb_subset(tmp_path_factory):
    """The three sample images in Kaggle's layout (the reader lists a whole folder)."""
    root = tmp_path_factory.mktemp("dsb") / "stage1_train"
    for image_id, *_ in DSB_SAMPLES:
        shutil.copytree(DSB / image_id, root / image_id)
    return root


def test_kaggle_rgba_pngs_read_with_one_label_per_mask(dsb_subset):
    items = {item.image_id: item for item in list_source("kaggle_stage1", dsb_subset)}
    for image_id, category, height, width, nuclei in DSB_SAMPLES:
        image = read_image(items[image_id].image_path)
        assert image.shape == (height, width, 4) and image.dtype == np.uint8  # RGBA
        labels = items[image_id].read_labels((height, width))
        assert labels.max() == nuclei == len(np.unique(labels)) - 1
        assert detect_category(image) == category


def test_monuseg_lzw_tiles_and_aperio_polygons_read(tmp_path):
    image_path = MONUSEG / "Tissue Images" / "TCGA-21-5784-01Z-00-DX1.tif"
    image = read_image(image_path)  # LZW-compressed: needs imagecodecs
    assert image.shape == (1000, 1000, 3) and image.dtype == np.uint8
    items = {item.image_id: item for item in list_source("monuseg", MONUSEG)}
    assert len(items) == 13
    labels = items["TCGA-21-5784-01Z-00-DX1"].read_labels((1000, 1000))
    assert labels.max() == 398  # one label per XML region
    # haematoxylin makes nuclei bright: annotated pixels outshine the rest
    normalized, category = normalize_image(image)
    assert category == "histology"
    assert normalized[0][labels > 0].mean() > normalized[0][labels == 0].mean() + 0.2


def test_every_monuseg_tile_is_histology_even_the_dark_one():
    for image_path in sorted((MONUSEG / "Tissue Images").glob("*.tif")):
        assert detect_category(read_image(image_path)) == "histology", image_path.name


def test_ctc_keeps_only_the_fully_annotated_frames():
    items = list_source("ctc", CTC)
    frames = [item.image_id.rsplit("_t", 1)[1] for item in items]
    assert frames == ["021", "031", "033", "039"]  # the 26 others label 1-3 nuclei each
    labels = items[0].read_labels((1024, 1024))
    assert labels.max() == 24 and read_image(items[0].image_path).dtype == np.uint8


def test_ctc_frame_list_picks_frames_and_names_absent_ones():
    items = list_source("ctc", CTC, SourceOptions(frames=("021", "033")))
    assert [item.image_id[-4:] for item in items] == ["t021", "t033"]
    with pytest.raises(NucsegInputError, match=r"frames \['999'\] named"):
        list_source("ctc", CTC, SourceOptions(frames=("021", "999")))


def test_ctc_source_converts_to_a_fluorescence_manifest(tmp_path):
    manifest = convert_source(SourceSpec("gowt1", "ctc", CTC), tmp_path / "gowt1")
    assert len(manifest) == 4 and set(manifest.category) == {"fluorescence"}
    assert manifest.origin.nunique() == 1  # one sequence: one side of any split
