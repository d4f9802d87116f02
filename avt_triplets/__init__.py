"""avt: audio-visual-text triplet generation (and the `avt` command line)."""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "load_triplets":  # imported on first use, so `avt --help` stays fast
        from avt_triplets.loading import load_triplets

        return load_triplets
    raise AttributeError(f"module 'avt_triplets' has no attribute {name!r}")
