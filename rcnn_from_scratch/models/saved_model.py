"""Weights on disk for the detectors built from modules (Fast, Faster and Mask R-CNN): one mixin.

A subclass names itself (``model_name``, recorded in the file), its config dataclass
(``config_class``) and its shipped file (``default_weights``), and lists its parameters with
``named_parameters()``. The file holds the parameters, the config, and optional training records;
``nn/weights.py`` does the atomic, pickle-free writing and the validation on load.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..nn import load_weights, save_weights

__all__ = ["SavedModel"]

RECORD = "record."  # prefix of arrays kept beside the parameters (a training's loss curves)


class SavedModel:
    """``save(path)``, ``load(path)`` and ``pretrained()`` for a model with ``named_parameters()``."""

    model_name: str
    config_class: type
    default_weights: Path

    def config_dict(self) -> dict:
        """The config as JSON-ready values (what :meth:`save` records)."""
        return json.loads(json.dumps(asdict(self.config)))

    def save(self, path, extra: dict | None = None, arrays: dict | None = None) -> Path:
        """Write the parameters and the config to an ``.npz``, atomically.

        ``extra``: JSON-ready records kept beside the config (how the weights were trained);
        ``arrays``: named arrays kept as ``"record.<name>"`` (the training's loss curves).
        """
        state = {n: p.data for n, p in self.named_parameters()}
        state.update({RECORD + k: np.asarray(v) for k, v in (arrays or {}).items()})
        return save_weights(
            path, state, {"model": self.model_name, **self.config_dict(), **(extra or {})}
        )

    @classmethod
    def load(cls, path):
        """A model from a file written by :meth:`save`; a wrong or corrupt file is a clear error."""
        state, config = load_weights(path)
        if config.get("model") != cls.model_name:
            raise ValueError(
                f"{path}: holds a {config.get('model')!r} model, not a {cls.model_name!r}"
            )
        fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in config.items()}
        Config = cls.config_class
        model = cls(Config(**{k: fields[k] for k in Config.__dataclass_fields__ if k in fields}))
        own = dict(model.named_parameters())
        state = {k: v for k, v in state.items() if not k.startswith(RECORD)}
        if set(own) != set(state):
            raise ValueError(f"{path}: parameters do not fit this {cls.__name__}")
        for name, p in own.items():
            p.data[...] = state[name]
        return model

    @classmethod
    def pretrained(cls, path=None):
        """The shipped model (``default_weights``; its command is in ``data/README.md``)."""
        return cls.load(path or cls.default_weights)
