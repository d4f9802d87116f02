"""`pipeline("audio-visual-classification", model=FINETUNED, trust_remote_code=True)`: a clip's audio and frames ->
its classes, the way the official fine-tuning evaluates (each frame with the clip's audio, outputs averaged).

A fine-tuned `LGCavMaeForAudioVisualClassification` saves this file next to its weights and names it in
`config.custom_pipelines` (transformers' custom-pipeline mechanism), so the task works from the Hub without our
package. Only `transformers`, `torch` and `numpy` are imported here: the file runs as Hub remote code.

```python
from transformers import pipeline

classify = pipeline("audio-visual-classification", model="user/lgcavmae-vggsound", trust_remote_code=True)
classify({"audio": waveform_16k, "frames": [frame_1, frame_2]}, top_k=3)  # [{"label": ..., "score": ...}, ...]
classify({"audio": {"array": waveform, "sampling_rate": 44100}})  # audio only: the official missing-visual mode
```
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Pipeline

TASK = "audio-visual-classification"


class LGCavMaeAudioVisualClassificationPipeline(Pipeline):
    """Inputs: a dict with `audio` (a 1-D waveform, or `{"array", "sampling_rate"}` as `datasets` decodes it) and/or
    `frames` (one image or a list of PIL images / arrays); `sampling_rate` when the waveform is not 16 kHz. Several
    frames are predicted with the same audio and their probabilities averaged (official multi-frame evaluation). A
    missing modality uses the model's official missing-modality mode. Returns the `top_k` classes with scores
    (softmax, or sigmoid for a multi-label model)."""

    _load_processor = True
    _load_image_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def _sanitize_parameters(self, top_k: int | None = None, function_to_apply: str | None = None, **kwargs):
        postprocess: dict[str, Any] = {}
        if top_k is not None:
            postprocess["top_k"] = top_k
        if function_to_apply is not None:
            postprocess["function_to_apply"] = function_to_apply
        return {}, {}, postprocess

    def preprocess(self, inputs: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(inputs, dict) or not ({"audio", "frames"} & set(inputs)):
            raise ValueError(f"{TASK}: pass a dict with `audio` and/or `frames`, got {type(inputs).__name__}")
        audio, frames = inputs.get("audio"), inputs.get("frames")
        if frames is not None and not isinstance(frames, list | tuple):
            frames = [frames]
        copies = len(frames) if frames else 1
        model_inputs = dict(
            self.processor(
                audio=[audio] * copies if audio is not None else None,
                images=list(frames) if frames else None,
                sampling_rate=inputs.get("sampling_rate", None if isinstance(audio, dict) else 16000),
                return_tensors="pt",
            )
        )
        model_inputs["classifier_mode"] = self.model.inference_mode(
            has_audio=audio is not None, has_visual=bool(frames)
        )
        return model_inputs

    def _forward(self, model_inputs: dict[str, Any]) -> dict[str, torch.Tensor]:
        dtype = self.model.dtype
        values = {
            k: v.to(dtype) if torch.is_tensor(v) and v.is_floating_point() else v
            for k, v in model_inputs.items()
        }
        return {"logits": self.model(**values).logits}

    def postprocess(self, model_outputs, top_k: int = 5, function_to_apply: str | None = None):
        logits = model_outputs["logits"].float()
        if function_to_apply is None:
            multi_label = self.model.config.problem_type == "multi_label_classification"
            function_to_apply = "sigmoid" if multi_label else "softmax"
        if function_to_apply == "sigmoid":
            scores = logits.sigmoid()
        elif function_to_apply == "softmax":
            scores = logits.softmax(-1)
        else:
            scores = logits
        scores = scores.mean(dim=0)  # frames of one clip
        top_k = min(top_k, scores.shape[-1])
        best = scores.topk(top_k)
        labels = self.model.config.id2label
        return [
            {"label": labels[int(index)], "score": float(score)}
            for score, index in zip(best.values, best.indices)
        ]


PIPELINE_CONFIG = {
    TASK: {
        "impl": f"pipeline_lgcavmae.{LGCavMaeAudioVisualClassificationPipeline.__name__}",
        "pt": ["AutoModelForAudioClassification"],
        "tf": [],
        "type": "multimodal",
    }
}
