"""Equal-budget tuning: every method gets the same number of trials of the same length (``python -m mcrl_kit tune``).

A fair comparison tunes every method, not only the new one. ``tune`` searches each algorithm's own space
(``Config.SEARCH``, next to its fields) plus the learning rate and dropout (``COMMON_SEARCH``) with
Optuna's TPE sampler, on validation only:

- **the same budget for every method**: ``trials`` trials started (a trial that was killed is retried
  and counted once) × ``steps`` steps each; a method with nothing to search (popularity, recency) gets one
  trial. Extending a study (a larger ``trials``) raises every method's budget by the same amount. The
  trials table records each trial's training steps, so the total per method is in the CSV;
- **validation only**: a trial is a run folder trained with ``test_metrics`` off — its ``metrics.json``
  holds no test numbers; only the best configuration, retrained, is scored on test (``study``);
- **pruned on validation**: every validation of a trial is reported, and the pruner (the median rule
  after two complete trials by default) may stop it there; a pruned trial counts in the budget with the
  steps it trained;
- **cached and killable**: each trial is a run folder under ``OUT/trials`` (the same parameters, the same
  folder); a trial whose process died is failed and retried with its own parameters, and its run folder
  resumes exactly from its last checkpoint;
- **reproducible**: the sampler is seeded from the study's seed and the number of trials started before,
  so a killed and resumed single-worker study ends with exactly the (parameters, value) list an
  uninterrupted one ends with;
- **several workers** (processes here, machines elsewhere) may join one study through its storage URL:
  the default is ``sqlite:///OUT/optuna.db`` (one machine; a lock file makes "count the trials, then start
  one" atomic, so the budget holds); across machines give a database server's URL, e.g.
  ``postgresql://user@host/db`` (Optuna's RDB storage), and run ``tune`` on each machine. A dead worker's
  trial is noticed on its own host (by process id) when a worker there starts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import filelock
import pandas as pd

from .algos import algo_class
from .config import Param
from .data import PreparedData
from .errors import ConfigError
from .experiments import Study, ensure_run
from .report import load_run_metrics
from .seeding import numpy_rng
from .storage import atomic_path, pid_alive

#: searched for every trained algorithm: Adam's learning rate and the backbone's dropout. The learning rate
#: spans the reference's 0.005 (RetailRocket) and 0.01 (Yoochoose) by a factor of 5 each way: below 1e-3 a
#: budget of a thousand steps barely moves the heads (a first range from 1e-4 spent 7 of 10 trials per method
#: there, each still near popularity at its first validation and pruned)
COMMON_SEARCH: dict[str, Param] = {"train.lr": Param("float", 1e-3, 2e-2, log=True), "model.dropout": Param("float", 0.0, 0.5)}
#: TPE draws this many trials at random before it models the good ones (its default, 10, would make the usual
#: 10-trial budget a random search)
STARTUP_TRIALS = 5


def search_space(algo: str) -> dict[str, Param]:
    """The space ``tune`` searches for ``algo``: its own ``SEARCH`` and, when it trains, ``COMMON_SEARCH``."""
    cls = algo_class(algo)
    return {**(COMMON_SEARCH if cls.trainable else {}), **cls.Config.SEARCH}


def _suggest(trial, name: str, p: Param):
    if p.kind == "float":
        return trial.suggest_float(name, p.low, p.high, log=p.log)
    if p.kind == "int":
        return trial.suggest_int(name, int(p.low), int(p.high), log=p.log)
    return trial.suggest_categorical(name, list(p.choices))


@dataclasses.dataclass
class Tuner:
    """One algorithm's study on one dataset: ``Tuner(data, "sa2c", steps=1000, out=...).run(trials=10)``."""

    data: PreparedData
    algo: str
    steps: int = 1000
    backbone: str = "gru"
    batch_size: int = 256
    eval_every: int | None = None
    seed: int = 0
    out: str | Path | None = None
    #: Optuna storage URL (default: ``sqlite:///OUT/optuna.db``)
    storage: str | None = None
    threads: int | None = None
    progress: bool = False
    #: an Optuna pruner, asked at every validation (default: the median rule after two complete trials, from
    #: the second validation on)
    pruner: Any = None
    #: called with one line per finished trial (``study`` passes ``print``: a long study says where it is)
    log: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        self.out = Path(self.out) if self.out else Path("build") / "tune"
        self.space = search_space(self.algo)
        self.name = f"{self.algo}-{self.backbone}-{self.steps}steps"
        self._study = Study(self.data, backbone=self.backbone, steps=self.steps, batch_size=self.batch_size,
                            eval_every=self.eval_every, device="cpu", threads=self.threads, out=self.out / "trials",
                            progress=self.progress)

    # --- the Optuna study ----------------------------------------------------------------------
    def study(self):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.out.mkdir(parents=True, exist_ok=True)
        url = self.storage or f"sqlite:///{(self.out / 'optuna.db').resolve()}"
        # one process at a time creates the tables and the study (two workers starting together would race)
        with filelock.FileLock(str(self.out / ".optuna.create.lock")):
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None)
            # the median rule after two complete trials, never at a trial's first validation: how fast a
            # configuration starts says little of where it ends (a lower learning rate starts slower)
            first = self.eval_every or max(1, self.steps // 4)
            pruner = self.pruner or optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=first + 1)
            return optuna.create_study(study_name=self.name, storage=storage, direction="maximize", load_if_exists=True,
                                       pruner=pruner)

    def budget(self, trials: int) -> int:
        """Trials this method gets: ``trials``, or one where there is nothing to search."""
        return trials if self.space else 1

    def run(self, trials: int) -> pd.DataFrame:
        """Start trials until ``budget(trials)`` have been started (by any worker); the trials table."""
        import optuna

        if trials < 1:
            raise ConfigError("tune --trials", f"must be ≥ 1, got {trials}", "give e.g. 10")
        study = self.study()
        target = self.budget(trials)
        lock = filelock.FileLock(str(self.out / f".{self.name}.reserve.lock"))
        while True:
            with lock:  # count and reserve atomically: two workers never both take the last trial
                self._retry_dead(study)
                states = optuna.trial.TrialState
                trials_now = study.get_trials(deepcopy=False)
                reserved = [t for t in trials_now if t.state != states.FAIL]  # a retry waiting counts: it will run
                if len(reserved) >= target:
                    break
                drawn = sum(t.state not in (states.FAIL, states.WAITING) for t in trials_now)
                # seeded by how many trials were drawn before: a killed trial's retry takes its place and number
                study.sampler = optuna.samplers.TPESampler(n_startup_trials=STARTUP_TRIALS,
                                                           seed=int(numpy_rng(self.seed, "tune", drawn).integers(2**31)))
                trial = study.ask()
                trial.set_user_attr("worker", _worker())
                trial.set_user_attr("index", drawn)  # its place in the order of draws
            params = {name: _suggest(trial, name, p) for name, p in self.space.items()}
            reached = {"step": 0}
            started = time.perf_counter()
            try:
                value, steps, folder = self._objective(params, trial, reached)
            except optuna.TrialPruned:  # a pruned trial counts in the budget with the steps it trained
                trial.set_user_attr("steps", reached["step"])
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                self._say(f"{self.name}: trial {drawn + 1} of {target} pruned at step {reached['step']:,} "
                          f"({time.perf_counter() - started:.0f} s)")
                continue
            trial.set_user_attr("steps", steps)
            trial.set_user_attr("run", str(folder))
            study.tell(trial, value)
            self._say(f"{self.name}: trial {drawn + 1} of {target}: validation {value:.4f} "
                      f"({time.perf_counter() - started:.0f} s)")
        return self.table(study)

    def _say(self, line: str) -> None:
        if self.log is not None:
            self.log(line)

    def _retry_dead(self, study) -> None:
        """A RUNNING trial of a dead process on this host: fail it and enqueue its parameters again."""
        import optuna

        host = socket.gethostname()
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            worker = t.user_attrs.get("worker", "")
            name, _, pid = worker.rpartition(":")
            if name == host and pid.isdigit() and not pid_alive(int(pid)):
                study.tell(t.number, state=optuna.trial.TrialState.FAIL)
                if t.params:
                    study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})

    def _objective(self, params: Mapping[str, Any], trial=None, reached: dict | None = None) -> tuple[float, int, Path]:
        """Train (or reuse, or resume) the trial's run folder; its validation value on the selection metric,
        reported to the pruner at every validation."""
        import optuna

        from .train import selection

        run = configured(self._study, self.algo, params, self.seed, test_metrics=False)
        chosen = selection(run.train, self.data.replay("val"))["metric"]  # what the run will choose on
        key = "val/" + (run.train.select_metric if chosen == "last" else chosen)

        def report(step: int, val: dict) -> None:
            if trial is None:
                return
            reached["step"] = step
            trial.report(float(val[key]), step)
            if trial.should_prune():
                raise optuna.TrialPruned

        folder = ensure_run(run, self._study.root, data=self.data, on_eval=report if algo_class(self.algo).trainable else None)
        _, metrics = load_run_metrics(folder)
        if "test" in metrics:  # a trial never reads test (and a folder that has it was not a trial)
            raise ConfigError(str(folder), "holds test metrics, so it is not a tuning trial", "tune into a fresh --out")
        metric = metrics.get("select_metric", run.train.select_metric)
        if metric == "last":
            metric = run.train.select_metric
        kind, name = metric.split("/")
        return float(metrics["val"][kind][name]), int(metrics.get("steps", 0)), folder

    def table(self, study=None) -> pd.DataFrame:
        """Every trial: its order, state, value, parameters and training steps (written to ``OUT/<name>.csv``)."""
        study = study or self.study()
        rows = []
        for t in study.get_trials(deepcopy=False):
            rows.append({"algo": self.algo, "trial": t.number, "index": t.user_attrs.get("index"), "state": t.state.name,
                         "value": t.value, "steps": t.user_attrs.get("steps", 0), "params": json.dumps(t.params, sort_keys=True),
                         "run": t.user_attrs.get("run")})
        frame = pd.DataFrame(rows)
        if len(frame):
            with atomic_path(self.out / f"{self.name}.csv") as tmp:
                frame.to_csv(tmp, index=False)
        return frame

    def best(self) -> tuple[dict, float]:
        """The best completed trial's parameters and validation value."""
        study = self.study()
        return dict(study.best_trial.params), float(study.best_value)


def configured(study: Study, algo: str, params: Mapping[str, Any], seed: int, test_metrics: bool = True):
    """``study``'s run config of ``algo`` with searched ``params`` applied: bare names are the algorithm's,
    ``train.*`` and ``model.*`` the loop's and the backbone's (the keys of ``search_space``)."""
    run = study.config(algo, {k: v for k, v in params.items() if "." not in k}, seed=seed)
    train = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("train.")}
    model = {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith("model.")}
    return run.replace(train=dataclasses.replace(run.train, test_metrics=test_metrics, **train),
                       model=dataclasses.replace(run.model, **model))


def completed(table: pd.DataFrame) -> list[tuple[str, float]]:
    """The completed ``(parameters, value)`` list in the order the trials were drawn."""
    done = table[table["state"] == "COMPLETE"].sort_values("index")
    return list(zip(done["params"], done["value"].astype(float), strict=True))


def _worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"



__all__ = ["COMMON_SEARCH", "STARTUP_TRIALS", "Tuner", "completed", "configured", "search_space"]
