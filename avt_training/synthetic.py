"""Class-correlated synthetic triplets written in the generation-output layout, built in seconds.

For the learning check, the dataloader benchmark and smoke runs: clip ``i`` of class ``k`` has a harmonic
tone at ``f_k`` (plus a weaker per-clip overtone and noise), frames filled with colour ``c_k`` and a white
shape at a random place, a text embedding ``e_k + noise`` and the label ``class_k``. Audio and frames are encoded
(WAV, JPEG) in Parquet exactly like ``avt generate`` output, so the real loading path is exercised.

``modality_captions=True`` makes audio and frames disagree by design (issue 21): clip ``i`` of audio class ``k``
shows visual class ``v != k`` (every other class in turn), its frame captions (``caption``, ``visual_caption``) and
``text_embedding`` / ``visual_text_embedding`` describe the frames (``e_v``), and it carries the columns an audio
captioner and an audio-visual captioner add: ``audio_caption`` ("a tone of pitch k", embedding ``a_k + noise`` from
other class vectors), its candidates and scores, and ``av_caption`` naming both. A text term trained on the frame
caption alone cannot align the audio; one trained on the audio caption can.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

SAMPLING_RATE = 16_000


def class_frequency(k: int, num_classes: int) -> float:
    """Tones spread log-uniformly over 250 Hz - 6 kHz: well apart on the mel scale."""
    return float(250.0 * (6000.0 / 250.0) ** (k / max(num_classes - 1, 1)))


def class_colour(k: int, num_classes: int) -> tuple[int, int, int]:
    import colorsys

    r, g, b = colorsys.hsv_to_rgb(k / num_classes, 0.9, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _tone(k: int, num_classes: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLING_RATE)) / SAMPLING_RATE
    base = class_frequency(k, num_classes)
    # harmonics spread the class over the mel axis, so a few visible MAE patches still show it
    wave = sum(
        np.sin(2 * np.pi * h * base * t + rng.uniform(0, 2 * np.pi)) / h for h in (1, 2, 3) if h * base < 7800
    )
    wave += 0.3 * np.sin(2 * np.pi * base * rng.uniform(1.4, 2.6) * t)
    wave += 0.05 * rng.standard_normal(t.shape)
    return (0.3 * wave / np.abs(wave).max()).astype(np.float32)


def _frame_jpeg(
    k: int, num_classes: int, size: int, rng: np.random.Generator, centre: tuple[int, int]
) -> bytes:
    """The class colour fills the frame (so any visible MAE patch shows it) with a white shape on top."""
    from PIL import Image, ImageDraw

    colour = np.asarray(class_colour(k, num_classes), dtype=np.int16)
    pixels = colour + rng.integers(-25, 26, size=(size, size, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    radius = size // 5
    x, y = centre
    box = (x - radius, y - radius, x + radius, y + radius)
    if k % 2 == 0:
        draw.ellipse(box, fill=(255, 255, 255))
    else:
        draw.rectangle(box, fill=(255, 255, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_synthetic_triplets(
    output_dir: str | Path,
    num_classes: int = 8,
    clips_per_class: int = 16,
    seconds: float = 2.0,
    frames_per_clip: int = 3,
    frame_size: int = 64,
    text_dim: int = 32,
    text_noise: float = 0.3,
    seed: int = 0,
    class_seed: int = 0,
    shard_size: int = 256,
    parity_label: bool = False,
    modality_captions: bool = False,
) -> Path:
    """Write ``num_classes * clips_per_class`` triplet rows to ``layout.data_path(output_dir, shard)``.

    ``load_dataset(output_dir, split="train")`` reads them back with the triplet schema. Returns the folder.
    ``class_seed`` fixes the classes' text vectors, ``seed`` the clips: two calls with the same ``class_seed``
    and different ``seed`` give a training set and a held-out set of the same classes. ``parity_label`` adds
    a second label (``even``/``odd`` class index) to every clip, for multi-label tests. ``modality_captions``: audio
    and visual content of different classes, with audio, visual and audio-visual caption columns (module docstring).
    """
    import datasets

    from avt_triplets.layout import data_path
    from avt_triplets.schema import triplet_features

    class_vectors = np.random.default_rng(class_seed).standard_normal((num_classes, text_dim))
    rng = np.random.default_rng((class_seed, seed))
    shape = (seconds, frames_per_clip, frame_size, text_noise, parity_label)
    audio_vectors = np.random.default_rng((class_seed, 1)).standard_normal((num_classes, text_dim))
    rows = []
    for k in range(num_classes):
        for i in range(clips_per_class):
            if not modality_captions:
                rows.append(_synthetic_row(k, i, num_classes, class_vectors, rng, *shape))
                continue
            v = (k + 1 + i % (num_classes - 1)) % num_classes  # never k: the frames show another class
            row = _synthetic_row(k, i, num_classes, class_vectors, rng, *shape, visual_class=v)
            rows.append(_with_audio_captions(row, k, audio_vectors, text_noise, rng))
    features = triplet_features(with_media=True, caption_kinds=("audio", "av") if modality_captions else ())
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    output_dir = Path(output_dir)
    for shard, start in enumerate(range(0, len(rows), shard_size)):
        part = datasets.Dataset.from_list(rows[start : start + shard_size], features=features)
        path = data_path(output_dir, shard)
        path.parent.mkdir(parents=True, exist_ok=True)
        part.to_parquet(str(path))
    return output_dir


def _synthetic_row(
    k: int,
    i: int,
    num_classes: int,
    class_vectors: np.ndarray,
    rng: np.random.Generator,
    seconds: float,
    frames_per_clip: int,
    frame_size: int,
    text_noise: float,
    parity_label: bool,
    visual_class: int | None = None,
) -> dict:
    """Clip ``i`` of class ``k`` as a triplet row (draws from ``rng`` in a fixed order: datasets stay the same);
    ``visual_class`` shows another class in the frames (their captions and text embedding follow the frames)."""
    from avt_triplets.selection import sample_key

    v = k if visual_class is None else visual_class
    margin = frame_size // 4
    start = rng.integers(margin, frame_size - margin, size=2)
    drift = rng.integers(-3, 4, size=2)
    frames = [
        {"bytes": _frame_jpeg(v, num_classes, frame_size, rng, tuple(start + j * drift)), "path": None}
        for j in range(frames_per_clip)
    ]
    text = _noisy_unit(class_vectors[v], text_noise, rng)
    caption = f"a {'circle' if v % 2 == 0 else 'square'} of colour {v}"
    clip_id = f"class{k:02d}/clip{i:03d}"
    return {
        "clip_id": clip_id,
        "video_path": f"{clip_id}.mp4",
        "start_s": 0.0,
        "end_s": float(seconds),
        "original_start_s": 0.0,
        "audio": {"array": _tone(k, num_classes, seconds, rng), "sampling_rate": SAMPLING_RATE},
        "frames": frames,
        "frame_times_s": [float(j) for j in range(frames_per_clip)],
        "captions": [caption] * frames_per_clip,
        "caption_scores": [0.5] * frames_per_clip,
        "caption": caption,
        "caption_index": 0,
        "clap_score": 0.5,
        "text_embedding": text.tolist(),
        "visual_captions": [caption] * frames_per_clip,
        "visual_caption": caption,
        "visual_text_embedding": text.tolist(),
        "labels": [f"class_{k}"] + (["even" if k % 2 == 0 else "odd"] if parity_label else []),
        "sample_key": sample_key(clip_id),
    }


def _noisy_unit(vector: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    """``vector + noise``, L2-normalised as the stored CLAP text embeddings are."""
    text = vector + noise * rng.standard_normal(vector.shape[0])
    return (text / np.linalg.norm(text)).astype(np.float32)


def _with_audio_captions(
    row: dict, k: int, audio_vectors: np.ndarray, text_noise: float, rng: np.random.Generator
) -> dict:
    """What an audio captioner (two candidates, the better one chosen) and an audio-visual captioner add to a row
    whose audio is of class ``k``."""
    audio_caption = f"a tone of pitch {k}"
    return {
        **row,
        "audio_captions": [audio_caption, "a quiet hum"],
        "audio_caption_scores": [0.6, 0.1],
        "audio_caption": audio_caption,
        "audio_caption_score": 0.6,
        "audio_text_embedding": _noisy_unit(audio_vectors[k], text_noise, rng).tolist(),
        "av_captions": [f"{audio_caption} while {row['caption']} is seen"],
        "av_caption": f"{audio_caption} while {row['caption']} is seen",
    }


def write_generation_output(
    output_dir: str | Path,
    num_clips: int,
    num_classes: int = 8,
    seconds: float = 10.0,
    frames_per_clip: int = 10,
    frame_size: int = 224,
    text_dim: int = 1024,
    shard_size: int = 256,
    seed: int = 0,
) -> Path:
    """``num_clips`` synthetic clips written as ``avt generate`` writes them: through its shard writer (its
    Parquet row-group size), with stats files and a dataset card whose configs (top/random 10, 30, 50) are row
    filters. Clips come class by class, as a generation over a class-per-folder input (Kinetics) gives them;
    scores spread so the top-k configs are real selections. Rows are streamed: memory stays one row group.
    """
    from avt_triplets import dataset_card
    from avt_triplets.shards import ShardWriter

    output_dir = Path(output_dir)
    class_vectors = np.random.default_rng(0).standard_normal((num_classes, text_dim))
    rng = np.random.default_rng(seed)
    per_class = -(-num_clips // num_classes)
    clips = [(k, i) for k in range(num_classes) for i in range(per_class)][:num_clips]
    for shard, start in enumerate(range(0, len(clips), shard_size)):
        writer = ShardWriter(output_dir, shard)
        for k, i in clips[start : start + shard_size]:
            row = _synthetic_row(
                k, i, num_classes, class_vectors, rng, seconds, frames_per_clip, frame_size, 0.3, False
            )
            row["clap_score"] = float(rng.uniform(0.0, 0.6))
            writer.write_row(row)
        writer.commit({"clips_written": writer.rows})
    dataset_card.write_dataset_card(output_dir)
    return output_dir
