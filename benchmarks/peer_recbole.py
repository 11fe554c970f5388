"""RecBole 1.2.1's SASRec timed the way ``benchmarks/bench.py`` times the kit.

Run by the bench inside its own environment (``.venv-peer``: RecBole's pins and ray
would clash with the kit's), never imported by the kit::

    .venv-peer/bin/python benchmarks/peer_recbole.py --data build/bench/recbole/<name> \
        --batch 256 --threads 2 --steps 30 --warmup 5

``--data`` is a folder holding ``<name>.inter`` (``session_id:token  item_id:token
timestamp:float``), which the bench writes from the same prepared data its own
``data`` cases train on: every event of every session, the session as RecBole's user,
the position in the session as the time (so RecBole's stable time sort keeps the
kit's order); and ``<name>.item``, every item of the catalogue, so that RecBole's
vocabulary (and softmax) has the kit's width, items that never occur included.

Settings matched to the kit's supervised SASRec: ``MAX_ITEM_LIST_LENGTH`` 10, hidden
64, feed-forward 64 (``inner_size``), 1 layer, 1 head, dropout 0.1, CE loss over all
items, Adam with lr 0.005, batch 256, the same thread count, CPU. What stays RecBole's
own: its item embedding is also the output layer (tied), its dataloader builds the
batches, its training instances are every prefix of each session's first n − 2 items
(leave-one-out split), plain (non-fused) Adam.

Timing: RecBole's own training step (``Trainer._train_epoch``: next batch from
``train_data``, ``interaction.to(device)``, ``zero_grad``, ``calculate_loss``,
``backward``, ``step``), ``--warmup`` untimed steps then ``--steps`` timed ones; the
dataloader's batch assembly is inside the timed step, as the kit's sampling is.

Compatibility shims, applied here at run time (nothing in site-packages is edited):
- numpy ≥ 2 removed ``np.float_``, ``np.complex_`` and ``np.unicode_``, which RecBole's
  ``Config.compatibility_settings`` reads to re-create ``np.float`` and friends: the
  three names are restored as aliases before RecBole is imported;
- torch ≥ 2.6 loads checkpoints with ``weights_only=True``; nothing here saves or loads
  one (``save_dataset`` / ``save_dataloaders`` off, no ``Trainer``), so no shim is needed.

Prints one line ``BENCH_RESULT {json}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

for old, new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
    if not hasattr(np, old):
        setattr(np, old, new)

import torch  # noqa: E402
from recbole.config import Config  # noqa: E402
from recbole.data import create_dataset, data_preparation  # noqa: E402
from recbole.model.sequential_recommender import SASRec  # noqa: E402
from recbole.utils import init_seed  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder holding <name>.inter")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    args = p.parse_args()
    sys.argv = sys.argv[:1]  # RecBole's Config reads the command line as config overrides
    torch.set_num_threads(args.threads)
    data = Path(args.data).resolve()
    scratch = tempfile.mkdtemp(prefix="recbole-")
    config = Config(
        model="SASRec",
        dataset=data.name,
        config_dict={
            "data_path": str(data.parent),
            "checkpoint_dir": scratch,
            "USER_ID_FIELD": "session_id",
            "ITEM_ID_FIELD": "item_id",
            "TIME_FIELD": "timestamp",
            # the .item file (when present) lists the whole catalogue: the same softmax width as the kit's
            "load_col": {"inter": ["session_id", "item_id", "timestamp"],
                         **({"item": ["item_id"]} if (data / f"{data.name}.item").exists() else {})},
            "MAX_ITEM_LIST_LENGTH": 10,
            "hidden_size": 64,
            "inner_size": 64,
            "n_layers": 1,
            "n_heads": 1,
            "hidden_dropout_prob": 0.1,
            "attn_dropout_prob": 0.1,
            "loss_type": "CE",
            "train_neg_sample_args": None,
            "train_batch_size": args.batch,
            "learning_rate": 0.005,
            "use_gpu": False,
            "device": "cpu",
            "seed": 0,
            "reproducibility": True,
            "worker": 0,
            "show_progress": False,
            "save_dataset": False,
            "save_dataloaders": False,
            "log_wandb": False,
            "state": "ERROR",
        },
    )
    logging.disable(logging.INFO)
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(args.threads)  # init_seed and Config may reset it
    t0 = time.perf_counter()
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)
    prepare_s = time.perf_counter() - t0
    model = SASRec(config, train_data.dataset).to(config["device"])
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])

    batches = iter(train_data)

    def step() -> None:
        nonlocal batches
        try:
            interaction = next(batches)
        except StopIteration:  # an epoch ended: RecBole's trainer starts the next one
            batches = iter(train_data)
            interaction = next(batches)
        interaction = interaction.to(config["device"])
        optimizer.zero_grad()
        loss = model.calculate_loss(interaction)
        loss.backward()
        optimizer.step()

    times = []
    for _ in range(args.warmup + args.steps):
        s = time.perf_counter()
        step()
        times.append(time.perf_counter() - s)
    timed = times[args.warmup :]
    result = {
        "peer": "RecBole 1.2.1 SASRec",
        "items": int(dataset.item_num) - 1,  # RecBole counts its padding id 0 as an item
        "training_instances": len(train_data.dataset),
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "steps": len(timed),
        "steps_per_s": len(timed) / sum(timed),
        "transitions_per_s": len(timed) * args.batch / sum(timed),
        "step_ms_median": statistics.median(timed) * 1e3,
        "prepare_s": round(prepare_s, 1),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "params": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
    }
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
