"""``tflopt search``: walk the deployment tree (prune -> cluster -> quantize, recovery on and
off) to the model that meets the user's goals with the least size, on this machine or a Dask
cluster. ``goals`` parses what is wanted, ``space`` what may be tried, ``strategy`` walks it,
``trial`` runs one candidate through the pass manager and ``measure`` judges it with the
evaluation API, ``cache`` keeps every intermediate model, ``executors`` says where trials run,
``runner`` / ``command`` are the search of a model or a zoo and its command line.
"""
