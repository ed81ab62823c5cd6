import pytest
import torch

from vaebench.datasets import DATASETS, DatasetCard, card, load
from vaebench.registry import UnknownNameError

EXPECTED = {
    "caltech101_silhouettes",
    "cifar10",
    "digits28",
    "digits8",
    "fashion_mnist",
    "frey_faces",
    "linear_gaussian",
    "mnist",
    "omniglot",
    "static_mnist",
}


def test_every_benchmark_is_registered():
    assert EXPECTED <= set(DATASETS.names())


def test_unknown_name_lists_known_and_suggests():
    with pytest.raises(UnknownNameError, match="unknown dataset 'mnsit'.*static_mnist.*Did you mean 'mnist'"):
        load("mnsit")
    with pytest.raises(UnknownNameError, match="known: caltech101_silhouettes"):
        card("imagenet")


def test_unknown_option_names_it_and_the_known_ones():
    with pytest.raises(
        TypeError,
        match=r"dataset 'mnist' has no option\(s\) \['n_valid'\]; "
        r"its options: num_valid, test_seed",
    ):
        load("mnist", n_valid=10)
    with pytest.raises(TypeError, match="its options: none"):
        load("static_mnist", num_valid=10)


def test_integer_dtype_rejected():
    with pytest.raises(TypeError, match="dtype must be a floating dtype .* got torch.int64"):
        load("digits8", dtype=torch.int64)


def test_options_listing():
    assert DATASETS.get("cifar10").options() == ["num_valid"]
    assert DATASETS.get("frey_faces").options() == ["split_seed"]


@pytest.mark.parametrize("name", DATASETS.names())  # the registry, not a hand list: a new dataset is checked here
def test_card_is_complete_and_consistent(name):
    c = card(name)
    assert isinstance(c, DatasetCard) and c.name == name
    assert list(c.sizes) == ["train", "valid", "test"]
    assert c.sizes["train"] > 0 and c.sizes["test"] > 0
    assert c.likelihood in ("bernoulli", "categorical256", "discretized_logistic", "gaussian")
    assert c.title and c.description and c.split_protocol and c.preprocessing and c.citation
    if c.source == "download":
        assert c.files and all(f.urls and f.urls[0].startswith(("http://", "https://")) for f in c.files)
        # A file without a known checksum must say so on the card.
        if not all(f.verifiable for f in c.files):
            assert any("unverified" in n for n in c.notes)
    else:
        assert not c.files
    assert DATASETS.entry(name).description == c.title
