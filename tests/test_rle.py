import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nucseg.errors import NucsegInputError
from nucseg.rle import decode_labels, decode_rle, encode_labels, encode_mask


def test_encoding_is_one_based_column_major_on_hand_example():
    mask = np.array([[0, 1], [1, 1], [1, 0]])  # pixel numbers [[1,4],[2,5],[3,6]]
    assert encode_mask(mask) == "2 4"


def test_two_runs_and_last_pixel():
    mask = np.array([[1, 0, 0], [0, 0, 1]])  # numbering [[1,3,5],[2,4,6]]
    assert encode_mask(mask) == "1 1 6 1"


def test_encode_labels_groups_runs_by_nucleus_in_label_order():
    labels = np.array([[2, 2, 0], [1, 0, 0], [1, 0, 3]])
    assert encode_labels(labels) == {1: "2 2", 2: "1 1 4 1", 3: "9 1"}


def test_empty_mask_encodes_to_empty_string():
    assert encode_mask(np.zeros((4, 5))) == ""
    assert encode_labels(np.zeros((4, 5), int)) == {}


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.int32, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 4))
)
def test_round_trip_of_any_label_image(labels):
    encodings = encode_labels(labels)
    decoded = decode_labels(list(encodings.values()), labels.shape)
    # decode numbers nuclei 1..N in encoding order, which is increasing original label
    relabel = np.zeros(labels.max() + 1, np.int32)
    relabel[list(encodings)] = np.arange(1, len(encodings) + 1)
    np.testing.assert_array_equal(decoded, relabel[labels])


def test_decode_single_mask():
    np.testing.assert_array_equal(
        decode_rle("2 4", (3, 2)), np.array([[0, 1], [1, 1], [1, 0]], bool)
    )


@pytest.mark.parametrize(
    "rle, message",
    [
        ("1 2 3", "odd number"),
        ("0 2", "positive"),
        ("5 1 2 1", "not sorted"),
        ("1 3 2 1", "overlap"),
        ("5 3", "beyond"),
        ("1 x", "non-integer"),
    ],
)
def test_malformed_encodings_raise_named_errors(rle, message):
    with pytest.raises(NucsegInputError, match=message) as info:
        decode_rle(rle, (2, 3), where="sub.csv (image a)")
    assert "sub.csv (image a)" in str(info.value)


def test_overlapping_nuclei_are_refused():
    with pytest.raises(NucsegInputError, match="overlaps"):
        decode_labels(["1 2", "2 2"], (2, 2))
