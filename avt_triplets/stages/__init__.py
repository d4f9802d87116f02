"""The stages of triplet generation, the way video2dataset reads (see docs/architecture.md):

- :mod:`~avt_triplets.stages.reader`: INPUT -> clip specs -> shards -> chunks, and which of them are left to do;
- :mod:`~avt_triplets.stages.worker`: one chunk of decoded clips -> captions -> scores -> rows or failures;
- :mod:`~avt_triplets.stages.writer`: shard files (data, failures, stats last), manifest, card.

Distributors (:mod:`avt_triplets.distributors`) decide where the stages run; :mod:`avt_triplets.pipeline` picks one.
"""
