"""Adding a pretraining term is a local change: a term registered in the table (here, by a fixture) is computed by the
model's forward or by the distributed loss as its row says, weighed into the objective, logged, and printed in the run
summary, without any other file knowing it. The loss weights and temperatures are options of `avt pretrain` read
from the model config's loss settings."""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avt.cli import main
from avt_training import losses as training_losses
from avt_training.loss_options import loss_options_dataclass, model_loss_settings
from avt_training.losses import PretrainingLoss
from avt_training.pretrain import build_model_and_processor
from avt_training.pretrain_config import PretrainConfig
from avt_training.pretrain_loop import format_summary
from avt_triplets.tiny.lgcavmae import MICRO_LGCAVMAE_CONFIG
from modeling_lgcavmae import LGCavMaeConfig, LGCavMaeForPreTraining
from modeling_lgcavmae import losses_lgcavmae as losses
from modeling_lgcavmae.loss_settings_lgcavmae import LOSS_SETTINGS, LossSetting


def _spread_term(inputs):
    """A local term (no other clips needed): how far the pooled audio embeddings are from unit norm."""
    spread = (inputs.audio_embeds.float().norm(dim=-1) - 1).pow(2).mean()
    return {
        "loss_embedding_spread": spread,
        "embedding_norm": inputs.audio_embeds.float().norm(dim=-1).mean(),
    }


def _cross_text_term(inputs):
    """A global-batch term: audio against visual in the text space, with whichever InfoNCE the caller hands in."""
    SEEN_TEXT_LOSSES.append(inputs.text_loss)
    loss, accuracy = inputs.text_loss(inputs.audio_text_embeds, inputs.visual_text_embeds, 0.1, True)
    return {"loss_cross_text": loss, "cross_text_accuracy": accuracy.detach()}


EXTRA_TERMS = (
    losses.LossTerm("embedding spread", "spread_weight", False, _spread_term, ("loss_embedding_spread",), ("embedding_norm",)),
    losses.LossTerm("cross text", "cross_text_weight", True, _cross_text_term, ("loss_cross_text",), ("cross_text_accuracy",)),
)  # fmt: skip
EXTRA_VALUES = ("loss_embedding_spread", "embedding_norm", "loss_cross_text", "cross_text_accuracy")
SEEN_TEXT_LOSSES: list = []  # the InfoNCE function each call of the global-batch term was handed


@pytest.fixture
def extra_terms(monkeypatch):
    """Two more rows in the term table, for this test only."""
    monkeypatch.setattr(losses, "LOSS_TERMS", (*losses.LOSS_TERMS, *EXTRA_TERMS))
    SEEN_TEXT_LOSSES.clear()


def _model_and_batch(**overrides):
    torch.manual_seed(0)
    config = LGCavMaeConfig(**{**MICRO_LGCAVMAE_CONFIG, "text_embed_dim": 8, **overrides})
    batch = {
        "audio_values": torch.randn(4, config.audio_length, config.num_mel_bins),
        "pixel_values": torch.randn(4, 3, config.image_size, config.image_size),
        "text_embeds": torch.randn(4, 8),
        "audio_noise": torch.rand(4, config.num_audio_patches),
        "visual_noise": torch.rand(4, config.num_visual_patches),
    }
    return LGCavMaeForPreTraining(config).eval(), batch


def test_a_registered_term_reaches_the_objective_the_output_the_distributed_loss_and_the_summary(
    extra_terms, monkeypatch, tmp_path
):
    model, batch = _model_and_batch(spread_weight=0.5, cross_text_weight=0.25)
    with torch.no_grad():
        full = model(**batch)
        partial = model(**batch, return_contrastive_loss=False)
        base = losses.pretraining_objective(
            model.config, {k: v for k, v in full.items() if k not in EXTRA_VALUES}
        )
    # The objective: the old total plus each new weight times its term, in table order.
    expected = base + 0.5 * full["loss_embedding_spread"] + 0.25 * full["loss_cross_text"]
    torch.testing.assert_close(full.loss, expected, rtol=1e-6, atol=0)
    assert full["loss_embedding_spread"] > 0 and set(EXTRA_VALUES) <= set(full.keys())
    # The loop's forward computes the local term and leaves the global-batch one to the loss object.
    assert torch.equal(partial["loss_embedding_spread"], full["loss_embedding_spread"])
    assert "loss_cross_text" not in partial.keys() and partial.loss is None

    # The distributed loss, as process 0 of 2 whose all-gather (faked: this process's rows) keeps the graph.
    gathered = []
    monkeypatch.setattr(training_losses, "gather_with_grad", lambda t: gathered.append(t) or t)
    loss_fn = PretrainingLoss(model.config, "global")
    loss_fn.rank, loss_fn.world_size = 0, 2
    loss, logs = loss_fn(partial, batch["text_embeds"], model.text_temperature)
    used = SEEN_TEXT_LOSSES[-1]
    assert isinstance(used, functools.partial) and used.func is training_losses.global_text_info_nce_loss
    assert gathered  # the faked all-gather ran
    torch.testing.assert_close(logs["loss_cross_text"], full["loss_cross_text"], rtol=1e-6, atol=0)
    torch.testing.assert_close(loss, full.loss, rtol=1e-6, atol=0)
    assert set(EXTRA_VALUES) <= set(logs)

    # The run summary prints every term the window logged, the new ones included.
    last = {name: float(value) for name, value in logs.items()}
    text = format_summary(_summary(last, {f"eval_{k}": v for k, v in last.items()}), tmp_path)
    window, evaluation = (line for line in text.splitlines() if "last window" in line or "last eval" in line)
    for name in ("loss", "loss_contrastive", "visual_text_accuracy", *EXTRA_VALUES):
        assert f" {name} {last[name]:.4f}" in window
        assert f" eval_{name} {last[name]:.4f}" in evaluation


def test_a_registered_term_at_weight_zero_is_not_computed(extra_terms):
    model, batch = _model_and_batch(spread_weight=0.0, cross_text_weight=0.0)
    with torch.no_grad():
        full = model(**batch)
        loss, logs = PretrainingLoss(model.config)(
            model(**batch, return_contrastive_loss=False), batch["text_embeds"], model.text_temperature
        )
    assert not set(EXTRA_VALUES) & (set(full.keys()) | set(logs)) and SEEN_TEXT_LOSSES == []
    assert torch.equal(loss, full.loss)


def _summary(last: dict[str, float], last_eval: dict[str, float]) -> dict:
    return {
        "steps": 2, "steps_this_run": 2, "samples_seen": 8, "wall_time_s": 1.0, "samples_per_second": 8.0,
        "global_batch_size": 4, "num_processes": 1, "mixed_precision": "no", "contrastive_scope": "global",
        "decode_failures": 0, "last_logged": last, "last_eval": last_eval, "best_eval_loss": last_eval["eval_loss"],
        "best_model": "best",
    }  # fmt: skip


# -- the options --------------------------------------------------------------------------------------------------


def test_every_loss_setting_is_a_pretrain_option_with_the_model_configs_default():
    assert (
        model_loss_settings() == LOSS_SETTINGS
    )  # the file read without importing the package is this module
    fields = {f.name: f for f in dataclasses.fields(PretrainConfig)}
    for setting in LOSS_SETTINGS:
        assert fields[setting.name].default == getattr(LGCavMaeConfig(), setting.name)
        assert fields[setting.name].metadata["help"].startswith(setting.help)


def test_a_new_setting_is_a_new_option():
    extra = LossSetting("spread_weight", 0.0, "weight of the embedding spread term")
    options = loss_options_dataclass("loss", (*LOSS_SETTINGS, extra))
    assert options().spread_weight == 0.0 and options(spread_weight=0.5).spread_weight == 0.5


def test_pretrain_help_shows_every_loss_option_without_importing_torch(subprocess_env):
    script = (
        "import sys\n"
        "from avt.cli import build_parser\n"
        "parser = build_parser(only='pretrain')\n"
        "command = next(a for a in parser._actions if a.dest == 'command').choices['pretrain']\n"
        "print(command.format_help())\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'imported torch'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=subprocess_env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    for setting in LOSS_SETTINGS:
        assert "--" + setting.name.replace("_", "-") in result.stdout


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [("--text-temperature", "0", "must be positive"), ("--reconstruction-weight", "-1", "must be")],
)
def test_a_bad_loss_option_is_one_error_line(tmp_path, capsys, option, value, needle):
    argv = ["pretrain", "--dataset", str(tmp_path / "d"), "--output-dir", str(tmp_path / "o"), option, value]
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert option in err and needle in err, err


def test_the_options_reach_the_model_config_before_the_model_is_built(tmp_path: Path):
    folder = tmp_path / "config"
    LGCavMaeConfig(**{**MICRO_LGCAVMAE_CONFIG, "text_temperature_learnable": True}).save_pretrained(folder)
    config = PretrainConfig(
        datasets=["d"],
        output_dir=str(tmp_path / "o"),
        config_name_or_path=str(folder),
        text_temperature=0.07,
        contrastive_temperature=0.1,
        reconstruction_weight=0.5,
    )
    model, _ = build_model_and_processor(config, None)
    assert (model.config.contrastive_temperature, model.config.reconstruction_weight) == (0.1, 0.5)
    assert model.text_temperature.item() == pytest.approx(0.07)  # the learnt temperature starts there


def test_a_checkpoints_loss_settings_win_unless_an_option_is_given(tmp_path: Path, caplog):
    """transformers' convention: a starting checkpoint's saved values (``--model-name-or-path``, or the checkpoint
    ``--resume`` continues) are kept unless the option is given; a new model gets the options' defaults."""
    import logging

    from avt.cli import build_parser
    from avt_core.run_config import resolved_options

    saved = {"contrastive_weight": 0.2, "text_temperature": 0.09, "reconstruction_weight": 0.7}
    pretrained = tmp_path / "pretrained"
    LGCavMaeForPreTraining(LGCavMaeConfig(**{**MICRO_LGCAVMAE_CONFIG, **saved})).save_pretrained(pretrained)
    parser = build_parser(only="pretrain")

    def options(*extra: str) -> PretrainConfig:
        argv = ["pretrain", "--dataset", "d", "--output-dir", str(tmp_path / "o"), *extra]
        return PretrainConfig.from_any(parser.parse_args(argv))

    given = options("--model-name-or-path", str(pretrained), "--text-temperature", "0.07")
    with caplog.at_level(logging.INFO, logger="avt_training.loss_options"):
        model, _ = build_model_and_processor(given, None)
    assert (model.config.contrastive_weight, model.config.reconstruction_weight) == (0.2, 0.7)  # kept
    assert model.config.text_temperature == 0.07  # given
    changed = [r.getMessage() for r in caplog.records if r.name == "avt_training.loss_options"]
    assert changed == [
        "text_temperature 0.09 -> 0.07 (--text-temperature given: replaces the checkpoint's value)"
    ]
    # the run's written config (what `--config` repeats) holds the given option only: a repeat defers again
    written = resolved_options(given)
    assert written["text_temperature"] == 0.07 and "contrastive_weight" not in written
    # an option given with the checkpoint's own value changes nothing and says nothing
    caplog.clear()
    same = options("--model-name-or-path", str(pretrained), "--contrastive-weight", "0.2")
    with caplog.at_level(logging.INFO, logger="avt_training.loss_options"):
        assert build_model_and_processor(same, None)[0].config.contrastive_weight == 0.2
    assert not [r for r in caplog.records if r.name == "avt_training.loss_options"]

    defaults = {s.name: s.default for s in LOSS_SETTINGS}
    fresh = options("--config-name-or-path", str(pretrained))  # a new model: the defaults, not the file's
    model, _ = build_model_and_processor(fresh, None)
    assert {s.name: getattr(model.config, s.name) for s in LOSS_SETTINGS} == defaults

    checkpoint = tmp_path / "checkpoints" / "step-00000006"  # --resume: its config.json wins over the start's
    checkpoint.mkdir(parents=True)
    LGCavMaeConfig(**{**MICRO_LGCAVMAE_CONFIG, "contrastive_weight": 0.3}).to_json_file(
        checkpoint / "config.json"
    )
    for run in (fresh, options("--model-name-or-path", str(pretrained))):
        model, _ = build_model_and_processor(run, None, checkpoint)
        assert (model.config.contrastive_weight, model.config.text_temperature) == (
            0.3,
            defaults["text_temperature"],
        )
    assert build_model_and_processor(given, None, checkpoint)[0].config.text_temperature == 0.07
