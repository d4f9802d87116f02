"""Tests are sealed off from the real Hub and from the user's caches (set up by tests/conftest.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest


def test_caches_and_endpoint_are_private_to_the_test_session():
    from huggingface_hub import constants

    home = Path(os.environ["HF_HOME"])
    assert not home.is_relative_to(Path.home() / ".cache")
    assert Path(constants.HF_HUB_CACHE).is_relative_to(home)
    assert constants.ENDPOINT.startswith("http://127.0.0.1:")
    assert constants.HF_HUB_DISABLE_XET


def test_hub_ids_fail_fast_offline(hf_offline_env):
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError
    from transformers import AutoConfig

    assert hf_offline_env is True
    start = time.monotonic()
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download("Salesforce/blip2-opt-2.7b", "config.json")
    with pytest.raises(OSError):
        AutoConfig.from_pretrained("llava-hf/llava-1.5-7b-hf")
    assert time.monotonic() - start < 5  # no network attempt, no retries


def test_local_hub_tests_are_online(local_hub, hf_offline_env):
    from huggingface_hub import HfApi, constants

    assert hf_offline_env is False and not constants.HF_HUB_OFFLINE
    assert HfApi().whoami()["name"] == local_hub.user
