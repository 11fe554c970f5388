"""mcrl_kit — offline, model-enhanced contrastive RL for sequential recommendation.

Layers (data flows one way): ``config`` / ``data`` → ``models`` / ``evaluate`` →
``algos`` → ``train`` / ``diagnostics`` → ``viz`` → notebooks and the CLI.
"""

__version__ = "0.1.0"
