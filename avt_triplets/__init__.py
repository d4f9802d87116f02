"""avt: audio-visual-text triplet generation (and the `avt` command line)."""

__version__ = "0.1.0"
