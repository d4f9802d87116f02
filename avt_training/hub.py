"""Pushing training outputs to the Hugging Face Hub with ``huggingface_hub``, for both training commands.

``end`` pushes the final model folder once; ``every_save`` also uploads each save in the background as it is written
(training does not wait for the upload): LG-CAV-MAE's checkpoints to ``checkpoints/<name>``, SLAVA's best model
(rewritten in place after each better validation) to ``best/`` as a snapshot of its files. The token goes to
``HfApi`` only, never into a file (``transformers.Trainer`` would pickle it into every ``training_args.bin``).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from pathlib import Path

from transformers import TrainerCallback

from avt_core.run_config import CONFIG_FILE

logger = logging.getLogger(__name__)


class HubPusher:
    """One model repo, created on first use; uploads are commits made with ``upload_folder``."""

    def __init__(self, repo_id: str, token: str | None = None, private: bool | None = None):
        from huggingface_hub import HfApi

        self.api = HfApi(token=token)
        self.repo_id = self.api.create_repo(repo_id, private=private, exist_ok=True).repo_id
        self.pending: list[Future] = []
        self.snapshots: dict[str, Future] = {}  # path in the repo -> its latest snapshot upload

    @classmethod
    def from_options(cls, options, is_main_process: bool) -> HubPusher | None:
        """The pusher of a training command's ``--push-to-hub`` / ``--hub-token`` / ``--hub-private`` on the main
        process (None elsewhere or without a repo). The repo is created now, so a bad token or name stops the run
        before any training."""
        if not (options.push_to_hub and is_main_process):
            return None
        return cls(options.push_to_hub, token=options.hub_token, private=options.hub_private or None)

    def push_checkpoint(self, checkpoint_dir: Path) -> None:
        future = self.api.upload_folder(
            repo_id=self.repo_id,
            folder_path=str(checkpoint_dir),
            path_in_repo=f"checkpoints/{checkpoint_dir.name}",
            commit_message=f"Training checkpoint {checkpoint_dir.name}",
            run_as_future=True,
        )
        self.pending.append(future)

    def push_snapshot(self, folder: Path, path_in_repo: str, commit_message: str) -> None:
        """Upload `folder` as it is now, in the background. Its files are read at once, so the folder may be
        rewritten while the upload waits; an older snapshot of the same path that has not started is dropped (the
        newer one replaces it)."""
        from huggingface_hub import CommitOperationAdd

        operations = [
            CommitOperationAdd(
                path_in_repo=f"{path_in_repo}/{path.relative_to(folder).as_posix()}",
                path_or_fileobj=path.read_bytes(),
            )
            for path in sorted(folder.rglob("*"))
            if path.is_file() and not path.name.startswith(".")
        ]
        earlier = self.snapshots.get(path_in_repo)
        if earlier is not None and earlier.cancel():
            self.pending.remove(earlier)
        future = self.api.create_commit(
            repo_id=self.repo_id, operations=operations, commit_message=commit_message, run_as_future=True
        )
        self.snapshots[path_in_repo] = future
        self.pending.append(future)

    def push_model(
        self,
        model_dir: Path,
        commit_message: str = "LG-CAV-MAE pretraining: final model",
        ignore_patterns: tuple[str, ...] = (),
    ) -> str:
        """Upload the final model folder (without local checkpoints, TensorBoard logs, the run config, which names
        local dataset and output paths, and `ignore_patterns`); waits for earlier uploads. A card already in the
        repo is updated in place, not replaced."""
        self.wait()
        self.update_repo_card(model_dir)
        info = self.api.upload_folder(
            repo_id=self.repo_id,
            folder_path=str(model_dir),
            commit_message=commit_message,
            ignore_patterns=["checkpoints/*", "checkpoint-*", ".*", "runs/*", CONFIG_FILE, *ignore_patterns],
        )
        logger.info("pushed %s to %s", model_dir, self.repo_id)
        return str(getattr(info, "commit_url", self.repo_id))

    def update_repo_card(self, model_dir: Path) -> None:
        """Bring the repo's ``README.md`` into the folder's card (avt's metadata and section from the folder's, the
        rest as the repo has it), so the push updates the repo's card instead of replacing it."""
        from huggingface_hub import ModelCard

        from avt_triplets.cards import carry_over

        card = Path(model_dir) / "README.md"
        if not card.is_file() or not self.api.file_exists(self.repo_id, "README.md"):
            return
        remote = Path(self.api.hf_hub_download(self.repo_id, "README.md")).read_text(encoding="utf-8")
        carry_over(remote, card.read_text(encoding="utf-8"), ModelCard).save(card)

    def wait(self) -> None:
        for future in self.pending:
            try:
                future.result()
            except Exception as error:  # noqa: BLE001 - a failed checkpoint upload must not lose the run
                logger.error("checkpoint upload to %s failed: %s", self.repo_id, error)
        self.pending.clear()
        self.snapshots.clear()


class HubCheckpointCallback(TrainerCallback):
    """``every_save`` for ``transformers.Trainer``: each ``checkpoint-N`` it saves is uploaded in the background."""

    def __init__(self, pusher: HubPusher):
        self.pusher = pusher

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.pusher.push_checkpoint(Path(args.output_dir) / f"checkpoint-{state.global_step}")
