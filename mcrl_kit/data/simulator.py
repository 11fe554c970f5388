"""The embedded simulator (being written): synthetic sessions with learnable structure."""

SCALES = ("tiny", "small", "retailrocket", "yoochoose")
