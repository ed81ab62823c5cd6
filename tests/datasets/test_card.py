import json

import pytest

from vaebench import datasets
from vaebench.datasets import DatasetCard, FileSpec, card


def _card(**kw):
    base = dict(
        name="toy",
        title="Toy",
        description="A toy.",
        sizes={"train": 3, "valid": 1, "test": 2},
        split_protocol="first 3",
        preprocessing="none",
        likelihood="bernoulli",
        event_shape=(1, 2, 3),
        values="{0, 1}",
        citation="Someone 2024",
        files=(
            FileSpec("a.gz", ("https://x/a.gz",), sha256="ab" * 32),
            FileSpec("b.mat", ("https://x/b.mat",)),
        ),
        notes=("b.mat checksum unverified",),
    )
    return DatasetCard(**{**base, **kw})


def test_num_dims_is_the_event_size():
    assert _card().num_dims == 6
    assert card("cifar10").num_dims == 3072  # bits/dim = NLL / (3072 ln 2)
    assert card("frey_faces").num_dims == 560


def test_as_dict_is_json_and_complete():
    d = _card().as_dict()
    assert json.loads(json.dumps(d)) == d
    assert d["event_shape"] == [1, 2, 3] and d["num_dims"] == 6
    assert d["files"][0]["sha256"] == "ab" * 32 and d["files"][1]["sha256"] is None
    assert set(d) >= {
        "name",
        "sizes",
        "split_protocol",
        "preprocessing",
        "likelihood",
        "citation",
        "files",
    }


def test_render_shows_sizes_checksums_and_unverified_files():
    text = _card().render()
    assert text.splitlines()[0] == "toy: Toy"
    assert "train 3 / valid 1 / test 2" in text
    assert f"sha256 {'ab' * 32}" in text
    assert "b.mat (checksum unverified (no public source found))" in text
    assert "note:" in text and "cite:" in text


def test_every_registered_card_renders_and_serializes():
    from vaebench.datasets import DATASETS

    for entry in DATASETS:
        c = entry.obj.card
        assert c.render().startswith(f"{c.name}: ")
        json.dumps(c.as_dict())


def test_the_old_name_of_the_likelihood_literal_still_imports_with_a_warning():
    with pytest.warns(DeprecationWarning, match="vaebench.datasets.LikelihoodName"):
        assert datasets.Likelihood is datasets.LikelihoodName
