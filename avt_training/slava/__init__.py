"""SLAVA training: the frozen-tower feature cache (`cache`, `features`), training tensors (`data`), options
(`config`), loop parts (`parts`) and the accelerate loop (`train.pretrain_slava`). Clip decoding and caption kinds,
shared with evaluation, live in `avt_data`."""
