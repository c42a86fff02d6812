"""Run bookkeeping shared by the algorithm scripts: flags, run directories, metrics log, checkpoints, exact resume.

None of this is an algorithm, so it lives once, here, and never imports an algorithm file: each script hands it what
is its own. The protocol, in the order a script's `train(args)` meets it:

    args, ckpt, path = setup(args, CHECKS)        # the script's Args, and the valid ranges of its own fields
    ...build the env, the agent (state_dict/load_state_dict, .actor), the buffer...
    if args.eval_only: return evaluate_only(evaluate, args)
    run = Run(path, args, ckpt, agent, phases={"offline_step": N, "env_step": M}, gen=buffer.gen,
              evaluate=evaluate, buffer=buffer, env=env)
    if run.finished: return run.result()
    with run:
        while run.counters["offline_step"] < N: run.after_step("offline_step", agent.update(...))
        run.end_offline()
        obs = run.start_online()
        while run.counters["env_step"] < M: ...; obs = run.after_env_step(next_obs, reward, done, metrics, info)
        run.finish()
    return run.result()

`evaluate(video)` is the script's evaluation: it returns `eval/*` metrics and, given an mp4 path, records the first
episode there. `phases` names the step counters in the order the phases run; the online phase's counter is
`env_step`, and a script without one (BC) simply has no such phase. Other counters a script keeps (AWR's
`iteration`) are named in `counters` and saved with the rest. A script's name (for run directories and checkpoint
identity) is the file that defines its `Args` class, so a copy `my_awac.py` is its own script.

Command line: `cli(train, Args)` parses the flags with tyro and turns the expected errors into one line
`error: <what> (<how to fix>)` and exit status 2, a diverged run into one line and exit status 3, a file that could
not be written (no space, read-only, ...) into one line naming it, the reason and the last good checkpoint, and exit
status 4; Ctrl-C and SIGTERM save a checkpoint and exit with 130.

The modules, one concern each, from the bottom up (each imports only those above it in this list):
    checks.py       flags and their ranges, the device, the run directory's file system, what a resume keeps
    precision.py    what --precision auto and --compile auto pick on this hardware, and why
    checkpoints.py  atomic writes, safe reads and resume checks of checkpoints; the divergence guard
    run_dir.py      a new run's directory and config.json, its OS lock, the files a resume needs
    logger.py       metrics.csv, W&B and the progress bar
    command.py      setup() before any work, --eval-only, signals, and cli()'s one-line errors and exit statuses
    loop.py         Run: phases, counters, evaluations, checkpoints, exact resume
"""

from utils.run.checkpoints import EXIT_DIVERGED, Diverged
from utils.run.checks import (
    AT_LEAST_ONE,
    BATCH_SIZE,
    DISCOUNT,
    FRACTION,
    NON_NEGATIVE,
    POSITIVE,
    SIZES,
    UNIT,
    ArgumentError,
)
from utils.run.command import cli, evaluate_only, setup
from utils.run.loop import Run
from utils.run.precision import fast_path
from utils.run.run_dir import RunInUse, lock_run_dir, run_holder

# What a script imports (the ranges of its CHECKS, the protocol's four names, the fast path), and what a caller that
# drives or inspects runs from outside needs (the errors, the lock).
__all__ = [
    "AT_LEAST_ONE",
    "BATCH_SIZE",
    "DISCOUNT",
    "EXIT_DIVERGED",
    "FRACTION",
    "NON_NEGATIVE",
    "POSITIVE",
    "SIZES",
    "UNIT",
    "ArgumentError",
    "Diverged",
    "Run",
    "RunInUse",
    "cli",
    "evaluate_only",
    "fast_path",
    "lock_run_dir",
    "run_holder",
    "setup",
]
