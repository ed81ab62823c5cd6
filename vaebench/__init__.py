"""vaebench: benchmark and evaluation suite for VAE posterior families and gradient estimators."""

from importlib.metadata import PackageNotFoundError, version

from . import ops

try:
    __version__ = version("vaebench")
except PackageNotFoundError:  # a source checkout that is not installed
    __version__ = "0.1.0+src"

__all__ = ["__version__", "ops"]
