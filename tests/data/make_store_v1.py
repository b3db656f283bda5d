"""Writes tests/data/store_v1.sqlite with initlab at schema version 1 (commit fa626b2)."""
import sys, torch, shutil
from pathlib import Path
from initlab.engine.inputs import TrainData
from initlab.engine.models import MLPSpec
from initlab.study import Store, StudyConfig, run_study
from initlab.study.local import engine_train_group

g = torch.Generator().manual_seed(0)
n = 160
y = torch.randint(0, 10, (n,), generator=g)
x = 0.1 * torch.rand(n, 28, 28, generator=g)
x[torch.arange(n), 2 * y] += 0.9
data = TrainData(x[:128], y[:128], x[128:], y[128:])
study = StudyConfig(name="v1", schemes=("he_normal", "lsuv", "normal(std=1e30)"), seeds=2,
                    models=(MLPSpec(hidden=(8,)),),
                    train={"epochs": 2, "batch_size": 32, "log_every": 2, "probe_size": 8,
                           "hist_bins": 4, "lr": 0.01}).expand()
out = Path(sys.argv[1])
shutil.rmtree(out, ignore_errors=True)
with Store.create(out) as store:
    train = engine_train_group(loader=lambda c: data)
    run_study(study, store, train, max_group_size=4)
    print(store.status_counts(), [ (e["kind"], e["detail"]) for e in store.events()][:2])
    print(sorted(store.meta()))
