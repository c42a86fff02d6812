"""Golden runs: tiny fixed-seed runs of every script whose metrics.csv rows and final.json are pinned in
tests/golden/ (as rlkit pins a reference progress.csv), so that a refactor that changes any number shows here.

Timing columns are left out. The numbers are those of this project's CPU machine (x86-64, torch 2.13.0, one
thread); after a change that is meant to change them, regenerate with
    GOLDEN_UPDATE=1 python -m pytest -q tests/test_golden.py
and say in the commit why they changed. awac and sac_fd run fp32 here, not the default `auto`: bf16's rounding
depends on the CPU's bf16 units, fp32's far less.
"""

import csv
import json
import math
import os
from pathlib import Path

import pytest

import awac
import awr
import bc
import sac_fd

GOLDEN = Path(__file__).resolve().parent / "golden"
TIMING = {"charts/SPS", "wall_time_s", "offline/wall_time_s", "run_dir"}
COMMON = dict(
    seed=0,
    batch_size=32,
    hidden_dims=(32, 32),
    eval_every=100,
    eval_episodes=1,
    log_every=50,
    wandb_mode="disabled",
    progress=False,
    threads=1,
)
CASES = {  # every phase of every script reaches updates, an evaluation and (online) a whole 200-step pen episode
    "awac": (awac, dict(dataset="pen-expert", offline_steps=100, online_steps=200, precision="fp32")),
    "sac_fd_scratch": (sac_fd, dict(dataset="none", online_steps=300, learning_starts=100, precision="fp32")),
    "sac_fd_pretrain": (
        sac_fd,
        dict(dataset="pen-expert", bc_pretrain_steps=50, offline_steps=50, online_steps=200, precision="fp32"),
    ),
    "bc": (bc, dict(dataset="pen-expert", offline_steps=100)),
    "awr": (
        awr,
        dict(
            dataset="pen-expert",
            offline_steps=200,
            online_steps=400,
            samples_per_iter=200,
            critic_steps=20,
            actor_steps=100,
        ),
    ),
}


def numbers(run: Path) -> dict:
    """A run's metrics.csv rows and final.json without the timing columns, values as floats (None if empty)."""
    with (run / "metrics.csv").open() as f:
        rows = [{k: float(v) if v != "" else None for k, v in r.items() if k not in TIMING} for r in csv.DictReader(f)]
    final = {k: v for k, v in json.loads((run / "final.json").read_text()).items() if k not in TIMING}
    return {"metrics": [{k: v for k, v in r.items() if v is not None} for r in rows], "final": final}


def same(a, b) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, (int, float)):
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)
    return a == b


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_run(name, tmp_path, small_pen_binary, cache_dir):
    module, fields = CASES[name]
    module.train(
        module.Args(
            env_id="pen-binary", data_dir=str(cache_dir), run_dir=str(tmp_path), run_name=name, **COMMON, **fields
        )
    )
    got = numbers(tmp_path / name)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("GOLDEN_UPDATE"):
        path.write_text(json.dumps(got, indent=1) + "\n")
    expected = json.loads(path.read_text())
    assert len(got["metrics"]) == len(expected["metrics"]), "a different number of logged rows"
    for i, (row, want) in enumerate(zip(got["metrics"], expected["metrics"])):
        assert same(row, want), f"metrics.csv row {i} differs: {sorted(set(row.items()) ^ set(want.items()))[:6]}"
    assert same(got["final"], expected["final"]), "final.json differs"
