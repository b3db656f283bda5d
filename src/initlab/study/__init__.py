"""Studies: grids of cells, presets, TOML specs, the SQLite results store, execution and
summaries.

>>> from initlab.study import get_preset, Store, run_study, summarize
>>> study = get_preset("seed").with_overrides(seeds=2, epochs=3).expand()
>>> len(study), len(study.groups())          # 7 schemes x 2 seeds, trainable together
(14, 1)

Modules: :mod:`~initlab.study.cell` (Cell, Study, grouping), :mod:`~initlab.study.config`
(StudyConfig grids), :mod:`~initlab.study.presets`, :mod:`~initlab.study.spec` (TOML),
:mod:`~initlab.study.store` (SQLite, resume), :mod:`~initlab.study.executor`
(run_study, StoreSink, the Executor interface and the local executor),
:mod:`~initlab.study.events` and :mod:`~initlab.study.ray_executor` (``--executor ray``), :mod:`~initlab.study.engine_sink` (engine records -> store),
:mod:`~initlab.study.local` (train groups here with the batched engine),
:mod:`~initlab.study.summary` (per-scheme table).
"""

from initlab.study.cell import Cell, Study, canonical_json, group_cells, group_key
from initlab.study.config import ARTICLE_SCHEMES, StudyConfig, split_scheme_list
from initlab.study.engine_sink import EngineSink
from initlab.study.executor import Executor, GroupDriver, LocalExecutor, RunResult, StoreSink, TrainGroup, run_study
from initlab.study.local import check_data, check_memory, engine_train_group
from initlab.study.presets import PRESETS, get_preset, preset_names
from initlab.study.spec import load_spec, parse_spec
from initlab.study.store import DB_NAME, CellRecord, ResumeInfo, Store
from initlab.study.summary import Summary, render_table, summarize, summary_json

__all__ = [
    "ARTICLE_SCHEMES",
    "DB_NAME",
    "PRESETS",
    "Cell",
    "CellRecord",
    "EngineSink",
    "Executor",
    "GroupDriver",
    "LocalExecutor",
    "ResumeInfo",
    "RunResult",
    "Store",
    "StoreSink",
    "Study",
    "StudyConfig",
    "Summary",
    "TrainGroup",
    "canonical_json",
    "check_data",
    "check_memory",
    "engine_train_group",
    "get_preset",
    "group_cells",
    "group_key",
    "load_spec",
    "parse_spec",
    "preset_names",
    "render_table",
    "run_study",
    "split_scheme_list",
    "summarize",
    "summary_json",
]
