"""cephaloinit: the PID 1 supervisor of the CephaloProxy image."""

__version__ = "0.1.0"
