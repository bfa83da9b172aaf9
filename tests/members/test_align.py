"""Aligning the member ids of two snapshots: the 64-bit-key path agrees with pyarrow's
``index_in`` on every shape of input, and falls back to it where keys cannot be used."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from plabdata.members._align import _id_bytes, align_ids


def _expected(before: pa.Array, after: pa.Array) -> list[int]:
    return pc.fill_null(pc.index_in(after, value_set=before), -1).to_pylist()  # type: ignore[no-any-return]


def _ids(numbers: np.ndarray) -> list[str]:
    return ["mem_" + hashlib.sha1(str(n).encode()).hexdigest() for n in numbers]


@pytest.mark.parametrize("seed", range(5))
def test_member_ids_align_like_index_in(seed: int) -> None:
    rng = np.random.default_rng(seed)
    before_numbers = rng.permutation(20_000)[:15_000]
    after_numbers = rng.permutation(20_000)[:16_000]
    before, after = pa.array(_ids(before_numbers)), pa.array(_ids(after_numbers))
    found = align_ids(before, after)
    assert found.dtype == np.int64 and found.tolist() == _expected(before, after)
    assert 0 < (found >= 0).sum() < len(after)
    # These take the 64-bit-key path: one zero-copy byte row per id.
    rows = _id_bytes(before)
    assert rows is not None and rows.shape == (15_000, 44) and not rows.flags.owndata


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (["mem_a", "mem_b"], ["mem_b", "mem_c"]),  # shorter than one 64-bit word
        (["a" * 9, "b" * 9, "c" * 9], ["c" * 9, "d" * 9, "a" * 9]),  # the last word overlaps
        (["mem_a", "mem_bb", "mem_ccc"], ["mem_ccc", "mem_a", "mem_x"]),  # several lengths
        (["x" * 16, "y" * 16], ["y" * 17, "x" * 16]),  # one length each, not the same
        (["", "mem_a"], ["mem_a", ""]),  # empty ids
        (["same" * 3, "same" * 3], ["same" * 3]),  # a duplicate: no unique key
        (["mem_1", None], [None, "mem_1"]),  # missing ids
        ([], ["mem_1"]),
    ],
)
def test_odd_ids_align_like_index_in(before: list[str | None], after: list[str | None]) -> None:
    old, new = pa.array(before, pa.string()), pa.array(after, pa.string())
    assert align_ids(old, new).tolist() == _expected(old, new)


def test_slices_and_large_strings_align_like_index_in() -> None:
    ids = _ids(np.arange(1_000))
    before = pa.array(ids).slice(100, 600)  # offsets that do not start at 0
    after = pa.array(list(reversed(ids)), pa.large_string()).slice(50, 700)
    found = align_ids(before, after)
    assert found.tolist() == _expected(before, after.cast(pa.string()))
    assert (found >= 0).sum() == 450  # ids 250…699 are in both
