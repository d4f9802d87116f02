"""An independent functional re-implementation of the official CAV-MAE forward, for parity tests.

Written from /work/shared/reference/cavmae.md (the spec of `YuanGongND/cav-mae` `src/models/cav_mae.py`), not from
our model: it works on a plain dict of tensors with the *official* key names (`blocks_a.0.norm1.weight`, ...) and
numpy for the sin-cos table, so agreement with our classes checks the architecture, key conversion, masking, loss
math and token orders at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class OfficialDims:
    """Constructor arguments of `CAVMAE` / `CAVMAEFT` that shape the state dict."""

    embed_dim: int = 768
    num_heads: int = 12
    modality_specific_depth: int = 11
    shared_depth: int = 1  # official: 12 - modality_specific_depth
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mlp_ratio: float = 4.0
    audio_length: int = 1024
    img_size: int = 224
    patch: int = 16
    in_chans: int = 3
    mel_bins: int = 128
    label_dim: int | None = None  # CAVMAEFT head

    @property
    def audio_grid(self) -> tuple[int, int]:
        return self.mel_bins // self.patch, self.audio_length // self.patch

    @property
    def num_audio(self) -> int:
        return self.audio_grid[0] * self.audio_grid[1]

    @property
    def num_visual(self) -> int:
        return (self.img_size // self.patch) ** 2


# --------------------------------------------------------------------------------------------------------------------
# state-dict layout


def official_shapes(dims: OfficialDims, pretraining: bool = True) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the official state dict, in the official registration order."""
    d, dd, p = dims.embed_dim, dims.decoder_embed_dim, dims.patch
    hidden, dec_hidden = int(d * dims.mlp_ratio), int(dd * dims.mlp_ratio)
    shapes: dict[str, tuple[int, ...]] = {
        "modality_a": (1, 1, d),
        "modality_v": (1, 1, d),
        "pos_embed_a": (1, dims.num_audio, d),
        "pos_embed_v": (1, dims.num_visual, d),
    }
    if pretraining:
        shapes.update(
            {
                "mask_token": (1, 1, dd),
                "decoder_modality_a": (1, 1, dd),
                "decoder_modality_v": (1, 1, dd),
                "decoder_pos_embed_a": (1, dims.num_audio, dd),
                "decoder_pos_embed_v": (1, dims.num_visual, dd),
            }
        )
    shapes.update(
        {
            "patch_embed_a.proj.weight": (d, 1, p, p),
            "patch_embed_a.proj.bias": (d,),
            "patch_embed_v.proj.weight": (d, dims.in_chans, p, p),
            "patch_embed_v.proj.bias": (d,),
        }
    )

    def block(prefix: str, width: int, mlp: int) -> None:
        for norm in ("norm1", "norm1_a", "norm1_v"):
            shapes[f"{prefix}.{norm}.weight"] = (width,)
            shapes[f"{prefix}.{norm}.bias"] = (width,)
        shapes[f"{prefix}.attn.qkv.weight"] = (3 * width, width)
        shapes[f"{prefix}.attn.qkv.bias"] = (3 * width,)
        shapes[f"{prefix}.attn.proj.weight"] = (width, width)
        shapes[f"{prefix}.attn.proj.bias"] = (width,)
        for norm in ("norm2", "norm2_a", "norm2_v"):
            shapes[f"{prefix}.{norm}.weight"] = (width,)
            shapes[f"{prefix}.{norm}.bias"] = (width,)
        shapes[f"{prefix}.mlp.fc1.weight"] = (mlp, width)
        shapes[f"{prefix}.mlp.fc1.bias"] = (mlp,)
        shapes[f"{prefix}.mlp.fc2.weight"] = (width, mlp)
        shapes[f"{prefix}.mlp.fc2.bias"] = (width,)

    for group, depth in (
        ("blocks_a", dims.modality_specific_depth),
        ("blocks_v", dims.modality_specific_depth),
        ("blocks_u", dims.shared_depth),
    ):
        for i in range(depth):
            block(f"{group}.{i}", d, hidden)
    for name in ("norm_a", "norm_v", "norm"):
        shapes[f"{name}.weight"] = (d,)
        shapes[f"{name}.bias"] = (d,)
    if pretraining:
        shapes["decoder_embed.weight"] = (dd, d)
        shapes["decoder_embed.bias"] = (dd,)
        for i in range(dims.decoder_depth):
            block(f"decoder_blocks.{i}", dd, dec_hidden)
        shapes["decoder_norm.weight"] = (dd,)
        shapes["decoder_norm.bias"] = (dd,)
        shapes["decoder_pred_a.weight"] = (p * p, dd)
        shapes["decoder_pred_a.bias"] = (p * p,)
        shapes["decoder_pred_v.weight"] = (p * p * dims.in_chans, dd)
        shapes["decoder_pred_v.bias"] = (p * p * dims.in_chans,)
    if dims.label_dim is not None:
        shapes["mlp_head.0.weight"] = (d,)
        shapes["mlp_head.0.bias"] = (d,)
        shapes["mlp_head.1.weight"] = (dims.label_dim, d)
        shapes["mlp_head.1.bias"] = (dims.label_dim,)
    return shapes


def random_official_state_dict(
    dims: OfficialDims, pretraining: bool = True, seed: int = 0, data_parallel: bool = True
) -> dict[str, torch.Tensor]:
    """Random values with the official layout (LayerNorm weights near 1, other tensors small), `module.` prefixed
    like the released DataParallel checkpoints. Every tensor differs, so a wrong mapping changes the outputs."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in official_shapes(dims, pretraining).items():
        value = torch.randn(shape, generator=generator)
        is_norm = key.count(".") >= 1 and "norm" in key.split(".")[-2] or key.startswith("mlp_head.0")
        if is_norm and key.endswith(".weight"):
            value = 1.0 + 0.1 * value
        elif key.startswith(("pos_embed", "decoder_pos_embed")):
            value = 0.5 * value
        else:
            fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
            value = value / max(fan_in, 1) ** 0.5
        state[("module." if data_parallel else "") + key] = value
    return state


# --------------------------------------------------------------------------------------------------------------------
# sin-cos table, the numpy way of `src/models/pos_embed.py`


def sincos_table(embed_dim: int, grid_h: int, grid_w: int) -> np.ndarray:
    grid = np.meshgrid(np.arange(grid_w, dtype=np.float32), np.arange(grid_h, dtype=np.float32))  # w first

    def one_d(dim: int, positions: np.ndarray) -> np.ndarray:
        omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
        omega = 1.0 / 10000**omega
        angles = np.einsum("m,d->md", positions.reshape(-1), omega)
        return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)

    return np.concatenate([one_d(embed_dim // 2, grid[0]), one_d(embed_dim // 2, grid[1])], axis=1)


# --------------------------------------------------------------------------------------------------------------------
# forward


class OfficialCavMae:
    """The official forward passes on a state dict (keys without `module.`)."""

    def __init__(self, state_dict: dict[str, torch.Tensor], dims: OfficialDims):
        self.sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
        self.dims = dims

    def _ln(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.sd[f"{name}.weight"], self.sd[f"{name}.bias"], eps=1e-5)

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return x @ self.sd[f"{name}.weight"].t() + self.sd[f"{name}.bias"]

    def block(self, x: torch.Tensor, prefix: str, heads: int, modality: str | None = None) -> torch.Tensor:
        suffix = {None: "", "a": "_a", "v": "_v"}[modality]
        h = self._ln(x, f"{prefix}.norm1{suffix}")
        batch, length, width = h.shape
        qkv = self._linear(h, f"{prefix}.attn.qkv").reshape(batch, length, 3, heads, width // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * (width // heads) ** -0.5
        attn = attn.softmax(dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(batch, length, width)
        x = x + self._linear(out, f"{prefix}.attn.proj")
        h = self._ln(x, f"{prefix}.norm2{suffix}")
        h = self._linear(F.gelu(self._linear(h, f"{prefix}.mlp.fc1")), f"{prefix}.mlp.fc2")
        return x + h

    def _patch(self, x: torch.Tensor, name: str) -> torch.Tensor:
        w, b = self.sd[f"{name}.proj.weight"], self.sd[f"{name}.proj.bias"]
        return F.conv2d(x, w, b, stride=self.dims.patch).flatten(2).transpose(1, 2)

    def embed(self, a: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = a.unsqueeze(1).transpose(2, 3)
        a = self._patch(a, "patch_embed_a")
        a = a + self.sd["pos_embed_a"]
        a = a + self.sd["modality_a"]
        v = self._patch(v, "patch_embed_v")
        v = v + self.sd["pos_embed_v"]
        v = v + self.sd["modality_v"]
        return a, v

    @staticmethod
    def random_masking_unstructured(x: torch.Tensor, ratio: float, noise: torch.Tensor | None = None):
        n, length, d = x.shape
        len_keep = int(length * (1 - ratio))
        if noise is None:
            noise = torch.rand(n, length, device=x.device)
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, 1, ids_keep.unsqueeze(-1).repeat(1, 1, d))
        mask = torch.ones([n, length], device=x.device)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        return x_masked, mask, ids_restore

    def _blocks(self, x: torch.Tensor, group: str, depth: int, modality: str | None = None) -> torch.Tensor:
        for i in range(depth):
            x = self.block(x, f"{group}.{i}", self.dims.num_heads, modality)
        return x

    def forward_encoder(self, a, v, ratio_a=0.75, ratio_v=0.75, noise_a=None, noise_v=None):
        dims = self.dims
        a, v = self.embed(a, v)
        a, mask_a, ids_restore_a = self.random_masking_unstructured(a, ratio_a, noise_a)
        v, mask_v, ids_restore_v = self.random_masking_unstructured(v, ratio_v, noise_v)
        a = self._blocks(a, "blocks_a", dims.modality_specific_depth)
        v = self._blocks(v, "blocks_v", dims.modality_specific_depth)
        x = torch.cat((a, v), dim=1)
        x = self._blocks(x, "blocks_u", dims.shared_depth)
        x = self._ln(x, "norm")
        # The official loop is `for blk in blocks_u: ca = blk(a, 'a')` (same input to every layer).
        for i in range(dims.shared_depth):
            ca = self.block(a, f"blocks_u.{i}", dims.num_heads, "a")
        ca = self._ln(ca, "norm_a")
        for i in range(dims.shared_depth):
            cv = self.block(v, f"blocks_u.{i}", dims.num_heads, "v")
        cv = self._ln(cv, "norm_v")
        return x, mask_a, ids_restore_a, mask_v, ids_restore_v, ca, cv

    def forward_decoder(self, x, mask_a, ids_restore_a, mask_v, ids_restore_v):
        dims, n_a = self.dims, self.dims.num_audio
        x = self._linear(x, "decoder_embed")
        n_mask_a, n_mask_v = int(mask_a[0].sum()), int(mask_v[0].sum())
        mask_token = self.sd["mask_token"]
        a_ = torch.cat([x[:, : n_a - n_mask_a], mask_token.repeat(x.shape[0], n_mask_a, 1)], dim=1)
        a_ = torch.gather(a_, 1, ids_restore_a.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        v_ = torch.cat([x[:, n_a - n_mask_a :], mask_token.repeat(x.shape[0], n_mask_v, 1)], dim=1)
        v_ = torch.gather(v_, 1, ids_restore_v.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([a_, v_], dim=1)
        x = x + torch.cat([self.sd["decoder_pos_embed_a"], self.sd["decoder_pos_embed_v"]], dim=1)
        x = x.clone()
        x[:, :n_a] = x[:, :n_a] + self.sd["decoder_modality_a"]
        x[:, n_a:] = x[:, n_a:] + self.sd["decoder_modality_v"]
        for i in range(dims.decoder_depth):
            x = self.block(x, f"decoder_blocks.{i}", dims.decoder_num_heads)
        x = self._ln(x, "decoder_norm")
        return self._linear(x[:, :n_a], "decoder_pred_a"), self._linear(x[:, n_a:], "decoder_pred_v")

    @staticmethod
    def patchify(imgs: torch.Tensor, c: int, h: int, w: int, p: int = 16) -> torch.Tensor:
        x = imgs.reshape(imgs.shape[0], c, h, p, w, p)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(imgs.shape[0], h * w, p**2 * c)

    def forward_mae_loss(self, inputs, pred, mask, modality, norm_pix_loss=True):
        p = self.dims.patch
        if modality == "a":
            inputs = inputs.unsqueeze(1).transpose(2, 3)
            target = self.patchify(inputs, 1, inputs.shape[2] // p, inputs.shape[3] // p, p)
        else:
            target = self.patchify(inputs, 3, inputs.shape[2] // p, inputs.shape[3] // p, p)
        if norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        loss = ((pred - target) ** 2).mean(dim=-1)
        return (loss * mask).sum() / mask.sum()

    @staticmethod
    def forward_contrastive(audio_rep, video_rep, bidirect_contrast=False):
        audio_rep = F.normalize(audio_rep, dim=-1)
        video_rep = F.normalize(video_rep, dim=-1)
        total = torch.mm(audio_rep, video_rep.t()) / 0.05
        arange = torch.arange(total.shape[0])
        nce = -torch.mean(torch.diag(F.log_softmax(total, dim=0)))
        c_acc = (torch.argmax(F.softmax(total, dim=0), dim=0) == arange).sum() / total.shape[0]
        if bidirect_contrast:
            nce_2 = -torch.mean(torch.diag(F.log_softmax(total.t(), dim=0)))
            c_acc_2 = (torch.argmax(F.softmax(total.t(), dim=0), dim=0) == arange).sum() / total.shape[0]
            nce, c_acc = (nce + nce_2) / 2, (c_acc + c_acc_2) / 2
        return nce, c_acc

    def forward(
        self,
        audio,
        imgs,
        noise_a=None,
        noise_v=None,
        mae_loss_weight=1.0,
        contrast_loss_weight=0.01,
        bidirect_contrast=False,
        ratio_a=0.75,
        ratio_v=0.75,
    ):
        """Returns the official 8-tuple `(loss, loss_mae, loss_mae_a, loss_mae_v, loss_c, mask_a, mask_v, c_acc)`
        plus the predictions and pooled features for further checks."""
        latent, mask_a, ids_a, mask_v, ids_v, ca, cv = self.forward_encoder(
            audio, imgs, ratio_a, ratio_v, noise_a, noise_v
        )
        pred_a, pred_v = self.forward_decoder(latent, mask_a, ids_a, mask_v, ids_v)
        loss_mae_a = self.forward_mae_loss(audio, pred_a, mask_a, "a")
        loss_mae_v = self.forward_mae_loss(imgs, pred_v, mask_v, "v")
        loss_mae = mae_loss_weight * (loss_mae_a + loss_mae_v)
        nce, c_acc = self.forward_contrastive(ca.mean(dim=1), cv.mean(dim=1), bidirect_contrast)
        loss_c = contrast_loss_weight * nce
        extras = {
            "pred_a": pred_a,
            "pred_v": pred_v,
            "audio_rep": ca.mean(dim=1),
            "video_rep": cv.mean(dim=1),
        }
        return (loss_mae + loss_c, loss_mae, loss_mae_a, loss_mae_v, loss_c, mask_a, mask_v, c_acc), extras

    def forward_feat(self, a, v):
        dims = self.dims
        a, v = self.embed(a, v)
        a = self._blocks(a, "blocks_a", dims.modality_specific_depth)
        v = self._blocks(v, "blocks_v", dims.modality_specific_depth)
        a = self._ln(self._blocks(a, "blocks_u", dims.shared_depth, "a"), "norm_a")
        v = self._ln(self._blocks(v, "blocks_u", dims.shared_depth, "v"), "norm_v")
        return a, v

    def forward_finetune(self, a, v, mode: str) -> torch.Tensor:
        """`CAVMAEFT.forward(a, v, mode)` (all five official modes)."""
        dims = self.dims
        a, v = self.embed(a, v)
        a = self._blocks(a, "blocks_a", dims.modality_specific_depth)
        v = self._blocks(v, "blocks_v", dims.modality_specific_depth)
        if mode == "multimodal":
            x = self._ln(self._blocks(torch.cat((a, v), dim=1), "blocks_u", dims.shared_depth), "norm").mean(
                dim=1
            )
        elif mode == "audioonly":
            x = self._ln(self._blocks(a, "blocks_u", dims.shared_depth, "a"), "norm_a").mean(dim=1)
        elif mode == "videoonly":
            x = self._ln(self._blocks(v, "blocks_u", dims.shared_depth, "v"), "norm_v").mean(dim=1)
        elif mode in ("missingaudioonly", "missingvideoonly"):
            tokens, tag, norm = (a, "a", "norm_a") if mode == "missingaudioonly" else (v, "v", "norm_v")
            u = self._ln(self._blocks(tokens, "blocks_u", dims.shared_depth), "norm").mean(dim=1)
            m = self._ln(self._blocks(tokens, "blocks_u", dims.shared_depth, tag), norm).mean(dim=1)
            x = (u + m) / 2
        else:
            raise ValueError(mode)
        return self._linear(self._ln(x, "mlp_head.0"), "mlp_head.1")
