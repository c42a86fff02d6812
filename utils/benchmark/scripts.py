"""The scripts a benchmark runs, and their flags: finding a script by name or path, importing it to read its `Args`
(importing runs no training), which flags of a command line each script takes, and the config.json that a command
line would make. It knows nothing of grids or run directories."""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository root: this file is utils/benchmark/scripts.py in it
ALGOS = ("awac", "sac_fd", "bc", "awr")


def script_path(algo: str) -> Path:
    """The file of `algo`: a script in the repository root by name (`awac`, or a fork `my_awac` saved beside it), or
    the path of any .py file that follows the house protocol (an `Args` dataclass and `train(args)`, as awac.py).
    Raises SystemExit naming the file it looked for."""
    path = Path(algo) if algo.endswith(".py") or os.sep in algo else ROOT / f"{algo}.py"
    if not path.is_file():
        raise SystemExit(
            f"--algos {algo}: no script {path} (give one of {', '.join(ALGOS)}, or the path of a copy "
            "such as my_awac.py)"
        )
    return path.resolve()


def algo_name(algo: str) -> str:
    """The name a script's runs and rows go by: its file's stem (`my_awac` for ~/forks/my_awac.py)."""
    return script_path(algo).stem


@functools.cache
def load_script(algo: str):
    """Imports a script (by name or path, see `script_path`) to read its `Args`; importing runs no training.
    Raises SystemExit naming the file, the reason and the line (where Python gives one) when the file does not
    import (a syntax error, a missing module, any error at import), or has no `Args` dataclass or no `train`."""
    path = script_path(algo)
    if str(ROOT) not in sys.path:  # a fork outside the repository still imports utils/
        sys.path.insert(0, str(ROOT))
    try:
        if path.parent == ROOT:
            module = importlib.import_module(path.stem)
        else:
            spec = importlib.util.spec_from_file_location(path.stem, path)
            module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look it up there
            spec.loader.exec_module(module)
    except Exception as e:  # a broken fork: whatever stops its import, said in one line
        sys.modules.pop(path.stem, None)
        raise SystemExit(f"--algos {algo}: {import_failure(path, e)}") from None
    if not (dataclasses.is_dataclass(getattr(module, "Args", None)) and callable(getattr(module, "train", None))):
        raise SystemExit(
            f"--algos {algo}: {path} does not follow the house protocol (an Args dataclass and "
            "train(args), as in awac.py)"
        )
    return module


def import_failure(path: Path, error: Exception) -> str:
    """Why `path` did not import, in one line: the file and line (of a syntax error: where Python found it, maybe in
    a module the script imports; else the script's line that was running), the error and what to do."""
    if isinstance(error, SyntaxError):
        return (
            f"{error.filename or path}, line {error.lineno}: the script does not import: {type(error).__name__}: "
            f"{error.msg} (fix that line; `python -m py_compile {error.filename or path}` checks the file)"
        )
    lines = [f.lineno for f in traceback.extract_tb(error.__traceback__) if Path(f.filename) == path]
    where = f"{path}, line {lines[-1]}" if lines else str(path)
    fix = (
        f"install {error.name}, or remove that import"
        if isinstance(error, ModuleNotFoundError) and error.name
        else "fix the script: importing it must run no work"
    )
    reason = (str(error).strip().splitlines() or [""])[0]
    return f"{where}: the script does not import: {type(error).__name__}: {reason} ({fix})"


def algo_flags(algo: str) -> set[str]:
    """The command-line flags of an algorithm file's Args, e.g. {'--env-id', '--offline-steps', ...}."""
    return {"--" + f.name.replace("_", "-") for f in dataclasses.fields(load_script(algo).Args)}


def flags_for(algo: str, words: list[str]) -> list[str]:
    """The flags (with their values) of `words` meant for `algo`: those its Args has, and those no algorithm file
    has (so a typo fails loudly everywhere instead of vanishing); a flag of another algorithm is left out."""
    mine, known = algo_flags(algo), set().union(*(algo_flags(a) for a in (*ALGOS, algo)))
    out, i = [], 0
    while i < len(words):
        j = i + 1
        while j < len(words) and not words[j].startswith("--"):
            j += 1
        if words[i] in mine or words[i] not in known:
            out += words[i:j]
        i = j
    return out


def shared_flags(algos: list[str], words: list[str]) -> dict[str, list[str]]:
    """The flags of `words` that more than one of `algos` receives (`flags_for`), each with those scripts' names:
    the same name can mean different things (--beta is AWAC's lambda and AWR's temperature)."""
    flags = [w for w in words if w.startswith("--")]
    receivers = {f: [algo_name(a) for a in algos if f in flags_for(a, [f])] for f in flags}
    return {f: names for f, names in receivers.items() if len(names) > 1}


def requested_config(algo: str, flags: list[str]) -> dict:
    """The config.json that `python <algo>.py <flags>` would write for a new run, as far as the benchmark can know it
    without running it: the script's Args parsed from `flags` (tyro, as the script's command line does), with
    --precision auto resolved on this machine, --online-steps' default filled in, and the per-task defaults of a
    script that has `family_defaults` (awac.py) resolved. Fields a script resolves elsewhere stay None. Values are
    JSON's (tuples as lists, infinity as "inf"). Raises SystemExit naming the flags when tyro rejects them."""
    import tyro

    from utils.run.checks import DEFAULT_ONLINE_STEPS
    from utils.run.precision import resolve_precision
    from utils.run.run_dir import strict_json

    module = load_script(algo)
    try:
        args = tyro.cli(module.Args, args=flags, console_outputs=False)
    except SystemExit:
        raise SystemExit(
            f"--algos {algo}: its script rejects the flags {' '.join(flags)} (run it with them to see why)"
        ) from None
    changes = {}
    if getattr(args, "precision", None) == "auto":
        changes["precision"] = resolve_precision("auto", args.device)
    if getattr(args, "online_steps", 0) is None:
        changes["online_steps"] = DEFAULT_ONLINE_STEPS
    args = dataclasses.replace(args, **changes)
    if callable(getattr(module, "family_defaults", None)):
        args = module.family_defaults(args)
    return json.loads(strict_json(dataclasses.asdict(args)))
