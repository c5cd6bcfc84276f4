"""The prediction engine: load a model (or an ensemble) once, segment numpy arrays.

    from nucseg import Segmenter
    seg = Segmenter.from_folder("resources/models/dsb36gen20")
    labels = seg.segment(image)          # H x W int32 instance labels, 0 = background
    labels = seg.segment(image, diameter=40)   # nuclei ~40 px across: one rescaled pass
    maps = seg.probabilities(image)      # K x H x W head probabilities (semantic, contour, marker)
    for labels in seg.segment_many(images): ...

``image`` is a 2-D gray array or ``H x W x C`` (C = 1, 3 or 4), of any bit depth (uint8,
uint16, float): it is normalised the way the model's training data was (recorded in the
checkpoint), predicted with the model folder's settings (``predict.json``: test-time views,
scales, tile size) and separated into instances with its tuned ``thresholds.json``, exactly
as ``nucseg predict`` and the workflow do.  A model folder is the shipped layout of
:mod:`nucseg.export`; a bare checkpoint (``model.pt``) works too, with default settings.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from nucseg.checkpoints import checkpoint_normalization, network_of, read_checkpoint, select_device
from nucseg.ensemble import weighted_mean
from nucseg.errors import NucsegInputError
from nucseg.models import SegmentationNet
from nucseg.normalize import NormalizeConfig, normalize_image
from nucseg.postprocess import PostprocessConfig, instances_from_probability, read_thresholds
from nucseg.predict import PredictConfig, network_for, predict_probability, settle_reading

log = logging.getLogger(__name__)

#: settings :meth:`Segmenter.from_models` takes from a model folder's ``predict.json``
FOLDER_SETTINGS = {
    "tta_views": "views",
    "scales": "scales",
    "tile": "tile",
    "search_from": "search_from",
    "shrink_from": "shrink_from",
    "nucleus_diameter": "nucleus_diameter",
    "enlarge_below": "enlarge_below",
    "dim_gamma": "dim_gamma",
}


def checkpoint_path(model: Path | str) -> Path:
    """A checkpoint file, or a model folder's ``model.pt``."""
    model = Path(model)
    return model / "model.pt" if model.is_dir() else model


def folder_file(models: list[Path | str], name: str) -> Path | None:
    """File ``name`` beside the checkpoint of a single model (a model folder's), if any."""
    if len(models) != 1:
        return None
    candidate = checkpoint_path(models[0]).parent / name
    return candidate if candidate.is_file() else None


def folder_predict_settings(models: list[Path | str]) -> dict:
    """A single model folder's ``predict.json`` (the test-time views, scales and tile size
    its thresholds were tuned with), or ``{}``."""
    path = folder_file(models, "predict.json")
    if path is None:
        return {}
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise NucsegInputError(f"{path}: not a JSON file ({error})") from None


def predict_config(
    models: list[Path | str],
    *,
    views: Iterable[int] | None = None,
    scales: Iterable[float] | None = None,
    tile: int | None = None,
    precision: str = "auto",
    diameter: float | None = None,
    dim_gamma: float | None = None,
) -> PredictConfig:
    """The prediction settings of :meth:`Segmenter.from_models`: those given, else a single
    model folder's (``predict.json``), else :class:`PredictConfig`'s defaults; ``diameter``
    replaces the scale search by one scale (:func:`diameter_scale`); ``scales`` given are
    searched on every image and only those (the folder's ``search_from`` and
    ``enlarge_below`` are dropped)."""
    folder = folder_predict_settings(models)
    if diameter is not None:
        if scales is not None:
            raise NucsegInputError("--diameter and --scales both set: give one of them")
        scales = (diameter_scale(folder.get("nucleus_diameter"), diameter),)
    settings = {FOLDER_SETTINGS[k]: v for k, v in folder.items() if k in FOLDER_SETTINGS}
    if scales is not None:  # scales given: searched in full, and no others
        for rule in ("search_from", "shrink_from", "enlarge_below"):
            settings.pop(rule, None)
    given = {"views": views, "scales": scales, "tile": tile, "dim_gamma": dim_gamma}
    settings |= {k: v for k, v in given.items() if v is not None}
    return PredictConfig(**settings, precision=precision)


def diameter_scale(learned: float | None, diameter: float) -> float:
    """The one scale that brings nuclei of ``diameter`` pixels to the ``learned`` size of a
    model folder (its ``predict.json`` ``nucleus_diameter``)."""
    if not diameter > 0:
        raise NucsegInputError(f"--diameter: {diameter} is not a positive size in pixels")
    if not learned:
        raise NucsegInputError(
            "--diameter: the model records no nucleus_diameter in its predict.json (a single "
            "model folder exported by nucseg does)"
        )
    scale = learned / diameter
    if not 0.05 <= scale <= 4:
        raise NucsegInputError(
            f"--diameter: {diameter} px nuclei would be rescaled x{scale:.2f} to the model's "
            f"{learned} px; outside x0.05..x4"
        )
    return scale


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """``image`` as an array the normalisation takes (2-D, or ``H x W x C`` with C = 1, 3 or
    4; integer or float; at least 8 x 8), else :class:`NucsegInputError` naming ``name``."""
    image = np.asarray(image)
    if image.dtype.kind not in "uif" and image.dtype != bool:
        raise NucsegInputError(f"{name}: dtype {image.dtype} is not an image (integers or floats)")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] in (1, 3, 4))):
        raise NucsegInputError(
            f"{name}: shape {image.shape} is not H x W or H x W x C with C = 1, 3 or 4 "
            "(a stack or a channels-first array? pass one 2-D plane, channels last)"
        )
    if min(image.shape[:2]) < 8:
        raise NucsegInputError(f"{name}: {image.shape[0]}x{image.shape[1]} is below 8 x 8 pixels")
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise NucsegInputError(f"{name}: holds NaN or infinite values")
    return image.astype(np.uint8) * 255 if image.dtype == bool else image


@dataclass
class Segmenter:
    """One model or an ensemble, loaded once (see the module docstring).

    ``networks`` are in eval mode on ``device``; an ensemble averages their head maps with
    ``weights`` (or takes a weighted majority ``vote``) before separating instances.
    """

    networks: list[SegmentationNet]
    normalize: NormalizeConfig
    thresholds: PostprocessConfig
    predict: PredictConfig
    device: torch.device
    weights: list[float] | None = None
    vote: bool = False
    nucleus_diameter: float | None = None  # what it learned from (a model folder's)

    @classmethod
    def from_folder(cls, folder: Path | str, **options) -> Segmenter:
        """A shipped model folder (``model.pt``, ``thresholds.json``, ``predict.json``);
        ``options`` as :meth:`from_models`."""
        return cls.from_models([folder], **options)

    @classmethod
    def from_models(
        cls,
        models: list[Path | str],
        *,
        thresholds: Path | str | PostprocessConfig | None = None,
        views: Iterable[int] | None = None,
        scales: Iterable[float] | None = None,
        tile: int | None = None,
        precision: str = "auto",
        diameter: float | None = None,
        dim_gamma: float | None = None,
        weights: list[float] | None = None,
        vote: bool = False,
        device: str = "auto",
    ) -> Segmenter:
        """Model folders or checkpoints (several: an ensemble).  Settings not given come
        from a single model folder (its ``predict.json`` and ``thresholds.json``), else
        :class:`PredictConfig`'s and :class:`PostprocessConfig`'s defaults.  ``diameter``:
        the typical nucleus diameter of the user's images in pixels; each image is then
        predicted once, rescaled so its nuclei match the size the model learned from (the
        folder's ``nucleus_diameter``), instead of searching ``scales``.  :meth:`compiled`
        runs the networks through ``torch.compile``."""
        if not models:
            raise NucsegInputError("no model given")
        paths = [checkpoint_path(m) for m in models]
        torch_device = select_device(device)
        payloads = {p: read_checkpoint(p) for p in paths}  # each file read once
        networks = [network_of(payloads[p], p, torch_device) for p in paths]  # errors first
        normalizations = {checkpoint_normalization(payloads[p], p) for p in paths}
        if len(normalizations) > 1:
            raise NucsegInputError("the models were trained on differently normalised images")
        predict = predict_config(
            models,
            views=views,
            scales=scales,
            tile=tile,
            precision=precision,
            diameter=diameter,
            dim_gamma=dim_gamma,
        )
        networks = [network_for(n, predict) for n in networks]  # as prediction runs them
        if thresholds is None:
            thresholds = folder_file(models, "thresholds.json")
        if not isinstance(thresholds, PostprocessConfig):
            thresholds = read_thresholds(thresholds) if thresholds else PostprocessConfig()
        return cls(
            networks,
            normalizations.pop(),
            thresholds,
            predict,
            torch_device,
            weights,
            vote,
            folder_predict_settings(models).get("nucleus_diameter"),
        )

    def compiled(self) -> Segmenter:
        """The same segmenter with its networks through ``torch.compile``
        (:func:`nucseg.predict.network_for`: it pays on many images of one size)."""
        if self.predict.compile:
            return self
        predict = replace(self.predict, compile=True)
        return replace(
            self, networks=[network_for(n, predict) for n in self.networks], predict=predict
        )

    def probabilities(
        self, image: np.ndarray, diameter: float | None = None, name: str = "image"
    ) -> np.ndarray:
        """Head probabilities ``K x H x W`` (float32) of an image (see the module docstring);
        an ensemble's weighted mean.  ``diameter``: its nuclei's typical diameter in pixels,
        for one rescaled pass instead of the settings' scales; ``name`` is what errors and
        warnings call the image (e.g. its file)."""
        image = check_image(image, name)
        if diameter is not None:
            diameter_scale(self.nucleus_diameter, diameter)  # a bad diameter fails first
        if image.min() == image.max():
            log.warning("%s: every pixel is %s (no contrast): no nuclei", name, image.flat[0])
            heads = self.networks[0].config.out_channels
            return np.zeros((heads, *image.shape[:2]), np.float32)
        normalized = normalize_image(image, self.normalize)
        pixels, category = settle_reading(  # an ensemble's first network settles it
            self.networks[0], image, normalized, self.normalize, self.device, self.predict
        )
        return self.probabilities_of_normalized(pixels, diameter, category)

    def probabilities_of_normalized(
        self, pixels: np.ndarray, diameter: float | None = None, category: str | None = None
    ) -> np.ndarray:
        """:meth:`probabilities` of an image already normalised as the model expects
        (``C x H x W`` float32 in [0, 1]); ``category``: the one normalisation detected
        (:func:`nucseg.normalize.normalize_image`), for the settings that depend on it
        (``enlarge_below`` per category and ``dim_gamma``: without it, no image is enlarged
        by those, nor given the dim-nuclei pass)."""
        predict = self.predict
        if diameter is not None:
            scale = diameter_scale(self.nucleus_diameter, diameter)
            predict = replace(predict, scales=(scale,), enlarge_below=0.0)  # the size is known
        maps = [
            {"image": predict_probability(n, pixels, self.device, predict, category)}
            for n in self.networks
        ]
        return weighted_mean(maps, self.weights, self.vote)["image"]

    def segment(
        self, image: np.ndarray, diameter: float | None = None, name: str = "image"
    ) -> np.ndarray:
        """Instance labels ``H x W`` (int32, 0 = background, 1..N) of an image (``diameter``
        and ``name`` as :meth:`probabilities`)."""
        maps = self.probabilities(image, diameter, name)
        return instances_from_probability(maps, self.thresholds)

    def segment_many(
        self, images: Iterable[np.ndarray], diameter: float | None = None
    ) -> Iterator[np.ndarray]:
        """:meth:`segment` of each image of a stream, one at a time."""
        for image in images:
            yield self.segment(image, diameter)
