"""Precision settings: bfloat16 autocast where the CPU has it, float32 otherwise, never a
silent emulated bfloat16."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from nucseg import precision
from nucseg.errors import NucsegInputError
from nucseg.models import ModelConfig, build_model
from nucseg.predict import MapObjects, PredictConfig, predict_probability

CPU = torch.device("cpu")


def test_auto_follows_the_cpu_and_fp32_is_always_float32(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert precision.autocast_dtype("auto", CPU) is torch.bfloat16
    assert precision.autocast_dtype("bf16", CPU) is torch.bfloat16
    assert precision.autocast_dtype("fp32", CPU) is None
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert precision.autocast_dtype("auto", CPU) is None
    assert precision.autocast_dtype("auto", torch.device("cuda")) is torch.float16


def test_bf16_on_a_cpu_without_it_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    with pytest.raises(NucsegInputError, match="precision: bf16 .* no native bfloat16"):
        precision.autocast_dtype("bf16", CPU)
    with pytest.raises(NucsegInputError, match="precision: 'fp8' is unknown"):
        precision.autocast_dtype("fp8", CPU)


@pytest.mark.skipif(not precision.cpu_has_native_bf16(), reason="CPU has no native bfloat16")
def test_bf16_maps_stay_close_to_float32_maps():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="camunet", base_width=8, depth=3)).eval()
    image = np.random.default_rng(0).random((1, 96, 128), dtype=np.float32)
    fp32 = predict_probability(model, image, CPU, PredictConfig(precision="fp32"))
    bf16 = predict_probability(model, image, CPU, PredictConfig(precision="bf16"))
    assert fp32.dtype == bf16.dtype == np.float32 and fp32.shape == bf16.shape == (3, 96, 128)
    assert 0 < np.abs(fp32 - bf16).max() < 0.05  # bf16 changes the maps, a little


def test_map_confidence_prefers_decided_maps():
    from nucseg.predict import map_confidence

    decided = np.zeros((1, 20, 20), np.float32)
    decided[0, 5:15, 5:15] = 0.98
    undecided = np.full((1, 20, 20), 0.5, np.float32)
    assert map_confidence(decided) > 0.9 > 0.1 > map_confidence(undecided)
    assert map_confidence(np.zeros((1, 5, 5), np.float32)) == 0.0


def test_the_most_confident_scale_is_kept_at_the_image_size(monkeypatch):
    import nucseg.predict

    torch.manual_seed(0)
    model = build_model(ModelConfig(base_width=4, depth=2)).eval()
    image = np.random.default_rng(0).random((1, 90, 110), dtype=np.float32)
    native = predict_probability(model, image, CPU, PredictConfig())
    sizes = []
    monkeypatch.setattr(
        nucseg.predict,
        "map_confidence",
        lambda prob: sizes.append(prob.shape[-2:]) or (1.0 if prob.shape[-1] == 55 else 0.5),
    )
    chosen = predict_probability(model, image, CPU, PredictConfig(scales=(1.0, 0.5)))
    assert sizes == [(90, 110), (45, 55)]  # both scales predicted, the half size won
    assert chosen.shape == native.shape == (1, 90, 110) and np.isfinite(chosen).all()
    assert chosen.min() >= 0 and chosen.max() <= 1 and not np.allclose(chosen, native)


def recorded_view_passes(monkeypatch):
    """A tiny network, a 64 x 80 image, and ``(padded shape, views)`` of every network pass
    prediction makes from then on (recorded, then run by the original, also returned)."""
    import nucseg.predict

    torch.manual_seed(0)
    model = build_model(ModelConfig(base_width=4, depth=2)).eval()
    image = np.random.default_rng(1).random((1, 64, 80), dtype=np.float32)
    calls = []
    predict_views = nucseg.predict._predict_views

    def counting(model, padded, device, views, dtype):
        calls.append((padded.shape[-2:], tuple(views)))
        return predict_views(model, padded, device, views, dtype)

    monkeypatch.setattr(nucseg.predict, "_predict_views", counting)
    return model, image, calls, predict_views


def test_only_the_chosen_scale_runs_the_other_views(monkeypatch):
    """Views 0, 5, 2 and scales 1, 0.5: the first view picks the half size, then views 5
    and 2 run there alone; the maps equal all three views at that size."""
    import nucseg.predict

    model, image, calls, predict_views = recorded_view_passes(monkeypatch)
    monkeypatch.setattr(nucseg.predict, "map_confidence", lambda p: float(p.shape[-1] == 40))
    config = PredictConfig(views=(0, 5, 2), scales=(1.0, 0.5), precision="fp32")
    chosen = predict_probability(model, image, CPU, config)
    assert calls == [((64, 80), (0,)), ((32, 40), (0,)), ((32, 40), (5, 2))]
    half = nucseg.predict._scaled(image, 0.5)
    with torch.inference_mode():
        direct = predict_views(model, half, CPU, (0, 5, 2), None)
    expected = np.clip(nucseg.predict.resize_maps(direct, (64, 80)), 0, 1)
    np.testing.assert_allclose(chosen, expected, atol=1e-5)


def test_typical_objects_are_the_median_foreground_pixel_s_region_and_those_alike():
    from skimage.draw import disk

    from nucseg.predict import typical_objects

    semantic = np.zeros((200, 200), np.float32)
    for k, radius in enumerate((6, 10, 10, 10, 14)):  # the median pixel: in a 20-px disk
        semantic[disk((20 + 38 * k, 100), radius)] = 0.9
    semantic[5, 5] = 0.9  # a speck: not an object
    diameter, alike = typical_objects(semantic)
    assert abs(diameter - 20) < 1 and alike == 4  # the 12-px disk is under half the area
    fragments = np.zeros((200, 200), np.float32)
    fragments[disk((100, 100), 30)] = 0.9  # one large nucleus among its small fragments
    for k in range(10):
        fragments[disk((10, 10 + 18 * k), 3)] = 0.9
    diameter, alike = typical_objects(fragments)
    assert abs(diameter - 60) < 1 and alike == 1
    assert typical_objects(np.zeros((20, 20), np.float32)) == (0.0, 0)


@pytest.mark.parametrize("search_from, sizes", [(1000.0, [(64, 80)]), (1.0, [(64, 80), (32, 40)])])
def test_nuclei_of_a_known_size_skip_the_smaller_scales(monkeypatch, search_from, sizes):
    """With ``search_from`` above the first scale's object size, the smaller scales do not
    run; at or below it, they do."""
    import nucseg.predict

    model, image, calls, _ = recorded_view_passes(monkeypatch)
    monkeypatch.setattr(nucseg.predict, "typical_objects", lambda semantic: MapObjects(20.0, 10))
    config = PredictConfig(scales=(1.0, 0.5), search_from=search_from, precision="fp32")
    maps = predict_probability(model, image, CPU, config)
    assert [shape for shape, _ in calls] == sizes and maps.shape == (1, 64, 80)


@pytest.mark.parametrize(
    "diameter, alike, sizes",
    [
        (40.0, 8, [(64, 80), (32, 40), (32, 40)]),
        (39.0, 8, [(64, 80), (32, 40), (64, 80)]),
        (40.0, 7, [(64, 80), (32, 40), (64, 80)]),
    ],
)
def test_nuclei_far_larger_than_learned_are_brought_to_the_learned_size(
    monkeypatch, diameter, alike, sizes
):
    """With ``shrink_from`` at or below the first scale's object size, the image runs at the
    one scale that brings its objects to ``nucleus_diameter`` (40 px -> 20 px: half size),
    every view there, instead of the scale search; below it, or with fewer than
    ``SHRINK_ALIKE`` objects that size (clumps of merged nuclei), the search runs (the full
    size kept: ties keep the first scale)."""
    import nucseg.predict

    model, image, calls, _ = recorded_view_passes(monkeypatch)
    assert nucseg.predict.SHRINK_ALIKE == 8
    objects = MapObjects(diameter, alike)
    monkeypatch.setattr(nucseg.predict, "typical_objects", lambda semantic: objects)
    monkeypatch.setattr(nucseg.predict, "map_confidence", lambda p: 0.5)
    config = PredictConfig(
        views=(0, 5),
        scales=(1.0, 0.5),
        shrink_from=40.0,
        nucleus_diameter=20.0,
        precision="fp32",
    )
    maps = predict_probability(model, image, CPU, config)
    assert [shape for shape, _ in calls] == sizes and maps.shape == (1, 64, 80)
    if sizes[-1] == (32, 40):
        half = replace(config, scales=(0.5,), shrink_from=0.0)
        np.testing.assert_allclose(maps, predict_probability(model, image, CPU, half), atol=1e-6)


def test_shrinking_large_nuclei_needs_the_learned_size():
    """Settings may leave the size to the model (0: its checkpoint's, filled in when it is
    loaded); predicting without one fails before any pass."""
    config = PredictConfig(scales=(1.0, 0.5), shrink_from=60)
    model = build_model(ModelConfig(base_width=4, depth=2)).eval()
    image = np.zeros((1, 32, 32), np.float32)
    with pytest.raises(NucsegInputError, match="shrink_from: 60 px needs the nucleus_diameter"):
        predict_probability(model, image, CPU, config)


@pytest.mark.parametrize("diameter, enlarged", [(10.0, True), (20.0, False), (0.0, False)])
def test_images_of_small_nuclei_are_predicted_at_twice_the_size(monkeypatch, diameter, enlarged):
    """With ``enlarge_below`` above the first pass's object size (objects found), every view
    runs at twice the size and the maps are that size's, resized back; images of larger
    nuclei, or of none, keep their size."""
    import nucseg.predict

    model, image, calls, _ = recorded_view_passes(monkeypatch)
    objects = MapObjects(diameter, 10)
    monkeypatch.setattr(nucseg.predict, "typical_objects", lambda semantic: objects)
    config = PredictConfig(views=(0, 5), enlarge_below=14.0, precision="fp32")
    maps = predict_probability(model, image, CPU, config)
    sizes = [shape for shape, _ in calls]
    assert maps.shape == (1, 64, 80)
    if not enlarged:
        assert sizes == [(64, 80), (64, 80)]
        return
    assert sizes == [(64, 80), (128, 160), (128, 160)]
    twice = replace(config, scales=(2.0,), enlarge_below=0.0)
    np.testing.assert_allclose(maps, predict_probability(model, image, CPU, twice), atol=1e-6)


@pytest.mark.parametrize(
    "category, enlarged",
    [("histology", True), ("fluorescence", False), ("brightfield", False), (None, False)],
)
def test_a_gate_per_category_enlarges_only_the_images_of_its_categories(
    monkeypatch, category, enlarged
):
    """``enlarge_below`` per category: 20-px objects are small for H&E (gate 24) and not
    for fluorescence (gate 14); a category the mapping does not name, or no category
    given, is never enlarged."""
    import nucseg.predict

    model, image, calls, _ = recorded_view_passes(monkeypatch)
    monkeypatch.setattr(nucseg.predict, "typical_objects", lambda semantic: MapObjects(20.0, 10))
    gates = {"fluorescence": 14, "histology": 24}
    config = PredictConfig(views=(0,), enlarge_below=gates, precision="fp32")
    predict_probability(model, image, CPU, config, category)
    assert [shape for shape, _ in calls] == ([(64, 80), (128, 160)] if enlarged else [(64, 80)])


def test_a_gate_for_an_unknown_category_is_named():
    with pytest.raises(NucsegInputError, match="'H&E' is not a category"):
        PredictConfig(enlarge_below={"H&E": 24})


@pytest.mark.skipif(not precision.cpu_has_native_bf16(), reason="CPU has no native bfloat16")
def test_convolutions_stored_in_bf16_give_the_maps_autocast_gives():
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch="camunet", base_width=8, depth=3)).eval()
    stored = precision.convolutions_in(model, torch.bfloat16)
    assert stored.encoder.blocks[0][0].weight.dtype == torch.bfloat16
    assert model.encoder.blocks[0][0].weight.dtype == torch.float32  # a copy
    assert precision.convolutions_in(model, None) is model  # float32: as it is
    image = np.random.default_rng(0).random((1, 64, 96), dtype=np.float32)
    config = PredictConfig(views=(0, 5), precision="bf16")
    np.testing.assert_array_equal(
        predict_probability(stored, image, CPU, config),
        predict_probability(model, image, CPU, config),
    )
