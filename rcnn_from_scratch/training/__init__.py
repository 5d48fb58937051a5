"""Training recipes, one per lecture stage (``rcnn``, ``fast_rcnn``, ``faster_rcnn``,
``feature_pyramid``, and the two ablations in ``ablation``), and the loop they share (``loop.py``:
progress bar, NaN stop, time budget, seeds)."""
