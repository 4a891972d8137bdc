"""Hyper-parameter search whose trials are suanli jobs: an Optuna study kept in suanli's database.

from suanli.tune import load_tune_spec, tune
result = tune(load_tune_spec("examples/digits-tune/tune.yaml"))
print(result.best)
"""

from suanli.tune.driver import TrialResult, TuneProgress, TuneResult, tune
from suanli.tune.spec import TuneSpec, load_tune_spec

__all__ = ["TrialResult", "TuneProgress", "TuneResult", "TuneSpec", "load_tune_spec", "tune"]
