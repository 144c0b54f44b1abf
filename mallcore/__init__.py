"""mallcore: a pluggable commerce kernel. The public API is :mod:`mallcore.kernel`."""

__version__ = "0.1.0"
