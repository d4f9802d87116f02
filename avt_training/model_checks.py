"""Is this the model the command trains? Checked from files alone, before any weights load.

``from_pretrained`` of our classes accepts any folder with a ``config.json``: a BLIP-2 folder passed as
``avt finetune --model`` loads as a random full-size LG-CAV-MAE (every weight "newly initialised") and trains it,
and a checkpoint of another architecture passed to ``--resume`` fails deep inside ``load_state_dict``. Both are the
user's mistake, so both are one line that names what was found and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avt_core.errors import UsageError


def require_model_type(name_or_path: str, expected: str, option: str) -> None:
    """Refuse ``name_or_path`` (folder or Hub id) unless its ``config.json`` says ``model_type == expected``."""
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(name_or_path)
    except (OSError, ValueError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"{option} {name_or_path}: cannot read its config.json ({first_line})") from None
    found = config.get("model_type")
    if found != expected:
        architectures = ", ".join(config.get("architectures") or []) or "no architectures listed"
        raise UsageError(
            f"{option} {name_or_path} is a {found or 'config without a model_type'} checkpoint ({architectures}), "
            f"not a {expected} one: pass a {expected} checkpoint folder or Hub id"
        )


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a safetensors file, read from its header (no tensor is loaded)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as weights:
        return {name: tuple(weights.get_slice(name).get_shape()) for name in weights.keys()}  # noqa: SIM118


def require_same_architecture(path: Path, model: Any, what: str) -> None:
    """Refuse a checkpoint whose weights (names and shapes) are not the model's: resuming it would fail in
    ``load_state_dict`` with a traceback, or worse, load part of it."""
    saved = weight_shapes(path)
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    unexpected = sorted(set(saved) - set(expected))
    missing = sorted(set(expected) - set(saved))
    reshaped = sorted(n for n in set(saved) & set(expected) if saved[n] != expected[n])
    if not (unexpected or missing or reshaped):
        return
    examples = [f"{n} {saved[n]} vs {expected[n]}" for n in reshaped[:2]] + unexpected[:1] + missing[:1]
    raise UsageError(
        f"{what} {path.parent} holds a model of another architecture than this run's ({len(reshaped)} tensor(s) of "
        f"another shape, {len(unexpected)} unknown, {len(missing)} missing; e.g. {'; '.join(examples)}): resume "
        "with the options it was trained with, or start a new --output-dir"
    )


__all__ = ["require_model_type", "require_same_architecture", "weight_shapes"]
