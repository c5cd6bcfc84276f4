import numpy as np
import pytest
from PIL import Image

from nucseg.errors import NucsegInputError
from nucseg.io.arrays import load_arrays, save_arrays
from nucseg.io.images import image_planes, read_image, to_rgb8
from nucseg.io.kaggle import list_stage1, read_mask_labels


def _png(path, array, mode=None):
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return path


def test_truncated_png_is_named(tmp_path):
    path = _png(
        tmp_path / "t.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    )
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(NucsegInputError, match="t.png: corrupt or truncated"):
        read_image(path)


@pytest.mark.parametrize(
    "content, message", [(b"", "empty"), (b"hello, not an image", "not a readable image")]
)
def test_empty_or_non_image_file_is_named(tmp_path, content, message):
    (tmp_path / "x.png").write_bytes(content)
    with pytest.raises(NucsegInputError, match=f"x.png: .*{message}"):
        read_image(tmp_path / "x.png")


def test_unusual_modes_read_as_arrays(tmp_path):
    gray = np.arange(12 * 10, dtype=np.uint8).reshape(12, 10)
    rgba = np.dstack([gray] * 3 + [np.full_like(gray, 255)])
    assert read_image(_png(tmp_path / "rgba.png", rgba)).shape == (12, 10, 4)
    palette = Image.fromarray(gray).convert("P")
    palette.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (12, 10, 3)
    Image.fromarray(gray > 60).save(tmp_path / "bit.png")
    assert set(np.unique(read_image(tmp_path / "bit.png"))) == {0, 255}
    deep = (gray.astype(np.uint16) * 200).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "16.png")
    read16 = read_image(tmp_path / "16.png")
    assert read16.dtype == np.uint16 and read16.max() == deep.max()
    assert to_rgb8(read16).dtype == np.uint8 and to_rgb8(read16).max() == 255


def test_a_hyperstack_is_read_plane_by_plane_in_the_nuclear_channel(tmp_path):
    import tifffile

    movie = np.arange(2 * 3 * 2 * 16 * 20, dtype=np.uint16).reshape(2, 3, 2, 16, 20)  # TZCYX
    tifffile.imwrite(tmp_path / "movie.tif", movie, imagej=True, metadata={"axes": "TZCYX"})
    planes = image_planes(tmp_path / "movie.tif", channel=1)
    assert [p.suffix for p in planes] == [f"_t{t}_z{z}" for t in range(2) for z in range(3)]
    np.testing.assert_array_equal(planes[4].read(), movie[1, 1, 1])
    with pytest.raises(NucsegInputError, match=r"movie.tif: 2 channels \(axes TZCYX.*channel 0..1"):
        image_planes(tmp_path / "movie.tif")
    with pytest.raises(NucsegInputError, match="movie.tif: no channel 2 "):
        image_planes(tmp_path / "movie.tif", channel=2)
    with pytest.raises(NucsegInputError, match="movie.tif: a stack of 6 planes"):
        read_image(tmp_path / "movie.tif", channel=0)  # where one image is expected
    pages = np.stack([movie[0, 0, 0]] * 12)  # pages of unknown meaning: one image each
    tifffile.imwrite(tmp_path / "pages.tif", pages)
    assert [p.suffix for p in image_planes(tmp_path / "pages.tif")][9:] == ["_i09", "_i10", "_i11"]
    rgb = np.dstack([movie[0, 0, 0] // 64] * 2 + [movie[0, 0, 1] // 64]).astype(np.uint8)
    picked = read_image(_png(tmp_path / "rgb.png", rgb), channel=2)
    np.testing.assert_array_equal(picked, rgb[..., 2])
    with pytest.raises(NucsegInputError, match="rgb.png: no channel 3 "):
        read_image(tmp_path / "rgb.png", channel=3)


def test_non_binary_and_empty_masks_are_named(tmp_path):
    values = np.zeros((8, 8), np.uint8)
    values[1, 1], values[2, 2] = 255, 128
    with pytest.raises(NucsegInputError, match="m1.png: mask is not binary"):
        read_mask_labels((_png(tmp_path / "m1.png", values),), (8, 8))
    with pytest.raises(NucsegInputError, match="m2.png: mask is empty"):
        read_mask_labels((_png(tmp_path / "m2.png", np.zeros((8, 8), np.uint8)),), (8, 8))


def test_overlapping_masks_go_to_the_larger_nucleus_or_raise(tmp_path):
    small, large = np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8)
    small[0:2, 0:2] = 255
    large[1:6, 1:6] = 255
    paths = (_png(tmp_path / "a.png", small), _png(tmp_path / "b.png", large))
    labels = read_mask_labels(paths, (8, 8), overlap="larger")
    assert labels[1, 1] == 2 and labels[0, 0] == 1
    with pytest.raises(NucsegInputError, match="overlaps"):
        read_mask_labels(paths, (8, 8), overlap="error")


def test_stage1_layout_errors_name_the_folder(tmp_path):
    with pytest.raises(NucsegInputError, match="folder not found"):
        list_stage1(tmp_path / "missing", require_masks=False)
    (tmp_path / "abc" / "images").mkdir(parents=True)
    with pytest.raises(NucsegInputError, match="abc: no images/abc.png"):
        list_stage1(tmp_path, require_masks=False)


def test_array_files_are_byte_reproducible(tmp_path):
    arrays = {"b": np.arange(6).reshape(2, 3), "a": np.ones(3, np.float16)}
    save_arrays(tmp_path / "1.npz", arrays)
    save_arrays(tmp_path / "2.npz", arrays)
    assert (tmp_path / "1.npz").read_bytes() == (tmp_path / "2.npz").read_bytes()
    loaded = load_arrays(tmp_path / "1.npz")
    np.testing.assert_array_equal(loaded["b"], arrays["b"])
