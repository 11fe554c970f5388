"""Sequential encoders behind one interface: ``encode(states, lengths) -> h``.

``BACKBONES`` maps a name (``ModelConfig.backbone``) to its class; every class takes
``(n_items, state_len=10, hidden=64, dropout=0.1, sparse=False)``. See ``base.py`` for
the shape contract and what every backbone guarantees.
"""

from __future__ import annotations

from ..config import ModelConfig, _choice
from .base import Backbone
from .caser import Caser
from .gru import GRU4Rec
from .nextitnet import NextItNet
from .sasrec import SASRec

BACKBONES: dict[str, type[Backbone]] = {"gru": GRU4Rec, "caser": Caser, "nextitnet": NextItNet, "sasrec": SASRec}


def backbone_class(name: str) -> type[Backbone]:
    """The backbone registered as ``name``; a clear error listing the names for any other."""
    _choice("ModelConfig.backbone", name, BACKBONES)
    return BACKBONES[name]


def build_backbone(config: ModelConfig, n_items: int, state_len: int = 10, *, sparse: bool | None = None) -> Backbone:
    """The backbone ``config.backbone`` with ``config``'s sizes for ``n_items`` items.

    ``sparse=True`` gives the item embedding sparse gradients (``make_optimizer`` then
    gives it ``SparseAdam``); None follows ``config.sparse_embedding``.
    """
    cls = backbone_class(config.backbone)
    sparse = config.sparse_embedding if sparse is None else sparse
    return cls(n_items, state_len=state_len, hidden=config.hidden, dropout=config.dropout, sparse=sparse)


__all__ = ["BACKBONES", "Backbone", "Caser", "GRU4Rec", "NextItNet", "SASRec", "backbone_class", "build_backbone"]
