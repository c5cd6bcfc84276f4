"""The real Snakemake workflow on a tiny config in a temporary folder."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from workflow_run import snakemake, tiny_config, write_tiny_config

from nucseg.checkpoints import network_of, read_checkpoint
from nucseg.datasets import read_manifest
from nucseg.export import MODEL_FILES
from nucseg.submission import read_submission

RULES = [
    "synthesize_sources",
    "assemble_dataset",
    "normalize_dataset",
    "compute_targets",
    "prepare_test_set",
    "materialize_fold",
    "train_model",
    "predict_shard",
    "ensemble_shard",
    "predict_validation",
    "tune_thresholds",
    "validation_scores",
    "separate_instances",
    "write_submission",
    "final_submission",
    "score_submissions",
    "overlays",
    "measure_nuclei",
    "run_manifest",
    "benchmark_table",
]


@pytest.fixture
def workdir(tiny_run):
    return tiny_run


def test_dry_run_lists_every_rule(tmp_path):
    write_tiny_config(tmp_path)
    result = snakemake(tmp_path, "-n")
    assert result.returncode == 0, result.stderr
    for rule in RULES:
        assert rule in result.stdout, rule


def test_real_run_writes_a_valid_submission_and_scores(workdir):
    manifest = read_manifest(workdir / "results/test/manifest.tsv")
    shapes = {r.id: (r.height, r.width) for r in manifest.itertuples()}
    assert len(shapes) == 3
    instances = read_submission(workdir / "results/submission.csv", shapes)
    assert set(instances) == set(shapes)
    scores = pd.read_csv(workdir / "results/scores.tsv", sep="\t")
    mean = scores[(scores.image_id == "mean") & (scores.category == "all")]
    assert set(mean.ensemble) == {"unet16", "camunet4", "final"}  # every model, and ensembles
    assert mean.dsb.between(0, 1).all() and mean.pq.between(0, 1).all()
    run = json.loads((workdir / "results/run_manifest.json").read_text())
    assert set(run["datasets"]) == {"v2", "v2_colour"} and len(run["config_sha256"]) == 64
    assert run["packages"]["torch"].startswith("2.13")
    tuned = json.loads((workdir / "results/thresholds/final.json").read_text())
    assert len(tuned["grid"]) == 4 and 0 <= tuned["valid_dsb_tuned"] <= 1
    measured = pd.read_csv(workdir / "results/measurements/final.csv")
    counts = pd.read_csv(workdir / "results/measurements/final-summary.csv").set_index("image")
    assert set(counts.index) == set(shapes) and counts["count"].sum() == len(measured)
    assert (measured.area > 0).all() and measured.mean_intensity.notna().all()
    cv = pd.read_csv(workdir / "results/validation_scores.tsv", sep="\t")
    balanced = cv[cv.category == "balanced"].set_index("entry").valid_dsb
    assert set(balanced.index) == {"unet16", "camunet4", "final"}
    assert balanced["final"] == tuned["valid_dsb_tuned"]
    per_category = cv[(cv.entry == "final") & (cv.category != "balanced")].valid_dsb
    assert balanced["final"] == pytest.approx(per_category.mean(), abs=1e-5)
    log = pd.read_csv(workdir / "results/models/camunet4/train_log.tsv", sep="\t")
    assert list(log.epoch) == [1, 2] and {"loss_contour", "loss_marker"} <= set(log.columns)
    assert (workdir / "results/models/camunet4/learning_curve.png").stat().st_size > 0
    assert (workdir / "results/checkpoints/camunet4/last.pt").is_file()
    # the colour model saw its test images and unet16's fold normalised its own way
    assert read_checkpoint(workdir / "results/models/camunet4/model.pt")["net"]["in_channels"] == 4
    for job in ("predict_shard/camunet4-model-000", "predict_validation/camunet4-model-v2-0"):
        assert "as the model was trained" in (workdir / f"results/logs/{job}.log").read_text()
    benchmarks = pd.read_csv(workdir / "results/benchmarks.tsv", sep="\t")
    assert {"train_model", "predict_shard", "separate_instances"} <= set(benchmarks.rule)
    assert (benchmarks.s >= 0).all() and benchmarks.max_rss.notna().all()


def test_report_gathers_curves_scores_and_overlays(workdir):
    assert snakemake(workdir).returncode == 0  # up to date (a no-op after the real run)
    result = snakemake(workdir, "--report", "results/report.html")
    assert result.returncode == 0, result.stderr[-2000:]
    html = (workdir / "results/report.html").read_text()
    for item in (
        "learning_curve.png",
        "scores.tsv",
        "stats.tsv",
        "Overlays",
        "camunet4",
        "benchmarks.tsv",
        "scores.html",
        "dsb_by_category.png",
        "validation_scores.html",
        "provenance.html",
        "final.csv",
    ):
        assert item in html, item


def _planned_jobs(workdir, config, *targets) -> dict[str, int]:
    """Jobs per rule that a dry run of ``config`` plans in ``workdir`` (config restored)."""
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    try:
        result = snakemake(workdir, *targets, "-n", "--quiet", "rules")
    finally:
        (workdir / "config.yaml").write_text(yaml.safe_dump(tiny_config()))
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    return {row[0]: int(row[1]) for row in rows if len(row) == 2 and row[1].isdigit()}


def test_changing_one_model_reruns_only_its_branch(workdir):
    assert snakemake(workdir).returncode == 0  # up to date (a no-op after the real run)
    config = tiny_config()
    config["models"]["camunet4"]["train"]["learning_rate"] = 0.002
    jobs = _planned_jobs(workdir, config)
    # camunet4 and the ensemble "final"; unet16 keeps its (kept) maps and instances
    assert jobs.get("train_model") == 1 and jobs.get("predict_shard") == 2, jobs
    assert jobs.get("tune_thresholds") == 2 and jobs.get("separate_instances") == 4
    # its maps of its own fold (its tuning) and of unet16's (the ensemble's): the versions differ
    assert jobs.get("predict_validation") == 2
    assert "assemble_dataset" not in jobs and "compute_targets" not in jobs


def test_a_new_tuning_grid_retunes_without_retraining(workdir):
    config = tiny_config()
    config["postprocess"].setdefault("grid", {})["min_relative_size"] = [0.0, 0.1]
    jobs = _planned_jobs(workdir, config)
    assert jobs.get("tune_thresholds", 0) >= 1, jobs
    assert not {"train_model", "predict_validation", "predict_shard"} & set(jobs), jobs


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda c: c.update(colour="blue"), "colour"),
        (
            lambda c: c["models"]["unet16"].update(dataset="v9"),
            "models.unet16.dataset names unknown dataset version 'v9'",
        ),
        (lambda c: c["models"]["unet16"]["train"].update(epochs="ten"), "ten"),
        (
            lambda c: c["models"]["unet16"].update(fold=1),
            "models.unet16.fold is 1 but dataset v2 has 1 fold(s)",
        ),
        (
            lambda c: c["datasets"]["v2"].update(cv={"folds": 1, "valid_fraction": 0.0}),
            "trains on every image of dataset v2 (cv.valid_fraction 0): nothing to tune",
        ),
        (
            lambda c: c["ensembles"].update(unet16={"models": ["camunet4.last"]}),
            "ensembles.unet16 has the name of a model",
        ),
        (
            lambda c: c["ensembles"].update(other={"models": ["segnet.last"]}),
            "ensembles.other.models names unknown model 'segnet'",
        ),
        (lambda c: c["predict"].update(enlarge_below={"H&E": 24}), "enlarge_below"),
    ],
)
def test_bad_config_fails_with_the_key_named(tmp_path, edit, message):
    config = tiny_config()
    edit(config)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n")
    assert result.returncode != 0
    assert message in result.stderr + result.stdout


def test_missing_test_folder_is_reported_without_partial_output(tmp_path):
    config = tiny_config()
    config["test_images"] = str(tmp_path / "nowhere")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "results/test/manifest.tsv")
    assert result.returncode != 0
    assert "nowhere" in result.stderr + result.stdout
    assert not (tmp_path / "results/test/manifest.tsv").exists()


def test_same_config_gives_byte_identical_outputs(workdir, tmp_path):
    (tmp_path / "config.yaml").write_text((workdir / "config.yaml").read_text())
    result = snakemake(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for output in [
        "results/submission.csv",
        "results/scores.tsv",
        "results/datasets/v2/manifest.tsv",
    ]:
        assert (tmp_path / output).read_bytes() == (workdir / output).read_bytes(), output


def test_one_target_builds_one_dataset_version_from_every_format(workdir):
    assert snakemake(workdir, "results/datasets/v2/manifest.tsv").returncode == 0
    manifest = read_manifest(workdir / "results/datasets/v2/manifest.tsv")
    assert set(manifest.source) == {"dsb_stage1_train", "tcga_monuseg", "ctc_fluo_n2dh"}
    assert {"fluorescence", "histology"} <= set(manifest.category)
    # balanced: every category gets the same share of crops (pixels x sampling weight)
    crop_mass = manifest.sampling_weight * manifest.height * manifest.width
    totals = crop_mass.groupby(manifest.category).sum()
    np.testing.assert_allclose(totals, totals.iloc[0], rtol=1e-4)
    # v1 shares the cached source conversions: building it converts nothing again
    result = snakemake(workdir, "results/datasets/v1/manifest.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "convert_source" not in result.stdout + result.stderr
    assert not (workdir / "results/datasets/v1/normalized").exists()  # only what was asked


def test_k_fold_split_is_materialised_as_hardlinks_grouped_by_origin(tmp_path):
    config = tiny_config()
    config["datasets"]["v1"]["cv"] = {"folds": 3, "seed": 1}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    targets = [f"results/datasets/v1/folds/{k}" for k in range(3)]
    result = snakemake(tmp_path, *targets)
    assert result.returncode == 0, result.stderr[-3000:]
    splits = [pd.read_csv(tmp_path / t / "split.tsv", sep="\t") for t in targets]
    valid_sets = [set(s.id[s.side == "valid"]) for s in splits]
    assert set().union(*valid_sets) == set(splits[0].id)  # every image validated exactly once
    assert sum(len(v) for v in valid_sets) == len(splits[0])
    image_id = splits[0].id.iloc[0]
    side = splits[0].side.iloc[0]
    linked = tmp_path / targets[0] / side / "normalized" / f"{image_id}.tif"
    original = tmp_path / "results/datasets/v1/normalized" / f"{image_id}.tif"
    assert linked.stat().st_ino == original.stat().st_ino


def test_duplicate_ids_across_sources_fail_the_version_with_one_line_and_no_output(tmp_path):
    config = tiny_config()
    config["sources"]["copy"] = dict(config["sources"]["dsb_stage1_train"])
    config["datasets"]["v1"]["sources"] = ["dsb_stage1_train", "copy"]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "results/datasets/v1/manifest.tsv")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("nucseg: error:")]
    assert len(errors) == 1 and "also occurs in source" in errors[0], result.stderr[-2000:]
    assert "Traceback" not in (tmp_path / "results/logs/assemble_dataset/v1.log").read_text()
    assert not (tmp_path / "results/datasets/v1").exists()  # no partial version


def test_nerve_and_tissue_tasks_run_from_their_targets(tmp_path):
    write_tiny_config(tmp_path)
    result = snakemake(tmp_path, "results/nerve/scores.tsv", "results/tissue/scores.tsv")
    assert result.returncode == 0, result.stderr[-3000:]
    submission = (tmp_path / "results/nerve/submission.csv").read_text().splitlines()
    assert submission[0] == "img,pixels" and [r.split(",")[0] for r in submission[1:]] == list(
        "1234"
    )
    nerve = pd.read_csv(tmp_path / "results/nerve/scores.tsv", sep="\t")
    assert nerve.img.iloc[-1] == "mean" and 0 <= nerve.dice.iloc[-1] <= 1
    tissue = pd.read_csv(tmp_path / "results/tissue/scores.tsv", sep="\t")
    assert list(tissue["class"]) == ["background", "stroma", "tumour", "necrosis", "mean"]
    assert len(list((tmp_path / "results/tissue/overlays").glob("*.png"))) == 2  # 20 % of 8
    assert "valid_miou" in (tmp_path / "results/tissue/model/train_log.tsv").read_text()


def test_exported_model_predicts_alone_and_joins_an_ensemble_untrained(workdir, tmp_path):
    result = snakemake(workdir, "results/export/camunet4")
    assert result.returncode == 0, result.stderr[-2000:]
    folder = workdir / "results/export/camunet4"
    shipped = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert shipped == sorted(MODEL_FILES)  # (and Snakemake's .snakemake_timestamp)
    card = (folder / "README.md").read_text()
    assert "nucseg predict --model resources/models/camunet4" in card and "| fluorescence |" in card
    payload = read_checkpoint(folder / "model.pt")
    assert payload["precision"] in ("bf16", "fp32") and "normalize" in payload
    # weights ship as float16 (half the size) and compute what the trained ones compute
    assert {v.dtype for v in payload["state_dict"].values() if v.is_floating_point()} == {
        torch.float16
    }
    trained = read_checkpoint(workdir / "results/models/camunet4/model.pt")
    inputs = torch.rand(1, 4, 48, 48, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        maps = [network_of(p, "", torch.device("cpu"))(inputs).masks for p in (payload, trained)]
    torch.testing.assert_close(maps[0], maps[1], atol=1e-3, rtol=0)
    settings = json.loads((folder / "predict.json").read_text())
    assert settings["tta_views"] == [0, 5] and 5 < settings["nucleus_diameter"] < 40
    # the size it learned from, recorded by training, for predict.shrink_from
    assert (
        trained["nucleus_diameter"] == payload["nucleus_diameter"] == settings["nucleus_diameter"]
    )
    # the folder alone segments a folder of images with its own thresholds
    images = workdir / "resources/synthetic/stage1_test"
    out = tmp_path / "out"
    predicted = subprocess.run(
        [sys.executable, "-m", "nucseg.cli", "predict", "--model", str(folder), str(images)]
        + ["--out", str(out), "--tta", "0"],
        capture_output=True,
        text=True,
    )
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert "thresholds.json" in predicted.stdout and len(list(out.glob("*.tif"))) == 3
    summary = pd.read_csv(out / "summary.csv")
    measured = pd.read_csv(out / "measurements.csv")
    assert len(summary) == 3 and summary["count"].sum() == len(measured)
    # as a pretrained member: installed, not trained; its thresholds are not tuned again
    config = tiny_config()
    config["models"]["shipped"] = {"pretrained": str(folder)}
    config["ensembles"]["mixed"] = {"models": ["shipped", "unet16"]}
    jobs = _planned_jobs(workdir, config, "results/submissions/mixed.csv")
    assert jobs.get("install_pretrained") == 1 and "train_model" not in jobs, jobs
    # mixed is tuned on unet16's fold, the shipped model's maps of that fold predicted once
    assert jobs.get("tune_thresholds") == 1 and jobs.get("predict_validation") == 1
