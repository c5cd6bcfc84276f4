from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from nucseg.checkpoints import save_checkpoint
from nucseg.errors import NucsegInputError
from nucseg.models import ModelConfig, build_model
from nucseg.normalize import NormalizeConfig, normalize_image
from nucseg.synth.nuclei import SynthConfig, generate
from nucseg.targets import compute_targets
from nucseg.train import (
    TrainConfig,
    TrainData,
    TrainPaths,
    load_initial_weights,
    log_columns,
    target_indices,
    train_model,
)


def _data(heads=("semantic",), normalize=NormalizeConfig()):
    images = generate(
        SynthConfig(n_images=4, seed=3, shapes=((64, 64),), shape_weights=(1.0,)), "t"
    )
    norm = [normalize_image(i.pixels, normalize)[0] for i in images]
    targets = [compute_targets(i.instance_labels)[target_indices(heads)] for i in images]
    return TrainData(norm[:3], targets[:3], norm[3:], targets[3:], [images[3].instance_labels])


def _train(
    folder, net=ModelConfig(base_width=4, depth=2), normalize=NormalizeConfig(), compile=False, **kw
):
    config = TrainConfig(
        epochs=3, steps_per_epoch=3, batch_size=2, crop=32, seed=7, device="cpu", compile=compile
    )
    paths = TrainPaths.in_folder(folder)
    table = train_model(_data(net.heads, normalize), net, config, paths, normalize=normalize, **kw)
    return torch.load(paths.last, weights_only=True), table, paths


def _card(paths, table, thresholds, manifest, split, evaluation=None) -> str:
    """The model card of a test run (a fixed provenance, one test-time view)."""
    from nucseg.checkpoints import read_checkpoint
    from nucseg.export import Provenance, model_card

    provenance = Provenance("snakemake x", "abc", "config.yaml", "CC0")
    payload = read_checkpoint(paths.model)
    return model_card(
        "m", payload, thresholds, table, manifest, split, provenance, {"tta_views": [0]}, evaluation
    )


def assert_same_weights(a, b):
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key


def test_training_is_bit_reproducible_on_cpu_and_logs_each_epoch(tmp_path):
    first, table, paths = _train(tmp_path / "a")
    second, _, _ = _train(tmp_path / "b")
    assert_same_weights(first, second)
    log = pd.read_csv(paths.log, sep="\t")
    assert list(log.columns) == log_columns(("semantic",), False) and list(log.epoch) == [1, 2, 3]
    assert np.isfinite(log.loss_semantic).all() and (log.valid_dsb.between(0, 1)).all()
    assert paths.curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    best = torch.load(paths.model, weights_only=True)
    assert best["valid_dsb"] == pytest.approx(log.valid_dsb.max(), abs=1e-5)


def test_compiled_training_steps_are_reproducible_and_learn_like_eager_ones(tmp_path):
    """train.compile runs the steps through torch.compile (inductor, C++ kernels): the same
    run gives the same weights twice, and its losses follow the eager run's closely."""
    first, compiled, _ = _train(tmp_path / "a", compile=True)
    second, _, _ = _train(tmp_path / "b", compile=True)
    assert_same_weights(first, second)
    _, eager, _ = _train(tmp_path / "eager")
    assert np.allclose(compiled.train_loss, eager.train_loss, rtol=0.05)


def test_an_interrupted_run_resumes_to_the_same_final_weights(tmp_path, caplog):
    reference, _, _ = _train(tmp_path / "whole")
    net = ModelConfig(base_width=4, depth=2)
    config = TrainConfig(epochs=3, steps_per_epoch=3, batch_size=2, crop=32, seed=7, device="cpu")
    paths = TrainPaths.in_folder(tmp_path / "cut")
    # "interrupt" after epoch 1: a run with epochs=1 leaves the state of epoch 1 behind
    train_model(_data(), net, TrainConfig(**{**config.__dict__, "epochs": 1}), paths)
    state = torch.load(paths.checkpoints / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    caplog.set_level("INFO", logger="nucseg.train")
    table = train_model(_data(), net, config, paths)  # a longer run continues a shorter one
    assert "after epoch 1" in caplog.text
    assert list(table.epoch) == [1, 2, 3]
    assert_same_weights(reference, torch.load(paths.last, weights_only=True))


def test_state_of_other_settings_or_corrupt_state_is_not_resumed(tmp_path, caplog):
    caplog.set_level("INFO", logger="nucseg.train")
    _, _, paths = _train(tmp_path / "x")
    _, table, _ = _train(tmp_path / "x", net=ModelConfig(base_width=4, depth=2, dropout=0.1))
    assert "state of other settings" in caplog.text and list(table.epoch) == [1, 2, 3]
    _, table, _ = _train(tmp_path / "x", normalize=NormalizeConfig(low=5.0))  # other images
    assert caplog.text.count("state of other settings") == 2 and list(table.epoch) == [1, 2, 3]
    _train(tmp_path / "x")  # a 3-epoch state of the default settings again
    shorter = TrainConfig(epochs=2, steps_per_epoch=3, batch_size=2, crop=32, seed=7, device="cpu")
    table = train_model(_data(), ModelConfig(base_width=4, depth=2), shorter, paths)
    assert "beyond 2; starting afresh" in caplog.text and list(table.epoch) == [1, 2]
    (paths.checkpoints / "last.pt").write_bytes(b"truncated")
    _, table, _ = _train(tmp_path / "x")
    assert "unreadable training state" in caplog.text and list(table.epoch) == [1, 2, 3]


def test_the_validation_score_weighs_acquisitions_and_categories_alike(tmp_path):
    """A fold of whole acquisitions is often mostly one: three images of acquisition a
    scoring 1 and one of b scoring 0 are 0.5, not 0.75, and a category of one image counts
    as much as one of three acquisitions (the log's score is the one the best epoch is
    kept by)."""
    from nucseg.train import ValidationScore

    data = _data()
    image, target = data.valid_images[0], data.valid_targets[0]
    scores = [1.0, 1.0, 1.0, 0.0]  # each image's labels carry the score it gets
    labels = [np.full(image.shape[-2:], s, np.float32) for s in scores]
    fixed = ValidationScore("fixed", lambda _prob, _presence, truth: float(truth.flat[0]))
    config = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2, crop=32, seed=7, device="cpu")
    net = ModelConfig(base_width=4, depth=2)

    def logged(groups) -> float:
        folder = tmp_path / str(len(list(tmp_path.iterdir())))  # a fresh run each time
        fold = replace(
            data, valid_images=[image] * 4, valid_targets=[target] * 4, valid_labels=labels
        )
        table = train_model(
            replace(fold, valid_groups=groups),
            net,
            config,
            TrainPaths.in_folder(folder),
            validation=fixed,
        )
        return float(table["valid_fixed"].iloc[0])

    assert logged(None) == pytest.approx(0.75)
    assert logged([("fluorescence", "a")] * 3 + [("fluorescence", "b")]) == pytest.approx(0.5)
    assert logged([("fluorescence", "a")] * 3 + [("histology", "b")]) == pytest.approx(0.5)
    one_and_three = [("fluorescence", "a"), *(("histology", h) for h in "bcd")]
    assert logged(one_and_three) == pytest.approx((1 + 2 / 3) / 2, abs=1e-5)  # log: 5 digits
    assert logged([("fluorescence", "a")] * 4) == pytest.approx(0.75)


def test_multi_head_network_logs_a_loss_per_head(tmp_path):
    net = ModelConfig(arch="camunet", base_width=4, depth=2, presence_head=True)
    checkpoint, table, _ = _train(tmp_path, net=net)
    assert {"loss_contour", "loss_marker", "loss_presence"} <= set(table.columns)
    assert checkpoint["net"]["arch"] == "camunet"


def test_colour_input_trains_a_three_channel_network(tmp_path):
    checkpoint, _, _ = _train(tmp_path, normalize=NormalizeConfig(method="rgb"))
    assert checkpoint["net"]["in_channels"] == 3


def test_predict_command_segments_image_files_with_a_trained_model(tmp_path, capsys):
    from nucseg.cli import main
    from nucseg.io.images import read_tiff, write_png
    from nucseg.submission import read_submission

    _, _, paths = _train(tmp_path / "model", normalize=NormalizeConfig(low=2.0))
    assert torch.load(paths.model, weights_only=True)["normalize"]["low"] == 2.0
    images = generate(
        SynthConfig(n_images=2, seed=9, shapes=((70, 90),), shape_weights=(1.0,)), "p"
    )
    files = []
    for k, image in enumerate(images):
        write_png(image.pixels, tmp_path / f"img{k}.png")
        files.append(str(tmp_path / f"img{k}.png"))
    out = tmp_path / "out"
    main(
        [
            "predict",
            "--model",
            str(paths.model.parent),
            "--model",
            str(paths.last),
            "--tta",
            "0,5",
            "--out",
            str(out),
            "--outputs",
            "tif,csv,roi,geojson",
            "--pixel-size",
            "0.65",
            *files,
        ]
    )
    printed = capsys.readouterr()
    assert "2 images" in printed.out
    assert f"[2/2] {files[1]}: " in printed.err  # one progress line per image
    labels = read_tiff(out / "img0.tif")
    assert labels.shape == (70, 90)
    decoded = read_submission(out / "submission.csv", {"img0": (70, 90), "img1": (70, 90)})
    np.testing.assert_array_equal(decoded["img0"] > 0, labels > 0)
    for name in ("img0_rois.zip", "img1.geojson", "measurements.csv", "summary.csv"):
        assert (out / name).is_file(), name
    with pytest.raises(SystemExit):
        main(
            ["predict", "--model", str(paths.model.parent), "--outputs", "tif,png"]
            + ["--out", str(tmp_path / "bad"), *files]
        )
    assert "--outputs: 'png' is not one of tif, csv, roi, geojson" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
    with pytest.raises(SystemExit):
        main(["predict", "--model", str(tmp_path / "nowhere"), "--out", str(out), *files])
    assert "nowhere: checkpoint not found" in capsys.readouterr().err


def test_training_records_its_precision_and_fine_tunes_from_init_weights(tmp_path):
    first, _, paths = _train(tmp_path / "a")
    assert first["precision"] in ("bf16", "fp32")  # the CPU decides what auto means
    net = ModelConfig(base_width=4, depth=2)
    config = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2, crop=32, seed=7, device="cpu")
    zero_lr = TrainConfig(**{**config.__dict__, "learning_rate": 1e-12})
    tuned = TrainPaths.in_folder(tmp_path / "b")
    train_model(_data(), net, zero_lr, tuned, init=paths.model.parent)  # a model folder
    start = torch.load(paths.model, weights_only=True)["state_dict"]
    after = torch.load(tuned.last, weights_only=True)["state_dict"]
    conv = next(k for k in start if k.endswith("weight") and start[k].ndim == 4)
    assert torch.allclose(start[conv], after[conv], atol=1e-6)  # started from those weights


def test_a_fine_tune_can_be_written_blended_with_the_weights_it_started_from(tmp_path):
    _, _, paths = _train(tmp_path / "a")
    net = ModelConfig(base_width=4, depth=2)
    config = TrainConfig(
        epochs=1, steps_per_epoch=2, batch_size=2, crop=32, seed=7, device="cpu",
        learning_rate=0.05, init_share=0.25,
    )  # fmt: skip
    tuned = TrainPaths.in_folder(tmp_path / "b")
    train_model(_data(), net, config, tuned, init=paths.model)
    init = torch.load(paths.model, weights_only=True)["state_dict"]
    best = torch.load(tuned.checkpoints / "best.pt", weights_only=True)["state_dict"]
    written = torch.load(tuned.model, weights_only=True)
    conv = next(k for k in init if k.endswith("weight") and init[k].ndim == 4)
    assert not torch.allclose(init[conv], best[conv])  # the fine-tune moved the weights
    torch.testing.assert_close(written["state_dict"][conv], 0.25 * init[conv] + 0.75 * best[conv])
    assert written["init_share"] == 0.25 and 0 <= written["valid_dsb"] <= 1  # re-validated
    with pytest.raises(NucsegInputError, match="train.init_share blends with init weights"):
        train_model(_data(), net, config, TrainPaths.in_folder(tmp_path / "c"))
    assert not (tmp_path / "c").exists()


def test_init_weights_of_another_network_are_refused_by_name(tmp_path):
    _, _, paths = _train(tmp_path / "a")
    config = TrainConfig(epochs=1, steps_per_epoch=1, batch_size=2, crop=32, seed=7, device="cpu")
    wider = ModelConfig(base_width=8, depth=2)
    with pytest.raises(NucsegInputError, match=r"model.pt: init weights are of another network"):
        train_model(_data(), wider, config, TrainPaths.in_folder(tmp_path / "b"), init=paths.model)


def test_init_weights_grow_into_more_input_channels_that_start_unused(tmp_path):
    torch.manual_seed(0)
    gray = build_model(ModelConfig(base_width=4, depth=2)).eval()
    save_checkpoint(gray, tmp_path / "gray.pt")
    colour = build_model(ModelConfig(base_width=4, depth=2, in_channels=4)).eval()
    load_initial_weights(colour, tmp_path / "gray.pt")
    inputs = torch.rand(1, 4, 32, 32)
    with torch.no_grad():  # the colour channels change nothing until training uses them
        torch.testing.assert_close(colour(inputs), gray(inputs[:, :1]))
    save_checkpoint(colour, tmp_path / "colour.pt")
    refused = r"colour.pt: init weights are of another network \(in_channels 4"
    with pytest.raises(NucsegInputError, match=refused):
        load_initial_weights(gray, tmp_path / "colour.pt")  # fewer channels: refused


def test_cosine_schedule_anneals_to_its_floor_and_resumes_to_the_same_weights(tmp_path):
    net = ModelConfig(base_width=4, depth=2)
    config = TrainConfig(
        epochs=3,
        steps_per_epoch=3,
        batch_size=2,
        crop=32,
        seed=7,
        device="cpu",
        learning_rate=1e-3,
        lr_factor=0.1,
        schedule="cosine",
    )
    whole = TrainPaths.in_folder(tmp_path / "whole")
    table = train_model(_data(), net, config, whole)
    assert table.lr.is_monotonic_decreasing and table.lr.iloc[-1] == pytest.approx(1e-4)
    # a run cut short by its time budget (not a different length) continues where it stopped
    cut = TrainPaths.in_folder(tmp_path / "cut")
    train_model(_data(), net, TrainConfig(**{**config.__dict__, "max_seconds": 1e-9}), cut)
    assert torch.load(cut.checkpoints / "last.pt", weights_only=True)["epoch"] == 1
    assert list(train_model(_data(), net, config, cut).epoch) == [1, 2, 3]
    assert_same_weights(
        torch.load(whole.last, weights_only=True), torch.load(cut.last, weights_only=True)
    )
    with pytest.raises(ValueError, match="train.schedule must be plateau or cosine"):
        train_model(_data(), net, TrainConfig(**{**config.__dict__, "schedule": "step"}), cut)


def test_model_card_names_the_weights_a_fine_tuned_model_started_from(tmp_path):
    from functools import partial

    from nucseg.checkpoints import read_checkpoint
    from nucseg.export import Provenance, model_card

    _, table, paths = _train(tmp_path / "m")
    manifest = pd.DataFrame(
        {"id": ["a", "b"], "source": ["s", "s"], "category": ["fluorescence"] * 2}
    ).set_index("id")
    thresholds = {
        "postprocess": {"mask_threshold": 0.5, "marker_threshold": 0.6, "split_h": 1.0}
        | {"min_size": 12, "min_relative_size": 0.1},
        "valid_dsb_tuned": 0.5,
        "valid_dsb_by_category": {"fluorescence": 0.5},
    }
    split = {"train": ["a"], "valid": ["b"]}
    card = partial(
        model_card, "m", read_checkpoint(paths.model), thresholds, table, manifest, split
    )
    provenance = Provenance("snakemake x", "abc", "config.yaml", "CC0")
    tuned = card(replace(provenance, init="`old/model.pt` (sha256 1)"), {"tta_views": [0]})
    assert "- Fine-tuned from `old/model.pt` (sha256 1)\n" in tuned
    assert "min relative\nsize 0.1" in tuned and "| fluorescence | 0.500 |" in tuned
    assert "Fine-tuned" not in card(provenance, {"tta_views": [0]})
    blended = {**read_checkpoint(paths.model), "init_share": 0.7}
    blended_card = model_card("m", blended, thresholds, table, manifest, split, provenance, {})
    assert "blended with 0.7 of those it started from (`train.init_share`" in blended_card
    assert "scores are optimistic for unseen acquisitions" in tuned  # no acquisition column
    assert "never trained on" not in tuned  # no evaluation sets


def test_model_card_says_whole_acquisitions_were_held_out_and_reports_outside_sets(tmp_path):
    from nucseg.evaluation import summarize_evaluation

    _, table, paths = _train(tmp_path / "m")
    manifest = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "source": ["s"] * 3,
            "category": ["fluorescence"] * 3,
            "acquisition": ["s:1", "s:1", "s:2"],
        }
    ).set_index("id")
    thresholds = {
        "postprocess": {"mask_threshold": 0.5, "marker_threshold": 0.6, "split_h": 1.0},
        "valid_dsb_tuned": 0.5,
    }
    per_image = pd.DataFrame(
        {"set": ["lab2"] * 2, "id": ["x", "y"], "category": ["fluorescence"] * 2}
        | {"n_true": [10, 20], "n_pred": [9, 22], "dsb": [0.5, 0.7], "ap50": [0.8, 0.9]}
        | {"ap75": [0.5, 0.6], "f1_50": [0.9, 0.9], "pq": [0.7, 0.8], "seconds": [1.0, 3.0]}
    )
    evaluation = summarize_evaluation(per_image)
    card = _card(
        paths, table, thresholds, manifest, {"train": ["a", "b"], "valid": ["c"]}, evaluation
    )
    assert "whole acquisitions held out (1 of 2 acquisitions in validation" in card
    assert "| lab2 | fluorescence | 2 | 30 | 31 | 0.600 | 0.850 | 2.0 |" in card
    # acquisition s:1 on both sides
    leaky = _card(paths, table, thresholds, manifest, {"train": ["a", "c"], "valid": ["b"]})
    assert "optimistic for unseen acquisitions" in leaky


def test_a_model_trained_on_every_image_keeps_its_lowest_loss_epoch_and_card_quotes_evidence(
    tmp_path,
):
    """No validation side (cv.valid_fraction 0): training keeps the epoch of the lowest
    training loss, the thresholds come from the config with their evidence, and the card
    says so instead of printing validation scores it does not have."""
    from nucseg.checkpoints import read_checkpoint
    from nucseg.postprocess import PostprocessConfig
    from nucseg.tuning import write_fixed_thresholds

    data = _data()
    every_image = TrainData(
        data.train_images + data.valid_images,
        [*data.train_targets, *data.valid_targets],
        [],
        [],
        [],
    )
    config = TrainConfig(epochs=3, steps_per_epoch=3, batch_size=2, crop=32, seed=7, device="cpu")
    paths = TrainPaths.in_folder(tmp_path / "m")
    table = train_model(every_image, ModelConfig(base_width=4, depth=2), config, paths)
    assert table["valid_dsb"].isna().all()
    kept = int(table.loc[table["train_loss"].idxmin(), "epoch"])
    assert read_checkpoint(paths.model)["epoch"] == kept

    fixed = {"postprocess": {"mask_threshold": 0.4}, "evidence": "tuned on fold 0: 0.7"}
    thresholds = write_fixed_thresholds(fixed, PostprocessConfig(), tmp_path / "t.json")
    assert thresholds["postprocess"]["mask_threshold"] == 0.4
    assert thresholds["postprocess"]["marker_threshold"] == PostprocessConfig().marker_threshold
    manifest = pd.DataFrame(
        {"id": ["a", "b"], "source": ["s", "s"], "category": ["fluorescence"] * 2}
    ).set_index("id")
    card = _card(paths, table, thresholds, manifest, {"train": ["a", "b"], "valid": []})
    assert f"Epoch {kept} of 3 (the lowest training loss; no validation images)" in card
    assert "Validation: none; it trained on every image" in card
    assert "fixed in the config rather than tuned on this model\ntuned on fold 0: 0.7" in card
    assert "Thresholds (`thresholds.json`): mask 0.4" in card
    with pytest.raises(NucsegInputError, match=r"unknown post-processing settings \['mask'\]"):
        write_fixed_thresholds({"postprocess": {"mask": 0.4}}, PostprocessConfig(), tmp_path / "u")


def test_the_card_says_which_images_skip_the_scale_search_and_get_a_dim_pass():
    from nucseg.export import search_clause

    assert "only when the full-size map's objects are 32 px" in search_clause(
        {"scales": [1.0, 0.5], "search_from": 32}
    )
    assert search_clause({"scales": [1.0, 0.5]}) == ""  # every image searches
    assert search_clause({"scales": [1.0], "search_from": 32}) == ""  # nothing to search
    assert "under 14 px across enlarged x2" in search_clause({"enlarge_below": 14})
    per_category = search_clause({"enlarge_below": {"fluorescence": 14, "histology": 24}})
    assert "under 14 px (fluorescence) or 24 px (histology) across enlarged x2" in per_category
    words = search_clause({"shrink_from": 80})
    assert "80 px across or more (8 or more such objects, not a few merged clumps) run" in words
    assert "brightened to the power 0.5" in search_clause({"dim_gamma": 0.5})
    assert search_clause({"dim_gamma": 0}) == ""


def test_the_card_lists_the_validation_score_per_acquisition():
    from nucseg.export import validation_section

    thresholds = {
        "postprocess": {"mask_threshold": 0.5},
        "valid_dsb_tuned": 0.5,
        "valid_dsb_by_category": {"fluorescence": 0.5},
        "valid_dsb_by_acquisition": {
            "dsb:fluorescence:256x256:3": {"images": 62, "dsb": 0.71},
            "ctc:fluorescence:1024x1024:1": {"images": 4, "dsb": 0.12},
        },
    }
    card = validation_section(thresholds)
    assert "| ctc:fluorescence:1024x1024:1 | 4 | 0.120 |" in card
    assert "| dsb:fluorescence:256x256:3 | 62 | 0.710 |" in card
    one = {**thresholds, "valid_dsb_by_acquisition": {"a": {"images": 3, "dsb": 0.5}}}
    assert "Per acquisition" not in validation_section(one)
