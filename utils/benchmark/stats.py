"""The statistics: rliable's mean and IQM with stratified-bootstrap intervals, the summary rows per task and algorithm,
and the paired comparison of two arms on the same tasks and seeds."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from utils.benchmark.runs import LABELS, METRICS, at_step, load_run


def iqm(scores: np.ndarray) -> float:
    """The interquartile mean of all (runs, tasks) scores: rliable's `aggregate_iqm`, scipy's trim_mean(scores, 0.25,
    axis=None), computed as scipy computes it (the same partition, so the same float) without scipy's per-call
    overhead, which made a bootstrap of 2,000 resamples take ~1 s per cell. NaN if any score is NaN (scipy's
    nan_policy="propagate"). With n scores it drops int(n / 4) from each end: with 3 or fewer nothing, so the IQM
    is the mean."""
    x = np.ravel(scores)
    if x.size == 0 or np.isnan(x).any():
        return np.nan
    cut = int(0.25 * x.size)
    return float(np.mean(np.partition(x, (cut, x.size - cut - 1))[cut : x.size - cut]))


def interval(scores: dict[str, np.ndarray], reps: int) -> tuple[dict, dict]:
    """rliable's mean and IQM (`rliable.metrics.aggregate_mean`, `iqm`) with 95% stratified-bootstrap CIs (rliable's
    `get_interval_estimates`, percentile intervals over `reps` resamples of runs within each task); scores[algo] is
    (runs, tasks). Returns ({algo: [mean, iqm]}, {algo: [[mean_lo, iqm_lo], [mean_hi, iqm_hi]]}). rliable draws its
    resamples from NumPy's global generator (StratifiedBootstrap.update_indices); it is seeded with 0 for the call
    and restored after, so the same runs always give the same intervals and the caller's random state is untouched."""
    from rliable import library as rly
    from rliable import metrics

    def aggregate(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_mean(x), iqm(x)])

    state = np.random.get_state()
    np.random.seed(0)
    try:
        return rly.get_interval_estimates(scores, aggregate, reps=reps)
    finally:
        np.random.set_state(state)


def summarize(runs: list[dict], reps: int = 2000) -> list[dict]:
    """One row per (task, algorithm) and per algorithm over all tasks, with the point estimates and CIs of mean and
    IQM for each success definition and the normalized score, offline and at the end, and `runs`, the number of runs
    the row used. A task's row uses all its finished runs. A row over several tasks uses the seeds that every one of
    them has (rliable's (runs, tasks) matrix): `left_out` names the runs of the other seeds ("" when none). Hand and
    locomotion tasks score on different scales: a grid with both gets "all hand tasks" and "all other tasks" rows
    instead of one "all tasks" row. Raises ValueError when a task of a several-task row has two runs of one seed."""
    from utils.envs import HAND_TASKS

    rows, tasks = [], sorted({r["env_id"] for r in runs})
    algos = list(dict.fromkeys(r["algo"] for r in runs))
    families: dict[str, list[str]] = {}
    for task in tasks:
        families.setdefault("all hand tasks" if task in HAND_TASKS else "all other tasks", []).append(task)
    scopes = {t: [t] for t in tasks}
    if len(families) == 1 and len(tasks) > 1:
        scopes["all tasks"] = tasks
    elif len(families) > 1:
        scopes.update({name: members for name, members in families.items() if len(members) > 1})
    for scope, members in scopes.items():
        for algo in algos:
            mine = [r for r in runs if r["algo"] == algo and r["env_id"] in members]
            if not mine:
                continue
            # Over several tasks the scores form a (seeds, tasks) matrix: only the seeds every task has fit in it.
            # The runs of the other seeds are left out of that row, and named in it.
            present = [t for t in members if any(r["env_id"] == t for r in mine)]
            common = set.intersection(*({r["seed"] for r in mine if r["env_id"] == t} for t in present))
            used = [r for r in mine if r["seed"] in common]
            left_out = [f"{r['env_id']} seed {r['seed']}" for r in mine if r["seed"] not in common]
            if len(present) > 1 and len(used) != len(common) * len(present):
                raise ValueError(f"{algo}: two runs of one seed on one task; a row over {scope} needs one per seed")
            row = {"task": scope, "algorithm": algo, "runs": len(used), "left_out": "; ".join(left_out)}
            for phase, prefix in (("offline", "offline/eval/"), ("end", "eval/")):
                for metric in METRICS:
                    by_task = [
                        [r["final"].get(prefix + metric, np.nan) for r in used if r["env_id"] == t] for t in present
                    ]
                    scores = np.array(by_task).T  # (seeds, tasks)
                    point, ci = interval({algo: scores}, reps)
                    key = f"{metric}_{phase}"
                    row[f"{key}_mean"], row[f"{key}_iqm"] = point[algo]
                    (row[f"{key}_mean_lo"], row[f"{key}_iqm_lo"]), (row[f"{key}_mean_hi"], row[f"{key}_iqm_hi"]) = ci[
                        algo
                    ]
            rows.append(row)
    return rows


def paired(a_dirs: list[Path], b_dirs: list[Path], step: int, window: int) -> tuple[list[str], dict]:
    """A paired comparison of two arms (e.g. fp32 and bf16) run on the same tasks and seeds: per (task, seed), each
    metric's mean over the evaluations of the last `window` env steps up to `step` (`at_step`), the difference B - A,
    and over seeds its mean with a 95% Student-t interval (n - 1 degrees of freedom). Also whether the critics' mean
    Q trajectories overlap: at each logged online step both arms reached, whether the [min, max] ranges over seeds
    intersect. Returns markdown lines and {metric: (mean difference, low, high)}. Runs without a pair are left out.

    Raises:
        SystemExit: no (task, seed) has a finished run in both arms."""
    from scipy import stats

    arms = [{(r["env_id"], r["seed"]): r for r in map(load_run, dirs) if r} for dirs in (a_dirs, b_dirs)]
    pairs = sorted(set(arms[0]) & set(arms[1]))
    if not pairs:
        raise SystemExit("no (task, seed) has a finished run in both arms")
    names = [arms[i][pairs[0]]["dir"].parent.parent.name for i in (0, 1)]  # the experiments, or within one its algos
    names = names if names[0] != names[1] else [arms[i][pairs[0]]["algo"] for i in (0, 1)]
    a, b = names
    lines = [
        f"Paired: {b} minus {a}, {len(pairs)} pairs ({', '.join(f'{t} seed {s}' for t, s in pairs)}); "
        f"each run's mean over its evaluations in the last {window:,} env steps up to {step:,}.",
        "",
        f"| metric | {a} per seed | {b} per seed | {b} - {a} per seed | mean {b} - {a} [95% t-interval] |",
        "|---|---|---|---|---|",
    ]
    result = {}
    for metric in METRICS:
        x = np.array([[at_step(arms[i][k], step, metric, window) for k in pairs] for i in (0, 1)])
        if np.isnan(x).all():
            continue
        d = x[1] - x[0]
        half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.nan
        result[metric] = (d.mean(), d.mean() - half, d.mean() + half)
        fmt = lambda v: ", ".join(f"{e:.3f}" for e in v)  # noqa: E731
        lines.append(
            f"| {LABELS[metric]} | {fmt(x[0])} | {fmt(x[1])} | {fmt(d)} | {d.mean():.3f} "
            f"[{d.mean() - half:.3f}, {d.mean() + half:.3f}] |"
        )
    q = [{k: {s: v for o, s, v in arms[i][k]["q_curve"] if not o} for k in pairs} for i in (0, 1)]
    steps = sorted(set.intersection(*(set(q[i][k]) for i in (0, 1) for k in pairs)))
    overlap = [
        max(min(q[0][k][s] for k in pairs), min(q[1][k][s] for k in pairs))
        <= min(max(q[0][k][s] for k in pairs), max(q[1][k][s] for k in pairs))
        for s in steps
    ]
    result["q_overlap"] = float(np.mean(overlap)) if overlap else np.nan
    lines += [
        "",
        f"Mean Q on training batches (online): the seed ranges of {a} and {b} overlap at {sum(overlap)} of "
        f"{len(overlap)} logged steps.",
    ]
    return lines, result
