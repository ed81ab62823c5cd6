"""Hydra configs shipped with vaebench: config.yaml and the budget group (the other groups come from the registries)."""
