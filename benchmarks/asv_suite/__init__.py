"""The asv suite of vaebench (asv needs a package; the pytest-benchmark files beside it are scripts)."""
