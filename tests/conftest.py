"""Shared test set-up. The ``mallcore`` fixture comes from ``mallcore.testing``."""
