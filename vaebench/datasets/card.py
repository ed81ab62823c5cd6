"""Dataset cards: what a benchmark dataset is, how it is split and preprocessed, where it
comes from, how to check its files, and whom to cite."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["DatasetCard", "FileSpec", "LikelihoodName"]

#: The observation model a dataset's protocol prescribes.
#: "bernoulli": x in {0, 1}; "categorical256" and "discretized_logistic": 8-bit pixels
#: k = 0..255 scaled to x = k / 255 (k = round(255 x)), the convention of
#: vaebench.models.likelihoods; "gaussian": real-valued x.
LikelihoodName = Literal["bernoulli", "categorical256", "discretized_logistic", "gaussian"]


@dataclass(frozen=True)
class FileSpec:
    """One published file: its name, the URLs it is served from, and its known checksums.

    `sha256`/`md5`/`size` are None where no public source could be found to verify them;
    `checksum_source` says where the known ones come from.
    """

    name: str
    urls: tuple[str, ...]
    sha256: str | None = None
    md5: str | None = None
    size: int | None = None
    checksum_source: str = ""

    @property
    def verifiable(self) -> bool:
        return self.sha256 is not None or self.md5 is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "urls": list(self.urls),
            "sha256": self.sha256,
            "md5": self.md5,
            "size": self.size,
            "checksum_source": self.checksum_source or None,
        }


@dataclass(frozen=True)
class DatasetCard:
    """Everything a user must know to report a number on a dataset.

    Attributes:
        name: the registry name (`vaebench.datasets.load(name)`).
        title: the dataset's usual name.
        description: one paragraph on what the data is.
        sizes: examples per split, keys "train", "valid", "test".
        split_protocol: how the splits are formed, with the seeds.
        preprocessing: scaling and binarization, with the seeds.
        likelihood: the observation model the protocol prescribes.
        event_shape: the shape of one example, (C, H, W) for images.
        values: what the stored numbers are (e.g. "{0, 1} float", "k / 255 for 8-bit k").
        files: the published files the loader reads (empty for embedded/synthetic data).
        source: "download" (read from the data directory, downloaded when possible),
            "embedded" (shipped inside an installed package), or "synthetic" (generated).
        citation: how to cite the dataset.
        protocol_source: the code/paper the protocol follows.
        notes: caveats, e.g. checksums that could not be verified.
    """

    name: str
    title: str
    description: str
    sizes: Mapping[str, int]
    split_protocol: str
    preprocessing: str
    likelihood: LikelihoodName
    event_shape: tuple[int, ...]
    values: str
    citation: str
    source: Literal["download", "embedded", "synthetic"] = "download"
    files: tuple[FileSpec, ...] = ()
    protocol_source: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def num_dims(self) -> int:
        """The number of dimensions of one example (for bits/dim: NLL / (num_dims ln 2))."""
        n = 1
        for s in self.event_shape:
            n *= s
        return n

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serializable dict of the card (for `vaebench datasets --json`)."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "sizes": dict(self.sizes),
            "split_protocol": self.split_protocol,
            "preprocessing": self.preprocessing,
            "likelihood": self.likelihood,
            "event_shape": list(self.event_shape),
            "num_dims": self.num_dims,
            "values": self.values,
            "source": self.source,
            "files": [f.as_dict() for f in self.files],
            "citation": self.citation,
            "protocol_source": self.protocol_source or None,
            "notes": list(self.notes),
        }

    def render(self) -> str:
        """The card as plain text, one field per line (for `vaebench datasets <name>`)."""
        sizes = " / ".join(f"{k} {v:,}" for k, v in self.sizes.items())
        lines = [
            f"{self.name}: {self.title}",
            f"  {self.description}",
            f"  sizes:         {sizes}",
            f"  split:         {self.split_protocol}",
            f"  preprocessing: {self.preprocessing}",
            f"  likelihood:    {self.likelihood}",
            f"  event shape:   {tuple(self.event_shape)} ({self.num_dims} dims)",
            f"  values:        {self.values}",
            f"  source:        {self.source}",
        ]
        if self.protocol_source:
            lines.append(f"  protocol from: {self.protocol_source}")
        for f in self.files:
            if f.sha256:
                check = f"sha256 {f.sha256}"
            elif f.md5:
                check = f"md5 {f.md5}"
            else:
                check = "checksum unverified (no public source found)"
            lines.append(f"  file:          {f.name} ({check}) <- {f.urls[0]}")
        lines.append(f"  cite:          {self.citation}")
        lines.extend(f"  note:          {n}" for n in self.notes)
        return "\n".join(lines)
