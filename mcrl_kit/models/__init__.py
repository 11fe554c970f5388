"""Sequential encoders behind one interface: ``encode(states, lengths) -> h``."""

BACKBONES: dict[str, type] = {}
