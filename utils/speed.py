"""How fast AWAC (or SAC, `--algo sac_fd`) trains here: the update alone per variant, and whole processes.

    python -m utils.speed                                          # both tables, CPU (~15 min on 2 cores)
    python -m utils.speed --corl ~/CORL/algorithms/finetune/awac.py  # + CORL's AWAC update, side by side
    python -m utils.speed --device cuda --threads 1 --no-process    # the update table on a GPU

Table 1, the update: updates/s of `awac.AWAC.update` (or `sac_fd.SAC.update`) for each variant (`fp32`, `bf16`,
`compile`, `bf16+compile`) x batch size x thread count, on random data of the task's dimensions (an update's cost
does not depend on the values). All variants of one (threads, batch) cell are built and warmed up first (the warm-up
time, which holds torch.compile's compiling, is printed), then timed in `--blocks` interleaved blocks of `--updates`
updates; each figure is the median block, so a noisy neighbour hits every variant alike. With `--before REV`, the
algorithm file as committed at git revision REV joins both tables as variant `before` (its own defaults: fp32 before
7f7d249, auto since; no flags it lacks). With `--corl PATH` (a checkout of github.com/corl-team/CORL; nothing of it
is copied here), the same cells also time CORL's `AdvantageWeightedActorCritic.update` from
`algorithms/finetune/awac.py`, its networks' hidden layers set to ours (CORL's default is 3 x 256) and its other
code unchanged.

Table 2, whole processes: `python awac.py` (or sac_fd.py) on the task with its default dataset, run twice per phase
with two step counts (`--process-steps`); (n2 - n1) / (t2 - t1) is the phase's steps/s without start-up, dataset
loading and evaluation, which both runs share. Offline: updates/s; online: environment steps/s, one update each. The
last column is the wall time of a paper-scale run (25K offline updates + 500K online steps) at those rates.

Table 3, the divergence guard: the time of its two checks (each logged row, each checkpoint's weights) against
the updates between them (`--no-guard` skips it).

A driver tool: no algorithm file imports it. Run it on a quiet machine: any other busy process distorts it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("fp32", "bf16", "compile", "bf16+compile")
PAPER_SCALE = dict(offline_steps=25_000, online_steps=500_000)  # the paper's door run: updates, env steps


def load_corl(path: Path) -> types.ModuleType:
    """CORL's `algorithms/finetune/awac.py` as a module. It imports d4rl, gym and pyrallis at the top but needs
    them only to train; they are stubbed (in this process only) so that its networks and update can be timed.
    Raises FileNotFoundError for a missing path."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: pass CORL's algorithms/finetune/awac.py (git clone https://github.com/corl-team/CORL)"
        )
    for name in ("d4rl", "gym", "pyrallis"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["gym"].Env = object
    sys.modules["pyrallis"].wrap = lambda *a, **k: lambda f: f
    spec = importlib.util.spec_from_file_location("corl_awac", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_before(rev: str, algo: str, folder: Path) -> tuple[types.ModuleType, Path]:
    """`<algo>.py` as committed at git revision `rev` (e.g. the commit before a speed-up), as a module and as a
    file in `folder` to run as a process. Raises subprocess.CalledProcessError for an unknown revision."""
    path = folder / f"{algo}_before.py"
    path.write_text(
        subprocess.run(["git", "show", f"{rev}:{algo}.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    )
    spec = importlib.util.spec_from_file_location(f"{algo}_before", path)
    module = sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # dataclasses look themselves up
    spec.loader.exec_module(module)
    return module, path


def relu_mlp(dims: list[int]) -> nn.Sequential:
    """Linear layers of sizes `dims` (input, hidden..., output) with ReLU between them: CORL's networks, rebuilt at
    our hidden sizes for the side-by-side update table."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers += [nn.Linear(d_in, d_out)] + ([nn.ReLU()] if i < len(dims) - 2 else [])
    return nn.Sequential(*layers)


class CorlUpdate:
    """CORL's AWAC agent (its Actor, two Critics, three Adams, its update) with our hidden layer sizes."""

    def __init__(self, corl: types.ModuleType, obs_dim: int, act_dim: int, hidden: list[int], device: str):
        actor = corl.Actor(obs_dim, act_dim, hidden[0])
        actor._mlp = relu_mlp([obs_dim, *hidden, act_dim])
        critics = [corl.Critic(obs_dim, act_dim, hidden[0]) for _ in range(2)]
        for c in critics:
            c._mlp = relu_mlp([obs_dim + act_dim, *hidden, 1])
        for net in (actor, *critics):
            net.to(device)
        self.agent = corl.AdvantageWeightedActorCritic(
            actor,
            torch.optim.Adam(actor.parameters(), 3e-4),
            critics[0],
            torch.optim.Adam(critics[0].parameters(), 3e-4),
            critics[1],
            torch.optim.Adam(critics[1].parameters(), 3e-4),
        )

    def update(self, batch: dict[str, torch.Tensor]) -> dict:
        return self.agent.update(
            [batch["obs"], batch["action"], batch["reward"][:, None], batch["next_obs"], batch["terminated"][:, None]]
        )


def update_table(a: argparse.Namespace, obs_dim: int, act_dim: int, q_max: float | None) -> dict:
    """Prints table 1 row by row; returns {(threads, batch, variant): updates/s}."""
    module = importlib.import_module(a.algo)
    corl = load_corl(a.corl) if a.corl else None
    before = load_before(a.before, a.algo, a.tmp)[0] if a.before else None
    sync = torch.cuda.synchronize if a.device.startswith("cuda") else (lambda: None)
    rng = np.random.default_rng(0)
    n = 20_000
    buffer = module.ReplayBuffer(obs_dim, act_dim, n, a.device, 0)
    buffer.add(
        obs=rng.normal(size=(n, obs_dim)),
        action=rng.uniform(-1, 1, (n, act_dim)),
        reward=-rng.integers(0, 2, n),
        next_obs=rng.normal(size=(n, obs_dim)),
        terminated=np.zeros(n),
    )
    print(
        f"\n### Update throughput of {a.algo}.py: {a.env_id} (obs {obs_dim}, action {act_dim}), "
        f"hidden {a.hidden_dims}, device {a.device}, torch {torch.__version__}; median of {a.blocks} blocks of "
        f"{a.updates} updates\n"
    )
    print("| threads | batch | variant | updates/s | vs fp32 |" + (" vs CORL |" if corl else "") + " warm-up s |")
    print("|---|---|---|---|---|" + ("---|" if corl else "") + "---|", flush=True)
    rates: dict = {}
    for threads in a.threads:
        torch.set_num_threads(threads)
        for batch in a.batch_sizes:
            agents, warmup = {}, {}
            names = list(a.variants) + (["before"] if before else []) + (["CORL"] if corl else [])
            for name in names:
                torch.manual_seed(0)
                if name == "CORL":
                    agents[name] = CorlUpdate(corl, obs_dim, act_dim, a.hidden_dims, a.device)
                elif name == "before":
                    args = before.Args(
                        env_id=a.env_id, batch_size=batch, hidden_dims=tuple(a.hidden_dims), device=a.device
                    )
                    if hasattr(before, "family_defaults"):  # resolved by the caller since the run module
                        args = before.family_defaults(args)
                    agents[name] = (
                        before.AWAC(obs_dim, act_dim, args, q_max)
                        if a.algo == "awac"
                        else before.SAC(obs_dim, act_dim, args)
                    )
                else:
                    args = module.Args(
                        env_id=a.env_id,
                        batch_size=batch,
                        hidden_dims=tuple(a.hidden_dims),
                        device=a.device,
                        precision="bf16" if "bf16" in name else "fp32",
                        compile="on" if "compile" in name else "off",
                    )
                    agents[name] = (
                        module.AWAC(obs_dim, act_dim, module.family_defaults(args), q_max)
                        if a.algo == "awac"
                        else module.SAC(obs_dim, act_dim, args)
                    )
                t = time.perf_counter()
                for _ in range(20):
                    agents[name].update(buffer.sample(batch))
                sync()
                warmup[name] = time.perf_counter() - t
            blocks: dict[str, list[float]] = {name: [] for name in names}
            for _ in range(a.blocks):
                for name in names:
                    t = time.perf_counter()
                    for _ in range(a.updates):
                        agents[name].update(buffer.sample(batch))
                    sync()
                    blocks[name].append(a.updates / (time.perf_counter() - t))
            cell = {name: statistics.median(blocks[name]) for name in names}
            for name, rate in cell.items():
                ratio = lambda ref: f" {rate / cell[ref]:.2f}x |" if ref in cell else " - |"
                print(
                    f"| {threads} | {batch} | {name} | {rate:.1f} |{ratio('fp32')}"
                    + (ratio("CORL") if corl else "")
                    + f" {warmup[name]:.1f} |",
                    flush=True,
                )
                rates[threads, batch, name] = rate
    return rates


def process_table(a: argparse.Namespace) -> dict:
    """Prints table 2 row by row; returns {(threads, variant, phase): steps/s}."""
    from utils.datasets import default_dataset, load_dataset

    load_dataset(default_dataset(a.env_id), env_id=a.env_id, progress=False)  # cached first: not part of a timing
    n1, n2 = a.process_steps
    print(
        f"\n### Whole `python {a.algo}.py` processes: {a.env_id}, its default dataset, batch {a.process_batch}, "
        f"hidden {a.hidden_dims}; steps/s = ({n2} - {n1}) steps / difference of two runs' wall times\n"
    )
    print("| threads | variant | offline updates/s | online env steps/s (one update each) | paper-scale run |")
    print("|---|---|---|---|---|", flush=True)
    rates: dict = {}
    script = {v: f"{a.algo}.py" for v in a.process_variants}
    if a.before:
        script["before"] = str(load_before(a.before, a.algo, a.tmp)[1])
    with tempfile.TemporaryDirectory() as tmp:
        for threads in a.threads:
            for variant in script:
                for phase in ("offline", "online"):
                    seconds = []
                    for steps in (n1, n2):
                        offline, online = (steps, 0) if phase == "offline" else (0, steps)
                        cmd = [
                            sys.executable,
                            script[variant],
                            "--env-id",
                            a.env_id,
                            "--offline-steps",
                            str(offline),
                            "--online-steps",
                            str(online),
                            "--batch-size",
                            str(a.process_batch),
                            "--hidden-dims",
                            *map(str, a.hidden_dims),
                            "--threads",
                            str(threads),
                            "--device",
                            a.device,
                            "--eval-every",
                            str(10**9),
                            "--eval-episodes",
                            "1",
                            "--save-every",
                            str(10**9),
                            "--log-every",
                            str(10**9),
                            "--wandb-mode",
                            "disabled",
                            "--no-progress",
                            "--run-dir",
                            tmp,
                            "--run-name",
                            f"{threads}-{variant}-{phase}-{steps}",
                        ]
                        if variant != "before":  # older revisions have one batch size for both phases
                            cmd += [
                                "--precision",
                                "bf16" if "bf16" in variant else "fp32",
                                "--offline-batch-size",
                                str(a.process_batch),
                            ]
                            cmd += ["--compile", "on" if "compile" in variant else "off"]
                        t = time.perf_counter()
                        # each process compiles cold, in a cache of its own, so both run lengths pay the same
                        cache = str(Path(tmp) / f"inductor-{threads}-{variant}-{phase}-{steps}")
                        env = {**os.environ, "PYTHONPATH": str(ROOT), "TORCHINDUCTOR_CACHE_DIR": cache}
                        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env=env)
                        seconds.append(time.perf_counter() - t)
                    rates[threads, variant, phase] = (n2 - n1) / (seconds[1] - seconds[0])
                hours = (
                    PAPER_SCALE["offline_steps"] / rates[threads, variant, "offline"]
                    + PAPER_SCALE["online_steps"] / rates[threads, variant, "online"]
                ) / 3600
                print(
                    f"| {threads} | {variant} | {rates[threads, variant, 'offline']:.1f} | "
                    f"{rates[threads, variant, 'online']:.1f} | {hours:.2f} h |",
                    flush=True,
                )
    return rates


def guard_table(a: argparse.Namespace, obs_dim: int, act_dim: int, q_max: float | None) -> dict:
    """Table 3: what the divergence guard of utils/run/ costs. It scans each logged row for a non-finite
    losses/values entry (the values logging already read from the device) and checks every checkpoint's weights
    before writing them; both are timed here against the updates they sit between (fp32, one thread, the largest
    --batch-sizes, the scripts' default --log-every 1000 and AWAC's --save-every 50,000)."""
    from utils.run.checkpoints import all_finite, first_non_finite

    module = importlib.import_module(a.algo)
    torch.set_num_threads(1)
    batch, rng, n = max(a.batch_sizes), np.random.default_rng(0), 20_000
    buffer = module.ReplayBuffer(obs_dim, act_dim, n, a.device, 0)
    obs, next_obs = rng.normal(size=(n, obs_dim)), rng.normal(size=(n, obs_dim))
    buffer.add(
        obs=obs,
        action=rng.uniform(-1, 1, (n, act_dim)),
        reward=-rng.integers(0, 2, n),
        next_obs=next_obs,
        terminated=np.zeros(n),
    )
    args = module.Args(env_id=a.env_id, batch_size=batch, hidden_dims=tuple(a.hidden_dims), device=a.device)
    agent = (
        module.AWAC(obs_dim, act_dim, module.family_defaults(args), q_max)
        if a.algo == "awac"
        else module.SAC(obs_dim, act_dim, args)
    )
    for _ in range(20):
        metrics = agent.update(buffer.sample(batch))
    t = time.perf_counter()
    for _ in range(a.updates):
        metrics = agent.update(buffer.sample(batch))
    update_s = (time.perf_counter() - t) / a.updates
    row = dict(zip(metrics, torch.stack([v.float() for v in metrics.values()]).tolist()))
    t = time.perf_counter()
    for _ in range(10_000):
        first_non_finite(row)
    scan_s = (time.perf_counter() - t) / 10_000
    t = time.perf_counter()
    for _ in range(20):
        all_finite(agent.state_dict())
    save_s = (time.perf_counter() - t) / 20
    print(f"\n### Divergence guard of utils/run/: {a.algo}.py, batch {batch}, 1 thread, device {a.device}\n")
    print("| check | time | updates it sits between | their time | cost |")
    print("|---|---|---|---|---|")
    print(
        f"| logged row scanned (each logging step) | {scan_s * 1e6:.1f} us | 1,000 | {1000 * update_s:.1f} s | "
        f"{100 * scan_s / (1000 * update_s):.1e}% |"
    )
    print(
        f"| weights checked (each checkpoint) | {save_s * 1e3:.1f} ms | 50,000 | {50_000 * update_s:.0f} s | "
        f"{100 * save_s / (50_000 * update_s):.1e}% |",
        flush=True,
    )
    return {"scan_s": scan_s, "save_s": save_s, "update_s": update_s}


def main(argv: list[str] | None = None) -> None:
    """`python -m utils.speed [flags]`: prints the CPU kind, then tables 1-3 (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m utils.speed", description=__doc__.split("\n")[0])
    p.add_argument("--algo", choices=("awac", "sac_fd"), default="awac", help="the algorithm file to time")
    p.add_argument("--env-id", default="door-binary", help="task whose dimensions (and dataset, table 2) are used")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--hidden-dims", type=int, nargs="+", default=[256, 256])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--updates", type=int, default=200, help="updates per timed block")
    p.add_argument("--blocks", type=int, default=3, help="timed blocks per variant (the median is printed)")
    p.add_argument("--corl", type=Path, default=None, help="CORL's algorithms/finetune/awac.py, to time its update")
    p.add_argument(
        "--before",
        default=None,
        metavar="REV",
        help="also time the algorithm file as committed at this git revision (both tables)",
    )
    p.add_argument("--process", action=argparse.BooleanOptionalAction, default=True, help="print table 2")
    p.add_argument("--guard", action=argparse.BooleanOptionalAction, default=True, help="print table 3")
    p.add_argument("--process-variants", nargs="+", default=["fp32", "bf16"], choices=VARIANTS)
    p.add_argument("--process-batch", type=int, default=1024)
    p.add_argument("--process-steps", type=int, nargs=2, default=[500, 2500], metavar=("N1", "N2"))
    a = p.parse_args(argv)
    if a.corl and a.algo != "awac":
        p.error("--corl times CORL's AWAC: use it with --algo awac")
    torch.set_flush_denormal(True)  # as every training script does, before the first parallel op
    a.tmp = Path(tempfile.mkdtemp(prefix="awac-speed-"))
    from utils.envs import HAND_TASKS, make_env
    from utils.run.checks import check_device
    from utils.run.precision import auto_choices, cpu_kind

    check_device(a.device)
    print(cpu_kind())
    auto = auto_choices(types.SimpleNamespace(device=a.device, precision="auto", **PAPER_SCALE))
    print(
        f"The defaults on {a.device} here, for a paper-scale run: --precision auto runs {auto['precision']} "
        f"({auto['precision_reason']}), --compile auto {auto['compile']} ({auto['compile_reason']})"
    )
    env = make_env(a.env_id)
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    update_table(a, obs_dim, act_dim, 0.0 if a.env_id in HAND_TASKS else None)
    if a.guard:
        guard_table(a, obs_dim, act_dim, 0.0 if a.env_id in HAND_TASKS else None)
    if a.process:
        process_table(a)


if __name__ == "__main__":
    main()
