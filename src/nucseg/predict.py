"""Probability maps from a trained network, at any image size, with test-time augmentation."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage as ndi

from nucseg.augment import dihedral, inverse_dihedral
from nucseg.checkpoints import checkpoint_normalization, network_of, read_checkpoint, select_device
from nucseg.errors import NucsegInputError
from nucseg.models import ModelConfig, SegmentationNet
from nucseg.models.folding import fold_batch_norms
from nucseg.normalize import (
    CATEGORIES,
    LIGHT_BACKGROUND_SHARE,
    NormalizeConfig,
    dark_end_share,
    normalize_image,
    nuclei_bright,
)
from nucseg.precision import autocast, autocast_dtype, channels_last, convolutions_in

log = logging.getLogger(__name__)


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    """Pad the bottom/right of ``... x H x W`` to multiples of ``multiple`` (reflect, or edge
    when the image is too small to reflect)."""
    height, width = image.shape[-2:]
    pad = ((0, 0),) * (image.ndim - 2) + ((0, -height % multiple), (0, -width % multiple))
    mode = "reflect" if pad[-2][1] < height and pad[-1][1] < width else "edge"
    return np.pad(image, pad, mode=mode)


@dataclass(frozen=True)
class PredictConfig:
    """How probability maps are computed (config ``predict:``).

    ``views``: dihedral views averaged at test time (0..7, see
    :func:`nucseg.augment.dihedral`).  Images with a side above ``tile`` pixels run as
    overlapping tiles of at most ``tile x tile`` pixels, sized to the image
    (:func:`tile_length`): each tile's outer ``tile_margin`` pixels are dropped
    (unless on the image border) and neighbours cross-fade over ``tile_ramp`` pixels with
    complementary sin² ramps, so with a margin beyond the network's reach the result equals
    a whole-image prediction.  The default margin, ``6 x`` the network's multiple, covers
    a plain U-Net's receptive-field radius (~``6 * 2**depth`` pixels; measured: depth 4 tiles
    differ from the whole image by 0.012 with a 64-pixel margin, 1e-7 with 96).  Sizes are
    rounded up to the network's multiple.  ``precision``: ``auto``, ``fp32`` or ``bf16``
    (:mod:`nucseg.precision`), whatever precision the model was trained in.

    ``scales``: the image is predicted at each of these sizes (factors of its own; 1.0 =
    as it is) and the maps of the scale where the network is most confident
    (:func:`map_confidence`) are kept, resized back.  Nuclei far larger than those seen in
    training are cut into pieces at full size but come out whole when shrunk (measured on
    real held-out images: the 60-pixel nuclei of Fluo-N2DH-GOWT1 went from DSB 0.00 at
    full size to 0.43 at a third); the confidence picks the shrunk scale for them and full
    size for ordinary images.  For nuclei 2-3x the learned size a size estimate of the
    full-size map alone chose worse than the search (``shrink_from``).  The scale is
    chosen on the first view alone, and only the chosen scale runs the other views: with 4
    views and scales 1, 0.5, 0.33 an image costs 1.36 + 3 s² full-size passes instead of
    4 x 1.36.  ``search_from``: the other scales run only when the first scale's map has
    objects of at least this many pixels across (:func:`typical_objects`; 0:
    always): images of nuclei near the trained size skip the search.  With dsb36 (its
    training nuclei: 21.7 pixels) at 32 pixels, 102 of its 133 held-out DSB images skip it
    and no image of Coelho, CTC, GBM40 or MoNuSeg whose best scale was a smaller one does
    (docs/benchmarks.md).

    ``shrink_from`` (pixels, 0: off) with ``nucleus_diameter`` (the nuclei the network
    learned from: a model folder's ``predict.json`` gives it; 0 leaves it to the
    checkpoint, :func:`with_learned_size`): an image whose first-scale map has
    objects of at least this many pixels across (:func:`typical_objects`) is
    predicted at the one scale that brings them to ``nucleus_diameter`` instead of
    searching ``scales``: for nuclei still ~1.7x the learned size at the smallest searched
    scale (a third), the confidence rule picks too large a scale and the network cuts the
    nuclei.  The size of the full-size map holds there (the region holding its median
    foreground pixel: Coelho's ~110-pixel nuclei measure 85-121).  With dsb36
    (docs/experiments.md) at 90 pixels: Coelho 0.670 -> 0.704 (as 16-bit frames 0.671 ->
    0.697); row 17's network 0.533 -> 0.653 (at 80 pixels).  Below that the search
    wins: nuclei 1.5-4x the learned size come out better near full size (dsb36's held-out
    DSB fluorescence of 32-61-pixel nuclei 0.724 searched, 0.693 at the learned size; the
    same images enlarged 1.4x, 46-86 pixels, 0.720 against 0.685).  Only a map with
    :data:`SHRINK_ALIKE` objects that size or more is shrunk: one whose nuclei merged into
    a few clumps (crowded stained tissue) measures the clumps, and shrunk to them its
    nuclei vanish.

    ``enlarge_below``: an image whose first-scale map has objects under this many pixels
    across (:func:`typical_objects`, above 0) is predicted at twice that scale
    instead, every view (0: never); a mapping gives a gate per category of
    :func:`nucseg.normalize.detect_category` (``{"fluorescence": 14, "histology": 24}``;
    a category it does not name, or an image of unknown category, is never enlarged).
    Small nuclei come out with truer outlines when enlarged, and the confidence rule
    cannot tell (enlarged maps are a little less confident).  The gate differs by category
    because the size is of the map's regions: crowded H&E nuclei touch, and their regions
    measure larger than the nuclei.  With dsb36 (measured, docs/experiments.md): at 14
    pixels for fluorescence, its held-out DSB fluorescence images of small nuclei (24 of
    109) 0.640 -> 0.658, Coelho's at a tenth 0.628 -> 0.645; at 24 pixels for H&E, its 20
    held-out DSB H&E images 0.366 -> 0.370 (3 enlarged), those shrunk to 0.6 0.324 ->
    0.353, GBM40's tiles 0.426 -> 0.431 (6 of 40); images of larger nuclei are not
    touched.

    ``dim_gamma``: fluorescence images get one more pass (first view, at the chosen scale)
    of their pixels raised to this power above their background (:func:`brightened`;
    e.g. 0.5: a nucleus at a tenth of the bright ones' height comes up to a third), and
    the regions of it where the plain map found nothing are taken from it
    (:func:`rescue_dim_nuclei`; 0: off).  Nuclei several-fold dimmer than their
    neighbours get no response from a network trained on images scaled to their bright
    ones; lifted, they do.  Lifting the whole map instead enlarges every object and finds
    debris: dsb36's held-out DSB fluorescence 0.674 -> 0.620 at 0.5.  The pass runs only
    on images whose plain map shows a trace of a nucleus it did not find, alone or beside
    a found one (:func:`has_dim_candidates`).  Measured with dsb36 (session 41,
    docs/experiments.md), without the pass -> with it: the 4 CTC frames 0.776 -> 0.852
    (12 of their nuclei are under a quarter of the median brightness; the plain map found
    none), as 16-bit camera frames 0.766 -> 0.855, Coelho 0.670 -> 0.670 (as 16-bit
    frames 0.669 -> 0.671), its held-out DSB fluorescence 0.675 -> 0.674 (faint blobs its
    annotators left out).  Images of unknown category get no dim pass.

    ``check_polarity``: an image normalisation calls brightfield may be fluorescence whose
    nuclei cover most of it (a dense tissue, a crop of touching nuclei): unless it has
    brightfield's compact light background, the network reads it both ways and keeps the
    more confident (:func:`settle_reading`).  ``check_blue``: a colour fluorescence image
    may be an overlay of the nuclear stain (blue) and others: the network also reads its
    blue plane alone and keeps the more confident reading (:func:`settle_reading`).

    ``compile``: the network runs through ``torch.compile`` (:func:`network_for`).
    """

    views: tuple[int, ...] = (0,)
    tile: int = 1024
    tile_margin: int | None = None
    tile_ramp: int = 32
    precision: str = "auto"
    scales: tuple[float, ...] = (1.0,)
    search_from: float = 0.0
    shrink_from: float = 0.0
    nucleus_diameter: float = 0.0
    enlarge_below: float | Mapping[str, float] = 0.0
    dim_gamma: float = 0.0
    check_polarity: bool = True
    check_blue: bool = True
    compile: bool = False

    def __post_init__(self):  # settings as JSON and YAML give them: lists, ints for floats
        object.__setattr__(self, "views", tuple(int(v) for v in self.views))
        object.__setattr__(self, "scales", tuple(float(v) for v in self.scales))
        object.__setattr__(self, "tile", int(self.tile))
        object.__setattr__(self, "search_from", float(self.search_from))
        object.__setattr__(self, "shrink_from", float(self.shrink_from))
        object.__setattr__(self, "nucleus_diameter", float(self.nucleus_diameter or 0.0))
        object.__setattr__(self, "dim_gamma", float(self.dim_gamma))
        if not 0 <= self.dim_gamma <= 1:  # a negative power would make black pixels infinite
            raise NucsegInputError(f"predict.dim_gamma: {self.dim_gamma} is not in [0, 1] (0: off)")
        gate = self.enlarge_below
        if isinstance(gate, Mapping):
            unknown = sorted(set(gate) - set(CATEGORIES))
            if unknown:
                raise NucsegInputError(
                    f"predict.enlarge_below: {unknown[0]!r} is not a category "
                    f"({', '.join(CATEGORIES)})"
                )
            gate = {category: float(pixels) for category, pixels in gate.items()}
        object.__setattr__(self, "enlarge_below", gate if isinstance(gate, dict) else float(gate))

    @classmethod
    def from_config(cls, options: dict) -> PredictConfig:
        """From config ``predict:`` (``tta_views`` -> ``views``; ``shards`` and
        ``keep_maps`` are the DAG's)."""
        options = {k: v for k, v in options.items() if k not in ("shards", "keep_maps")}
        options["views"] = options.pop("tta_views", (0,))
        return cls(**options)

    def enlarge_gate(self, category: str | None) -> float:
        """``enlarge_below`` for an image of ``category`` (0: never enlarged)."""
        if isinstance(self.enlarge_below, Mapping):
            return float(self.enlarge_below.get(category, 0.0)) if category else 0.0
        return float(self.enlarge_below)


def describe_gate(gate: float | Mapping[str, float]) -> str:
    """``enlarge_below`` in words: ``14 px`` or ``14 px (fluorescence) or 24 px (histology)``."""
    if isinstance(gate, Mapping):
        return " or ".join(f"{pixels:g} px ({category})" for category, pixels in gate.items())
    return f"{gate:g} px"


def network_for(model: SegmentationNet, config: PredictConfig) -> torch.nn.Module:
    """The network as prediction calls it: ``model`` with its batch norms folded into the
    convolutions that read them (:func:`nucseg.models.folding.fold_batch_norms`), its
    convolution weights stored in ``config.precision``'s autocast dtype
    (:func:`nucseg.precision.convolutions_in`), and with ``config.compile`` that through
    ``torch.compile`` (inductor, dynamic shapes: one compilation serves every
    image size, view batch and tile).  Outside ``config.precision`` it must not run: use
    one network per precision.  Compiled, batch norm, ReLU and concatenation run as
    fused kernels beside oneDNN's convolutions, probabilities within ~0.02 of eager's,
    after a one-off compilation of ~15 s (cached on disk) to ~60 s.  Measured
    (docs/benchmarks.md): x1.14 on 133 DSB images of many sizes once compiled (slower in
    all with the compilation), ~x2 on images of repeating sizes.  Without a C++ compiler
    (which inductor needs) the model stays eager, with a warning."""
    device = next(model.parameters()).device
    network = convolutions_in(fold_batch_norms(model), autocast_dtype(config.precision, device))
    if not config.compile:
        return network
    if not any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "c++")):
        log.warning("no C++ compiler (g++) for torch.compile: predicting eagerly")
        return network
    return torch.compile(network, dynamic=True)


class LoadedModel(NamedTuple):
    """What :func:`load_for_prediction` gives a job that predicts many images."""

    network: torch.nn.Module  # as prediction calls it (:func:`network_for`)
    normalize: NormalizeConfig  # how its training images were normalised
    device: torch.device
    config: PredictConfig  # with the nucleus size it records (:func:`with_learned_size`)


def load_for_prediction(
    model_path: Path | str, config: PredictConfig, threads: int = 1, device: str = "auto"
) -> LoadedModel:
    """A checkpoint loaded once for many images (torch set to ``threads``)."""
    torch.set_num_threads(max(1, threads))
    torch_device = select_device(device)
    payload = read_checkpoint(model_path)
    network = network_for(network_of(payload, model_path, torch_device), config)
    normalize = checkpoint_normalization(payload, model_path)
    return LoadedModel(
        network, normalize, torch_device, with_learned_size(config, payload, model_path)
    )


def with_learned_size(config: PredictConfig, payload: dict, path: Path | str) -> PredictConfig:
    """``config`` for the checkpoint at ``path`` (its ``payload``): a ``shrink_from`` whose
    ``nucleus_diameter`` is left to the model (0) gets the size the checkpoint records
    (the typical nucleus of its training side: training and ``install_pretrained`` write
    it).  A checkpoint that records none is predicted without ``shrink_from`` (warned)."""
    if not config.shrink_from or config.nucleus_diameter > 0:
        return config
    recorded = payload.get("nucleus_diameter")
    if recorded:
        return replace(config, nucleus_diameter=float(recorded))
    log.warning(
        "%s records no nucleus size (trained before checkpoints recorded it): predicted "
        "without predict.shrink_from; set predict.nucleus_diameter to use it",
        path,
    )
    return replace(config, shrink_from=0.0)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def head_probabilities(config: ModelConfig, logits: torch.Tensor) -> torch.Tensor:
    """Probabilities of pixel-head logits ``N x K x H x W``: a softmax over the classes of a
    multi-class head, else a sigmoid per head."""
    return torch.softmax(logits, dim=1) if config.classes else torch.sigmoid(logits)


def _views_and_presence(
    model, padded: np.ndarray, device, views: tuple[int, ...], dtype: torch.dtype | None
) -> tuple[np.ndarray, float | None]:
    """Mean de-augmented probabilities ``K x H x W`` of a padded image over ``views``, and
    the mean presence probability (None without a presence head); views of equal shape run
    as one batch, under autocast to ``dtype`` (None: float32)."""
    total = np.zeros((model.config.out_channels, *padded.shape[-2:]), np.float32)
    presences = []
    transposed = [v for v in views if (v >= 4) != (v % 2 == 1)]
    for group in ([v for v in views if v not in transposed], transposed):
        if not group:
            continue
        batch = np.stack([dihedral(padded, v) for v in group])
        tensor = channels_last(torch.from_numpy(np.ascontiguousarray(batch)).to(device))
        with autocast(device, dtype):
            output = model(tensor)
        prob = head_probabilities(model.config, output.masks.float()).cpu().numpy()
        for v, p in zip(group, prob, strict=True):
            total += inverse_dihedral(p, v)
        if output.presence is not None:
            presences += torch.sigmoid(output.presence.float()).cpu().tolist()
    return total / len(views), (float(np.mean(presences)) if presences else None)


def _predict_views(
    model, padded: np.ndarray, device, views: tuple[int, ...], dtype: torch.dtype | None
) -> np.ndarray:
    """The maps of :func:`_views_and_presence`."""
    return _views_and_presence(model, padded, device, views, dtype)[0]


@torch.inference_mode()
def predict_with_presence(
    model: SegmentationNet,
    image: np.ndarray,
    device: torch.device,
    views: tuple[int, ...] = (0,),
    precision: str = "auto",
) -> tuple[np.ndarray, float | None]:
    """Probabilities ``K x H x W`` of a normalised ``C x H x W`` image (padded to the
    network's multiple, cropped back; one pass per view, no tiling) and its presence
    probability: the engine of tasks with an image-level head (the nerve)."""
    height, width = image.shape[-2:]
    padded = pad_to_multiple(image.astype(np.float32), model.multiple)
    dtype = autocast_dtype(precision, device)
    maps, presence = _views_and_presence(model, padded, device, views, dtype)
    return maps[:, :height, :width], presence


def tile_length(total: int, tile: int, overlap: int, multiple: int) -> int:
    """The length of tiles along an axis of ``total`` pixels: as many tiles as ``tile``
    pixels need with ``overlap`` shared between neighbours, each as short as covers the
    axis (a multiple of ``multiple``, at most ``tile``).  ``total`` itself when it fits one
    tile.  A padded 1360 x 1040 image (Coelho's) in square 1024-pixel tiles ran 2.97 times
    its pixels through the network, in tiles of 800 x 640 1.45 times: dsb36's defaults on 6
    such images took 14.8 against 32.5 s (``bench_predict.py tiles``), the same maps."""
    if total <= tile:
        return total
    count = len(tile_starts(total, tile, tile - overlap))
    return min(tile, _round_up(-(-(total + (count - 1) * overlap) // count), multiple))


def tile_starts(total: int, tile: int, step: int) -> list[int]:
    """Starts of tiles of ``tile`` pixels every ``step`` pixels, the last one flush with
    the end; one tile when ``total <= tile``."""
    if total <= tile:
        return [0]
    starts = list(range(0, total - tile, step))
    return [*starts, total - tile]


def blend_window(length: int, start: int, total: int, margin: int, ramp: int) -> np.ndarray:
    """1-D weights of a tile along one axis: 0 on the ``margin`` pixels at an inner edge,
    then a sin² ramp over ``ramp`` pixels, 1 elsewhere (and up to the image border)."""
    weights = np.ones(length, np.float32)
    rise = np.sin(0.5 * np.pi * (np.arange(ramp) + 0.5) / ramp).astype(np.float32) ** 2
    if start > 0:
        weights[:margin] = 0
        weights[margin : margin + ramp] = rise
    if start + length < total:
        weights[length - margin :] = 0
        weights[length - margin - ramp : length - margin] = rise[::-1]
    return weights


#: ``shrink_from`` shrinks an image only when its first map has this many objects of at
#: least half the typical one's area (:func:`typical_objects`).  dsb36's full-size maps
#: of DSB2018's crowded H&E crops read their touching nuclei as 1-3 such clumps of 95-160
#: pixels (nuclei of 22-60): shrunk to the learned size, 7 such images scored 0.08 against
#: 0.31 searched.  Maps of nuclei that large hold 14-50 (Coelho's frames at 90 pixels or
#: more: 18-50; a DSB2018 fluorescence image of 94-pixel nuclei: 14).
SHRINK_ALIKE = 8


@torch.inference_mode()
def predict_probability(
    model: SegmentationNet,
    image: np.ndarray,
    device: torch.device,
    config: PredictConfig = PredictConfig(),
    category: str | None = None,
) -> np.ndarray:
    """Sigmoid probabilities ``K x H x W`` float32 (one per output head) for a normalised
    ``C x H x W`` image of any size: padded (reflect) to the network's multiple, cropped
    back; test-time views, tiling and scale selection per :class:`PredictConfig`
    (``category``: the image's, as normalisation detected it, for a per-category
    ``enlarge_below``)."""
    if config.shrink_from and not config.nucleus_diameter > 0:
        raise NucsegInputError(
            f"predict.shrink_from: {config.shrink_from:g} px needs the nucleus_diameter the "
            "network learned from (a model folder's predict.json and checkpoints trained by "
            "nucseg record it: load_for_prediction reads it)"
        )
    height, width = image.shape[-2:]
    enlarge_below = config.enlarge_gate(category)
    first = replace(config, views=config.views[:1])
    if len(config.scales) == 1 and not enlarge_below and not config.shrink_from:
        chosen = _scaled(image, config.scales[0])
        best = _predict_native(model, chosen, device, config)
    else:
        # the scale is chosen on the first view alone; the other views run at that scale only
        best_confidence, best, chosen = -1.0, None, None
        for index, scale in enumerate(config.scales):
            resized = _scaled(image, scale)
            prob = _predict_native(model, resized, device, first)
            confidence = map_confidence(prob)
            if confidence > best_confidence:  # ties: the first scale listed
                best_confidence, best, chosen = confidence, prob, resized
            if index == 0 and (enlarge_below or config.search_from or config.shrink_from):
                diameter, alike = typical_objects(prob[0])
                if 0 < diameter < enlarge_below:  # small nuclei: enlarged, no search
                    chosen = _scaled(image, 2 * scale)
                    best = _predict_native(model, chosen, device, first)
                    break
                if config.shrink_from and diameter >= config.shrink_from and alike >= SHRINK_ALIKE:
                    # large nuclei: brought to the learned size, no search
                    chosen = _scaled(image, scale * config.nucleus_diameter / diameter)
                    best = _predict_native(model, chosen, device, first)
                    break
                if diameter < config.search_from:
                    break  # the first scale's nuclei are of a size the network knows
        rest = config.views[1:]
        if rest:
            others = _predict_native(model, chosen, device, replace(config, views=rest))
            best = (best + len(rest) * others) / len(config.views)
    if config.dim_gamma and category == "fluorescence" and has_dim_candidates(best):
        lifted = _predict_native(model, brightened(chosen, config.dim_gamma), device, first)
        best = rescue_dim_nuclei(best, lifted)
    if best.shape[-2:] != (height, width):
        best = np.clip(resize_maps(best, (height, width)), 0, 1)
    return best


#: :func:`rescue_dim_nuclei` adds a lifted region only at this share of the median area of
#: the plain map's regions or more (smaller ones were mostly noise and debris: 30 % nuclei
#: on Coelho's frames, dsb36).
RESCUE_MIN_RELATIVE_AREA = 0.5

#: :func:`rescue_dim_nuclei` leaves out a lifted region where the plain semantic map
#: reaches this anywhere (an object the plain pass surely found: dsb36's found nuclei peak
#: at 0.92-1.0, the specks of its plain maps of dim nuclei at 0.5-0.7).
RESCUE_SURE = 0.8

#: :func:`has_dim_candidates`' floor.  dsb36's plain maps of the CTC frames as a 16-bit
#: camera records them hold two frames' missed nuclei under 0.002 (the gate stayed shut
#: there: 0.804 where the pass gives 0.855); at 0.0005 it opens on all 8 CTC frames, on
#: 52 % of its held-out DSB fluorescence and 58 % of Coelho's frames (0.002: 23 % / 27 %;
#: docs/experiments.md).  Opening costs time, not accuracy: the pass only adds regions
#: where the plain map found nothing (:func:`rescue_dim_nuclei`).
DIM_CANDIDATE_FLOOR = 0.0005

#: :func:`has_dim_candidates`' second trace: above this floor once a rim of this many
#: pixels around each found nucleus is cut away.  A nucleus at 4 % of its neighbour's
#: brightness 3 px from it peaks at 0.13-0.27 in dsb36's plain map and its trace joins the
#: neighbour's at any lower floor; with the rim cut off it stands alone above 0.01 (the
#: lifted pass then finds it: 0.463 -> 0.843 on 15 such pairs).  Opens on 19 % of Coelho's
#: frames and 28 % of its held-out DSB fluorescence; with the first trace 65 % / 64 %.
DIM_NEIGHBOUR_FLOOR = 0.01
DIM_NEIGHBOUR_RIM = 3


def median_region_area(mask: np.ndarray) -> float:
    """The median pixel count of ``mask``'s connected regions (0 when it has none)."""
    regions, count = ndi.label(mask)
    return float(np.median(np.bincount(regions.ravel())[1:])) if count else 0.0


def has_dim_candidates(plain: np.ndarray, threshold: float = 0.5) -> bool:
    """Whether the plain maps (``K x H x W``) of a fluorescence image show a trace of a
    nucleus they did not surely find, so that the dim-nuclei pass may find something: a
    connected region of the semantic map with no pixel at :data:`RESCUE_SURE` (the rule
    :func:`rescue_dim_nuclei` adds regions by) and at least
    :data:`RESCUE_MIN_RELATIVE_AREA` of the median area of the regions above
    ``threshold``, either
    above :data:`DIM_CANDIDATE_FLOOR` (a faint nucleus on its own) or above
    :data:`DIM_NEIGHBOUR_FLOOR` once every found nucleus and a rim of
    :data:`DIM_NEIGHBOUR_RIM` pixels around it are cut away (a dim nucleus beside a found
    one, whose faint trace joins the found one's).  Images without one skip the pass.
    A region above ``threshold`` but under :data:`RESCUE_SURE` counts: the confidence
    filter of post-processing drops such objects when they average under its
    ``min_mean_probability`` (dsb36gen20 on dim GOWT1 nuclei: 41 -> 43 of 48 found, as
    16-bit frames 39 -> 45, its other real sets unchanged; docs/experiments.md)."""
    semantic = plain[0]
    found = semantic > threshold
    sure = semantic >= RESCUE_SURE
    least = RESCUE_MIN_RELATIVE_AREA * median_region_area(found)

    def unfound_trace(trace: np.ndarray) -> bool:
        regions, count = ndi.label(trace)
        if not count:
            return False
        holds_found = np.bincount(regions[sure], minlength=count + 1)[1:] > 0
        areas = np.bincount(regions.ravel(), minlength=count + 1)[1:]
        return bool((~holds_found & (areas >= least)).any())

    if unfound_trace(semantic > DIM_CANDIDATE_FLOOR):
        return True
    rims = ndi.binary_dilation(found, iterations=DIM_NEIGHBOUR_RIM)
    return unfound_trace((semantic > DIM_NEIGHBOUR_FLOOR) & ~rims)


def brightened(image: np.ndarray, gamma: float) -> np.ndarray:
    """A normalised ``C x H x W`` image lifted for the dim-nuclei pass: each channel's
    background (its median) subtracted, the rest stretched back to [0, 1] and raised to
    ``gamma`` (< 1 lifts dim pixels).  Relative to the background, because a camera's
    offset and noise leave it above 0 after normalisation (~0.06 on 16-bit frames):
    raised as it is, it rises with the dim nuclei and hides them (dsb36 on the CTC frames
    as a 16-bit camera records them: 0.766 with the plain power, 0.804 with the
    background taken off; docs/experiments.md)."""
    background = np.median(image, axis=(-2, -1), keepdims=True)
    stretched = (image - background) / np.maximum(1.0 - background, 1e-6)
    return np.clip(stretched, 0, None) ** gamma  # clipped: no NaN below the background


def rescue_dim_nuclei(plain: np.ndarray, lifted: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """``plain`` maps (``K x H x W``) with the regions of ``lifted`` (the maps of the same
    image brightened: :func:`brightened`) that the plain pass did not see.

    A region is a connected component of ``lifted``'s semantic map above ``threshold``;
    it replaces the plain maps (every head) where no pixel of it reaches
    :data:`RESCUE_SURE` in the plain semantic map (the plain pass surely found nothing
    there: a dim nucleus's plain map holds at most specks of 0.5-0.7) and its area is at
    least :data:`RESCUE_MIN_RELATIVE_AREA` of the median area of the plain map's regions.
    Objects the plain pass found keep their plain outlines, and so do their neighbours: a
    lifted region that joins a found nucleus to its halo or to faint blobs beside it is
    left out.  Taking every region the plain map averaged under ``threshold`` over
    (sessions 37-40) lost there: dsb36's held-out DSB fluorescence 0.6746 -> 0.6703 with
    the pass on every image, 0.6738 with this rule (docs/experiments.md)."""
    regions, count = ndi.label(lifted[0] > threshold)
    if not count:
        return plain
    peak = ndi.maximum(plain[0], regions, np.arange(1, count + 1))
    areas = np.bincount(regions.ravel(), minlength=count + 1)[1:]
    typical = median_region_area(plain[0] > threshold)
    unseen = (peak < RESCUE_SURE) & (areas >= RESCUE_MIN_RELATIVE_AREA * typical)
    if not unseen.any():
        return plain
    take = np.concatenate([[False], unseen])[regions]
    rescued = plain.copy()
    rescued[:, take] = lifted[:, take]
    return rescued


def _scaled(image: np.ndarray, scale: float) -> np.ndarray:
    """``C x H x W`` resized by ``scale`` (at least 8 pixels a side); as it is at 1."""
    height, width = image.shape[-2:]
    size = (max(8, round(height * scale)), max(8, round(width * scale)))
    return image if size == (height, width) else resize_maps(image, size)


def map_confidence(prob: np.ndarray, floor: float = 0.1) -> float:
    """How sure the network is of its semantic map: the mean of ``|2p - 1|`` over the
    pixels with ``p > floor`` (0 when there are none).  Confident maps are near 0 or 1
    everywhere a nucleus might be; at a scale the network was not trained for, textured
    nuclei interiors give maps near 0.5."""
    semantic = prob[0]
    candidates = semantic > floor
    if not candidates.any():
        return 0.0
    return float(np.abs(2 * semantic[candidates] - 1).mean())


POLARITY_WINDOW = 512  # the centre window (pixels a side) two readings are compared on


def _window_confidence(model, pixels: np.ndarray, device, config: PredictConfig) -> float:
    """:func:`map_confidence` of the first view's full-size map of the central
    ``POLARITY_WINDOW`` pixels of ``pixels`` (``C x H x W``)."""
    height, width = pixels.shape[-2:]
    top, left = max(0, (height - POLARITY_WINDOW) // 2), max(0, (width - POLARITY_WINDOW) // 2)
    window = (..., slice(top, top + POLARITY_WINDOW), slice(left, left + POLARITY_WINDOW))
    first = replace(config, views=config.views[:1])
    return map_confidence(_predict_native(model, pixels[window], device, first))


#: :func:`distinct_blue`: the blue plane's span (1st to 99.9th percentile) at least this
#: share of the brightest plane's.  An overlay shows its nuclear stain at full range; a
#: tint of one stain (yellow: blue at 15 % of red) leaves blue a few coarse levels, and
#: dsb36 was sometimes more confident of that poorer reading (session 45, 8-bit images
#: tinted so: Coelho 0.712 -> 0.698, the CTC frames 0.852 -> 0.823 without this gate).
BLUE_SPAN_SHARE = 0.5


def distinct_blue(image: np.ndarray) -> bool:
    """Whether an RGB(A) image's blue plane may be the nuclear stain of an overlay: not
    the brightest plane everywhere (reading it alone would then be the image's
    fluorescence reading itself), and spanning at least :data:`BLUE_SPAN_SHARE` of the
    brightest plane's range (not a faint tint)."""
    if image.ndim != 3 or image.shape[-1] < 3:
        return False
    blue = image[..., 2].astype(np.float32)
    brightest = nuclei_bright(image, "fluorescence")  # the reading it is an alternative to
    if not (brightest > blue).any():
        return False
    (blue_low, blue_high), (low, high) = (
        np.percentile(plane, [1, 99.9]) for plane in (blue, brightest)
    )
    return bool(blue_high - blue_low >= BLUE_SPAN_SHARE * (high - low) > 0)


def reads_two_ways(category: str, config: PredictConfig) -> bool:
    """Whether :func:`settle_reading` may read an image of ``category`` a second way
    (brightfield with ``config.check_polarity``, fluorescence with ``check_blue``): callers
    skip reading other images from disk again."""
    return (category == "brightfield" and config.check_polarity) or (
        category == "fluorescence" and config.check_blue
    )


@torch.inference_mode()
def settle_reading(
    model: SegmentationNet,
    image: np.ndarray,
    normalized: tuple[np.ndarray, str],
    normalize: NormalizeConfig,
    device: torch.device,
    config: PredictConfig = PredictConfig(),
) -> tuple[np.ndarray, str]:
    """``(pixels, category)`` for ``model`` from ``normalized``, what
    :func:`nucseg.normalize.normalize_image` made of ``image`` (``normalize``), where the
    image can be read two ways; the reading whose map the network is more confident of
    (:func:`map_confidence`; first view, full size, the central ``POLARITY_WINDOW``
    pixels) is kept, ties keeping the first.  Other images are returned as they are.

    - ``config.check_polarity``: an image it calls brightfield without the compact light
      background of brightfield (:func:`nucseg.normalize.dark_end_share` under
      ``LIGHT_BACKGROUND_SHARE``) is also read as fluorescence.  The statistics call a gray
      image brightfield when its median sits in the upper part of its range: a
      fluorescence image whose nuclei cover more than about half of it is such an image,
      and inverted its dark gaps become one image-wide object.  Measured with dsb36
      (docs/experiments.md): of 69 real fluorescence crops called brightfield the network
      chose fluorescence for 68 (their DSB 0.003 as brightfield, 0.604 as fluorescence);
      of 90 real and generated brightfield images and crops it kept every one.  A network
      that knows little of brightfield (the demo's small U-Net) prefers the fluorescence
      reading of real brightfield too: the light-background gate keeps every real whole
      brightfield image here from it.
    - ``config.check_blue``: a colour image it calls fluorescence (read as its brightest
      plane at each pixel) is also read as its blue plane alone (:func:`distinct_blue`),
      where RGB overlays put the nuclear stain (DAPI, Hoechst): a second stain around
      the nuclei joins them in the brightest-plane reading.  Measured with dsb36 on real
      gray images made into such overlays (nuclei blue, a diffuse stain around them
      green; ``bench_robustness.py``'s ``composite``): DSB 0.152 -> 0.591, the CTC frames
      0.557 -> 0.852; gray images are not touched (docs/experiments.md)."""
    pixels, category = normalized
    if not reads_two_ways(category, config):
        return pixels, category
    if category == "brightfield":
        if dark_end_share(image) >= LIGHT_BACKGROUND_SHARE:
            return pixels, category
        other, other_category = normalize_image(image, normalize, category="fluorescence")
    elif distinct_blue(image):
        other, other_category = normalize_image(image[..., 2], normalize, "fluorescence")
    else:
        return pixels, category
    as_is = _window_confidence(model, pixels, device, config)
    confidence = _window_confidence(model, other, device, config)
    if confidence > as_is:
        reading = "as fluorescence" if other_category != category else "as its blue plane"
        log.info("read %s (map confidence %.3f against %.3f)", reading, confidence, as_is)
        return other, other_category
    return pixels, category


class MapObjects(NamedTuple):
    """:func:`typical_objects`: the typical object's equivalent ``diameter`` (pixels; 0:
    none) and how many objects are ``alike`` (at least half its area, itself included)."""

    diameter: float
    alike: int


def typical_objects(semantic: np.ndarray, threshold: float = 0.5) -> MapObjects:
    """The size of the objects in a map, before instance separation: the equivalent
    diameter of the region of ``semantic > threshold`` that holds the median foreground
    pixel (the area-weighted median region; regions under 4 pixels ignored), and how many
    regions have at least half its area.  Weighted by area, the fragments a network makes
    of nuclei far larger than it learned do not hide them (the plain median over regions
    called 3 of 48 Coelho images of ~90-pixel nuclei 22-28 pixels); touching nuclei count
    as one, so the size errs large, and a map whose nuclei merged into a few clumps shows
    as few ``alike``."""
    regions, count = ndi.label(semantic > threshold)
    areas = np.sort(np.bincount(regions.ravel(), minlength=count + 1)[1:])
    areas = areas[areas >= 4]
    if not len(areas):
        return MapObjects(0.0, 0)
    cumulative = np.cumsum(areas)
    median_area = areas[np.searchsorted(cumulative, cumulative[-1] / 2)]
    alike = int(np.count_nonzero(areas >= median_area / 2))
    return MapObjects(float(np.sqrt(4 * median_area / np.pi)), alike)


def resize_maps(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``C x H x W`` float maps resized to ``size`` (bilinear, antialiased when shrinking)."""
    tensor = torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32))[None]
    shrink = size[0] < maps.shape[-2] or size[1] < maps.shape[-1]
    resized = F.interpolate(tensor, size=size, mode="bilinear", antialias=shrink)
    return resized[0].numpy()


def _predict_native(model, image: np.ndarray, device, config: PredictConfig) -> np.ndarray:
    height, width = image.shape[-2:]
    multiple = model.multiple
    padded = pad_to_multiple(image.astype(np.float32), multiple)
    tile = _round_up(config.tile, multiple)
    dtype = autocast_dtype(config.precision, device)
    if max(padded.shape[-2:]) <= tile:
        return _predict_views(model, padded, device, config.views, dtype)[:, :height, :width]
    margin = 6 * multiple if config.tile_margin is None else config.tile_margin
    margin = _round_up(margin, multiple)
    ramp = _round_up(config.tile_ramp, multiple)
    overlap = 2 * margin + ramp
    if tile - overlap < multiple:
        raise NucsegInputError(
            f"predict.tile {config.tile} leaves no step after margins {margin} and ramp {ramp}"
        )
    total = np.zeros((model.config.out_channels, *padded.shape[-2:]), np.float32)
    weight_sum = np.zeros(padded.shape[-2:], np.float32)
    rows, cols = padded.shape[-2:]
    tile_rows = tile_length(rows, tile, overlap, multiple)  # tiles no larger than need be
    tile_cols = tile_length(cols, tile, overlap, multiple)
    for top in tile_starts(rows, tile_rows, tile_rows - overlap):
        for left in tile_starts(cols, tile_cols, tile_cols - overlap):
            window = (slice(top, top + tile_rows), slice(left, left + tile_cols))
            piece = padded[(slice(None), *window)]
            prob = _predict_views(model, piece, device, config.views, dtype)
            weights = np.outer(
                blend_window(piece.shape[-2], top, rows, margin, ramp),
                blend_window(piece.shape[-1], left, cols, margin, ramp),
            )
            total[(slice(None), *window)] += prob * weights
            weight_sum[window] += weights
    return (total / weight_sum)[:, :height, :width]
