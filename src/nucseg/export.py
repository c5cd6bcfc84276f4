"""A trained model as one self-contained folder (``resources/models/<name>/``), like
StarDist's and Cellpose's shipped models.

Layout::

    model.pt          weights (stored as float16: half the size; loading casts them back)
                      + network config + the normalisation it was trained with + the
                      typical nucleus size it learned from (``nucleus_diameter``)
                      (loads with ``torch.load(weights_only=True)``)
    thresholds.json   post-processing thresholds tuned on the validation fold, with the
                      validation DSB score overall and per category
    predict.json      the prediction settings they were tuned with (test-time views,
                      scales, tile size): ``nucseg predict``'s defaults for this model;
                      and ``nucleus_diameter``, the typical nucleus size it learned from
                      (what ``--diameter`` rescales a user's nuclei to)
    train_log.tsv     the epoch log; learning_curve.png its plot
    split.tsv         every image id of the dataset version and its side (train / valid):
                      what the model learned from, what it was validated on
    README.md         the model card: data and licence, folds, epochs, wall time, hardware,
                      validation score per category, the command and commit that made it

``nucseg predict --model <folder>`` uses it as it is; config ``models.<name>.pretrained``
puts it in an ensemble without training (:func:`install_pretrained`);
``models.<name>.init`` fine-tunes from it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from nucseg.checkpoints import read_checkpoint
from nucseg.datasets import fold_side_ids, read_manifest, training_nucleus_diameter
from nucseg.io.atomic import atomic_directory, atomic_path
from nucseg.models import ModelConfig, build_model, count_parameters
from nucseg.postprocess import PostprocessConfig
from nucseg.predict import SHRINK_ALIKE, describe_gate
from nucseg.segmenter import folder_predict_settings

#: prediction settings a shipped model carries (config ``predict:`` keys)
PREDICT_KEYS = (
    "tta_views",
    "scales",
    "search_from",
    "shrink_from",
    "enlarge_below",
    "dim_gamma",
    "tile",
)

#: files of a shipped model folder
MODEL_FILES = (
    "model.pt",
    "thresholds.json",
    "predict.json",
    "train_log.tsv",
    "learning_curve.png",
    "split.tsv",
    "README.md",
)


@dataclass(frozen=True)
class Provenance:
    """What the card says about how the model was made."""

    command: str
    commit: str
    config_files: str
    data_licences: str
    init: str = ""  # what training started from (config ``init``), if not from scratch


def export_model(
    model_dir: Path | str,
    thresholds_path: Path | str,
    manifest_path: Path | str,
    fold_dir: Path | str,
    out_dir: Path | str,
    *,
    name: str,
    provenance: Provenance,
    predict: dict,
    evaluation_path: Path | str | None = None,
) -> None:
    """Write the shipped-model folder of the trained model in ``model_dir`` (``model.pt``,
    ``train_log.tsv``, ``learning_curve.png``) with its tuned ``thresholds_path`` and the
    ``predict`` settings (config ``predict:``) the thresholds were tuned with; the card
    reports the evaluation sets' summary (:func:`nucseg.evaluation.summarize_evaluation`)
    at ``evaluation_path`` when given."""
    model_dir = Path(model_dir)
    payload = read_checkpoint(model_dir / "model.pt")
    thresholds = json.loads(Path(thresholds_path).read_text())
    log = pd.read_csv(model_dir / "train_log.tsv", sep="\t")
    manifest = read_manifest(manifest_path).set_index("id")
    split = {side: fold_side_ids(fold_dir, side) for side in ("train", "valid")}
    diameter = training_nucleus_diameter(manifest, split["train"])
    with atomic_directory(out_dir) as tmp:
        torch.save(half_precision({**payload, "nucleus_diameter": diameter}), tmp / "model.pt")
        shutil.copyfile(thresholds_path, tmp / "thresholds.json")
        settings = {k: predict[k] for k in PREDICT_KEYS if k in predict}
        settings["nucleus_diameter"] = diameter
        (tmp / "predict.json").write_text(json.dumps(settings, indent=1) + "\n")
        shutil.copyfile(model_dir / "train_log.tsv", tmp / "train_log.tsv")
        shutil.copyfile(model_dir / "learning_curve.png", tmp / "learning_curve.png")
        shutil.copyfile(Path(fold_dir) / "split.tsv", tmp / "split.tsv")
        evaluation = pd.read_csv(evaluation_path, sep="\t") if evaluation_path else None
        card = model_card(
            name, payload, thresholds, log, manifest, split, provenance, predict, evaluation
        )
        (tmp / "README.md").write_text(card)


def install_pretrained(folder: Path | str, out: Path | str) -> None:
    """Write a shipped model folder's checkpoint to ``out``, where the workflow's trained
    checkpoints go, recording the nucleus size of the folder's ``predict.json`` if the
    checkpoint does not (folders exported before checkpoints recorded it): prediction
    jobs read it there for ``predict.shrink_from``."""
    payload = read_checkpoint(Path(folder) / "model.pt")
    settings = folder_predict_settings([folder])
    if "nucleus_diameter" not in payload and settings.get("nucleus_diameter"):
        payload["nucleus_diameter"] = float(settings["nucleus_diameter"])
    with atomic_path(out) as tmp:
        torch.save(payload, tmp)


def half_precision(payload: dict) -> dict:
    """A checkpoint payload whose floating-point weights are stored as float16 (half the
    file; :func:`nucseg.checkpoints.network_of` loads them into the float32 network)."""
    weights = {
        key: value.half() if value.is_floating_point() else value
        for key, value in payload["state_dict"].items()
    }
    return {**payload, "state_dict": weights}


def _counts(manifest: pd.DataFrame, ids: list[str]) -> str:
    rows = manifest.loc[ids].groupby(["source", "category"]).size()
    return ", ".join(f"{source} {category} {n}" for (source, category), n in rows.items())


def folds_description(manifest: pd.DataFrame, split: dict[str, list[str]]) -> str:
    """How the validation side was held out: whole acquisitions when no acquisition
    (:mod:`nucseg.acquisitions`) has images on both sides, else origin images."""
    if "acquisition" in manifest.columns:
        sides = [set(manifest.loc[ids, "acquisition"]) for ids in (split["train"], split["valid"])]
        if not sides[0] & sides[1]:
            return (
                f"whole acquisitions held out ({len(sides[1])} of {len(sides[0] | sides[1])} "
                "acquisitions in validation: images of one microscope setting, clustered by "
                "size, intensity, colour and nucleus size), stratified by category: the "
                "validation score is what images from an unseen acquisition get"
            )
    return (
        "grouped by origin image (crops of one tile never on both sides), stratified by "
        "category; validation images share acquisitions with training images, so its "
        "scores are optimistic for unseen acquisitions"
    )


def evaluation_section(evaluation: pd.DataFrame | None) -> str:
    """The card's table of the evaluation sets (never trained on), or nothing."""
    if evaluation is None or evaluation.empty:
        return ""
    rows = "\n".join(
        f"| {r.set} | {r.category} | {r.images} | {r.n_true} | {r.n_pred} | {r.dsb:.3f} "
        f"| {r.ap50:.3f} | {r.seconds_per_image:.1f} |"
        for r in evaluation.itertuples()
    )
    return f"""
## Images from elsewhere (never trained on)
Annotated sets of other labs and microscopes (config `evaluation:`), as `nucseg predict`
runs the model with the settings of `predict.json`:

| set | category | images | nuclei | found | DSB score | AP@0.5 | seconds per image |
| --- | --- | --- | --- | --- | --- | --- | --- |
{rows}
"""


def data_section(manifest: pd.DataFrame, split: dict[str, list[str]], licences: str) -> str:
    """The card's lines on the training and validation images and their licences."""
    train = f"- Training: {len(split['train'])} images ({_counts(manifest, split['train'])})."
    if not split["valid"]:
        return f"""{train}
- Validation: none; it trained on every image (thresholds and evidence below).
- {licences}"""
    return f"""{train}
- Validation (held out, best epoch and thresholds chosen on it): {len(split["valid"])} images
  ({_counts(manifest, split["valid"])}).
- Folds: {folds_description(manifest, split)}.
- {licences}"""


def kept_epoch(log: pd.DataFrame) -> str:
    """Which epoch's weights the model holds and why (training keeps the best validation
    DSB, or the lowest training loss when there are no validation images)."""
    last = int(log["epoch"].max())
    if log["valid_dsb"].notna().any():
        best = log.loc[log["valid_dsb"].idxmax()]
        return (
            f"Best epoch {int(best['epoch'])} of {last} (validation DSB {best['valid_dsb']:.3f} "
            "with the training-time thresholds)"
        )
    best = log.loc[log["train_loss"].idxmin()]
    return f"Epoch {int(best['epoch'])} of {last} (the lowest training loss; no validation images)"


def validation_section(thresholds: dict) -> str:
    """The card's validation scores per category and the tuned thresholds (or the fixed
    thresholds and the evidence the config gives for them)."""
    post = PostprocessConfig(**thresholds["postprocess"])  # absent keys: their defaults
    if thresholds.get("fixed"):
        heading = f"""## Thresholds, fixed in the config rather than tuned on this model
{thresholds.get("evidence", "")}
"""
    else:
        per_category = thresholds.get("valid_dsb_by_category", {})
        score_rows = "\n".join(f"| {k} | {v:.3f} |" for k, v in per_category.items())
        heading = f"""## Validation score (DSB2018 metric, mean over IoU 0.5…0.95), tuned thresholds
| category | DSB score |
| --- | --- |
{score_rows}
| balanced mean | {thresholds["valid_dsb_tuned"]:.3f} |
{acquisition_table(thresholds.get("valid_dsb_by_acquisition", {}))}"""
    return f"""{heading}
Thresholds (`thresholds.json`): mask {post.mask_threshold}, marker
{post.marker_threshold}, split h {post.split_h}, min size {post.min_size}, min relative
size {post.min_relative_size}, max relative size {post.max_relative_size}, min mean
probability {post.min_mean_probability}.
"""


def acquisition_table(by_acquisition: dict) -> str:
    """The card's validation score per acquisition (none for a single one)."""
    if len(by_acquisition) < 2:
        return ""
    rows = "\n".join(
        f"| {name} | {entry['images']} | {entry['dsb']:.3f} |"
        for name, entry in by_acquisition.items()
    )
    return f"""
Per acquisition (a mean over categories can hide one that fails):

| acquisition | images | DSB score |
| --- | --- | --- |
{rows}
"""


def search_clause(predict: dict) -> str:
    """The card's words on ``predict.search_from``, ``shrink_from``, ``enlarge_below`` and
    ``dim_gamma`` (none when every image searches, none is resized by its objects' size and
    there is no dim-nuclei pass)."""
    search_from, enlarge_below = predict.get("search_from", 0), predict.get("enlarge_below", 0)
    words = ""
    if search_from and len(predict.get("scales", [1.0])) > 1:
        words += (
            f"; the smaller sizes only when the full-size map's objects are {search_from:g} px "
            "across or more"
        )
    if predict.get("shrink_from"):
        words += (
            f"; images whose full-size objects are {predict['shrink_from']:g} px across or more "
            f"({SHRINK_ALIKE} or more such objects, not a few merged clumps) run at the one size "
            "that brings them to the nucleus size it learned instead"
        )
    if enlarge_below:
        gate = describe_gate(enlarge_below)
        words += f"; images whose objects are under {gate} across enlarged x2 instead"
    if predict.get("dim_gamma"):
        words += (
            "; fluorescence images whose plain map holds a faint trace of an object it did "
            f"not find get one more pass brightened to the power {predict['dim_gamma']:g} "
            "above their background, "
            "whose objects are added where the plain pass found nothing (dim nuclei)"
        )
    return words


def model_card(
    name: str,
    payload: dict,
    thresholds: dict,
    log: pd.DataFrame,
    manifest: pd.DataFrame,
    split: dict[str, list[str]],
    provenance: Provenance,
    predict: dict,
    evaluation: pd.DataFrame | None = None,
) -> str:
    """The model card (Markdown) of a shipped model."""
    net = ModelConfig(**payload["net"])
    parameters = count_parameters(build_model(net))
    device = "no GPU" if not torch.cuda.is_available() else torch.cuda.get_device_name()
    size = f"{net.arch}, {parameters / 1e6:.2f} M parameters"
    init_line = f"- Fine-tuned from {provenance.init}\n" if provenance.init else ""
    if payload.get("init_share"):  # train.init_share
        init_line += (
            f"- The weights: the fine-tune's blended with {payload['init_share']:g} of those "
            "it started from (`train.init_share`, weight-space ensembling)\n"
        )
    return f"""# {name}: nucleus instance segmentation ({size})

Finds every nucleus in fluorescence, brightfield and H&E images and separates touching ones
(semantic + contour + marker heads, marker-controlled watershed).  Trained by nucseg on real
annotated images; one folder that loads alone.

## Use
```bash
nucseg predict --model resources/models/{name} IMAGES_OR_FOLDER --out OUT_DIR
```
In a workflow config: `models: {{{name}: {{pretrained: resources/models/{name}}}}}` (an ensemble
member, not trained again) or `init: resources/models/{name}` in a model with the same `net`
(fine-tuning).  Inputs: any PNG/TIFF/JPEG, 8- or 16-bit, gray or RGB(A); each image is
normalised as in training (`{payload.get("normalize", {})}`): category detected, nuclei made
bright, percentiles scaled.  Output: instance labels (TIFF) and a Kaggle RLE submission.

## Data and licence
{data_section(manifest, split, provenance.data_licences)}

## Training
- Network: `{json.dumps(payload["net"])}`
{init_line}- {kept_epoch(log)}; precision {payload.get("precision", "fp32")};
  training wall time {log["seconds"].sum() / 60:.0f} min on {platform.machine()}
  ({os.cpu_count()} cores, {device}).
- Prediction (`predict.json`, what the thresholds were tuned with): test-time views
  {predict.get("tta_views", [0])}, scales {predict.get("scales", [1.0])} (each image is
  predicted at these sizes and the most confident one kept{search_clause(predict)}).

{validation_section(thresholds)}
{evaluation_section(evaluation)}
## Limits
Images of kinds not in the training data (e.g. other stains, phase contrast, 3-D) may
fail.  H&E is its weakest
kind.  Nuclei far larger than in training are handled by predicting at several scales
(`predict.json`); nuclei much smaller than ~8 px across are outside what it saw.

## How it was made
```bash
{provenance.command}
```
Commit `{provenance.commit}`, config `{provenance.config_files}`.
"""
