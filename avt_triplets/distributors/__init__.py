"""Where the generation stages run: ``local`` (one process plus decode workers), ``accelerate`` (processes
``rank::world`` of a launcher), ``ray`` (a Ray Data pipeline over a cluster). Each one drives the same
stages (:mod:`avt_triplets.stages`); :mod:`avt_triplets.pipeline` picks one.
"""
