"""Training recipes, one per lecture stage; the generic loop is ``train.py``."""
