"""The `Fingerprint` protocol: both kinds of fingerprint provide it, and the index refuses an object
that lacks a member, naming it, before writing anything."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from framegram.errors import FramegramError
from framegram.search import VideoIndex, open_or_create
from framegram.search.basis import default_basis
from framegram.search.fingerprint import load_fingerprint
from framegram.search.fingerprint_protocol import FINGERPRINT_MEMBERS, Fingerprint, missing_members
from framegram.search.learned import LearnedFingerprint


@pytest.fixture(scope="module")
def basis():
    return default_basis("efficientnet-lite0", 5.0)


@pytest.fixture(scope="module")
def learned() -> LearnedFingerprint:
    network = {"in_dim": 16, "hidden": 8, "dims": 4}
    weights = {"layer.weight": np.ones((4, 16), np.float32)}
    return LearnedFingerprint("efficientnet-lite0;1", 5.0, 5, network, weights,
                              np.full(4, -1, np.float32), np.full(4, 2, np.float32), 0.3, "a test")


def like(fingerprint, *without: str, **replaced) -> SimpleNamespace:
    """An object with the fingerprint's protocol members (bound methods included), less `without`."""
    members = {name: getattr(fingerprint, name) for name in FINGERPRINT_MEMBERS if name not in without}
    return SimpleNamespace(**{**members, **replaced})


def test_the_protocol_lists_what_the_index_and_matcher_use():
    assert set(FINGERPRINT_MEMBERS) == {
        "kind", "encoder", "encoder_name", "fps", "dims", "digest", "summary", "threshold", "quant_min",
        "quant_range", "background", "check", "describe", "differences", "save",
    }


def test_both_kinds_of_fingerprint_satisfy_the_protocol(basis, learned, tmp_path):
    for fingerprint in (basis, learned):
        assert isinstance(fingerprint, Fingerprint)
        assert missing_members(fingerprint) == []
        fingerprint.save(tmp_path / f"{fingerprint.kind}.npz")
        assert missing_members(load_fingerprint(tmp_path / f"{fingerprint.kind}.npz")) == []
    assert not isinstance(object(), Fingerprint)


def test_the_protocol_members_suffice_to_create_an_index(basis, tmp_path):
    index = VideoIndex.create(tmp_path / "ix", like(basis))
    assert index.fingerprint.digest == basis.digest and len(index) == 0


@pytest.mark.parametrize("member", ["differences", "quant_range", "encoder_name"])
def test_an_object_missing_a_member_is_refused_by_name(basis, member, tmp_path):
    folder = tmp_path / "ix"
    named = rf"{re.escape(str(folder))}: SimpleNamespace is not a fingerprint.*lacks {member}$"
    with pytest.raises(FramegramError, match=named):
        VideoIndex.create(folder, like(basis, member))
    assert not folder.exists()  # refused before anything is written


def test_a_method_that_is_not_callable_counts_as_missing(basis, tmp_path):
    with pytest.raises(FramegramError, match="lacks save$"):
        VideoIndex.create(tmp_path / "ix", like(basis, save="not a method"))


def test_an_existing_index_refuses_an_object_missing_a_member(basis, tmp_path):
    folder = tmp_path / "ix"
    VideoIndex.create(folder, basis)
    with pytest.raises(FramegramError, match="lacks differences$"):
        open_or_create(folder, fingerprint=like(basis, "differences"))
    with pytest.raises(FramegramError, match="lacks digest, differences$"):
        VideoIndex.create(folder, like(basis, "digest", "differences"), exist_ok=True)
