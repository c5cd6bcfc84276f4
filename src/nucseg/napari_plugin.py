"""napari plugin: segment the selected image layer with a nucseg model folder.

Installed with ``pip install -e '.[napari]'``; napari finds it through the manifest
``nucseg/napari.yaml`` (npe2) and shows **Plugins > nucseg: Segment nuclei**: pick an image
layer and a model folder (default: the shipped model), optionally the typical nucleus
diameter in pixels; a labels layer ``<image> nuclei`` is added.  A stack layer (time,
z) is segmented plane by plane in 2-D, each plane's nuclei numbered from 1.  Segmentation
runs through :class:`nucseg.segmenter.Segmenter` (the engine behind ``nucseg predict``),
loaded once per folder.
"""

from functools import cache
from pathlib import Path

import napari
import numpy as np

from nucseg.errors import NucsegInputError

#: the shipped model, when nucseg runs from its repository checkout
SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "resources" / "models" / "dsb36gen20"


@cache
def _segmenter(folder: str):
    from nucseg.segmenter import Segmenter

    return Segmenter.from_folder(folder)


def segment_nuclei(
    image: np.ndarray,
    model_folder: Path = SHIPPED_MODEL,
    diameter: float = 0.0,
    rgb: bool | None = None,
) -> np.ndarray:
    """Instance labels (int32, 0 = background) of a gray or RGB image, or of every plane of
    a stack of them (``... x H x W``, RGB ``... x H x W x 3``; labels ``... x H x W``,
    numbered per plane); ``diameter`` > 0: the nuclei's typical size in pixels (one
    rescaled pass), 0: the folder's own scales; ``rgb``: whether the last axis is colour
    (None: when it has 3 or 4 entries, as napari guesses).  A lazy stack (a dask array, as
    napari opens large files) is read one plane at a time."""
    shape = tuple(image.shape)
    if rgb is None:
        rgb = len(shape) >= 3 and shape[-1] in (3, 4)
    plane_ndim = 3 if rgb else 2
    if len(shape) < plane_ndim:
        raise NucsegInputError(f"image layer of shape {shape}: not a 2-D image")
    segmenter = _segmenter(str(model_folder))
    stack_shape = shape[: len(shape) - plane_ndim]
    labels = np.zeros((*stack_shape, *shape[len(stack_shape) :][:2]), np.int32)
    for index in np.ndindex(*stack_shape):  # () once for a single image
        labels[index] = segmenter.segment(np.asarray(image[index]), diameter=diameter or None)
    return labels


def segment_nuclei_widget(
    image: napari.layers.Image,
    model_folder: Path = SHIPPED_MODEL,
    diameter: float = 0.0,
) -> napari.types.LayerDataTuple:
    """The widget napari shows: the labels of the image layer as a new labels layer."""
    labels = segment_nuclei(image.data, model_folder, diameter, rgb=image.rgb)
    return labels, {"name": f"{image.name} nuclei"}, "labels"
