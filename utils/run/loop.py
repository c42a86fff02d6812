"""`Run`: what a training run does besides the algorithm, in the order a script meets it (the protocol is in
utils/run/__init__.py): phases and their counters, logging, evaluations, checkpoints, and exact resume."""

from __future__ import annotations

import copy
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from utils.envs import episode_success, horizon, rng_state, set_rng_state
from utils.run.checkpoints import (
    Diverged,
    all_finite,
    check_resumable,
    diverged_message,
    first_non_finite,
    save_checkpoint,
    write_failed_fix,
)
from utils.run.checks import script_of
from utils.run.command import interrupted_message, run_banner, stop_on_signals
from utils.run.logger import Logger, phase_bar
from utils.run.run_dir import (
    check_run_files,
    keep_final,
    lock_run_dir,
    logged_rows,
    refuse_a_run_in,
    start_run_dir,
    strict_json,
)
from utils.writes import WriteFailed, write_text_atomic, writing_video


class Run:
    """What a training run does besides the algorithm: its directory, step counters, metrics log, progress bar,
    evaluations and checkpoints, with exact resume.

    `phases` maps each step counter to its budget in the order the phases run, e.g. {"offline_step": 25_000,
    "env_step": 500_000}; the global step is their sum, and `env_step` is the online phase's counter. `counters`
    names further counters the script keeps in `run.counters` (saved, not summed). `agent` has
    state_dict()/load_state_dict(); `gen` draws the training batches; `evaluate(video)` returns the eval/* metrics
    of the current policy (recording the first episode when `video` is a path); `buffer` (optional) has `pos`,
    `add(**columns)` and `last(n, end)`, and its online rows go into checkpoints; `env` (optional) is the training
    env, closed at the end. With `ckpt` (from load_checkpoint) the run resumes: counters, final metrics, the
    buffer's online rows, RNG states and the metrics.csv rows up to the checkpoint come back, and `finished` says
    whether anything is left to do.

    Checkpoints are taken at the end of a step and, in an online phase stepped by `after_env_step`, only at an
    episode boundary (with the env's generators), so a resumed run repeats the uninterrupted one exactly. Used as
    `with run:`; Ctrl-C or SIGTERM is honoured at the end of a step: the last such state is saved and
    KeyboardInterrupt raised. Exact on CPU with a fixed thread count while the online steps fit in the buffer
    (--buffer-size; resuming after the buffer wrapped reloads the same rows at other positions). A run ends with
    `finish()`, which writes final.json after the last checkpoint (a resume of a run killed in between writes it).

    Raises:
        ArgumentError: `ckpt` was written by an older version of the script (the missing entries named), or at
            another horizon; a new run's directory already holds a run (checked again under the lock).
        RunInUse: another living process holds the run directory.
        Diverged: from `after_step` (a non-finite logged loss or value), `save`/`finish` (non-finite weights) and
            the end of `with run` (an error raised while the weights are non-finite)."""

    def __init__(
        self,
        path: Path,
        args,
        ckpt: dict | None,
        agent,
        phases: dict[str, int],
        gen: torch.Generator,
        evaluate: Callable[[Path | None], dict],
        buffer=None,
        env=None,
        counters: tuple[str, ...] = (),
    ):
        self.path, self.args, self.ckpt, self.agent, self.phases = path, args, ckpt, agent, phases
        self.gen, self.evaluate_policy, self.buffer, self.env = gen, evaluate, buffer, env
        self.script, self.horizon = script_of(args), horizon(args.env_id)
        self.start, self.elapsed_before = time.time(), 0.0
        self.boundary, self.save_due, self.episode, self.goal = None, False, (0.0, 0), []
        path.mkdir(parents=True, exist_ok=True)
        self.lock = lock_run_dir(path)  # before any file of the run is read or written
        try:
            self._open(ckpt, counters)
        except BaseException as e:
            self.release()
            self.explain(e)
            raise
        if self.finished:  # nothing to do: `with run` will not follow
            self.release()

    def _open(self, ckpt: dict | None, counters: tuple[str, ...]) -> None:
        path, args, phases, buffer, gen, rows = self.path, self.args, self.phases, self.buffer, self.gen, None
        self.last_good = "none yet"
        if ckpt is None:
            refuse_a_run_in(path)  # again, under the lock: another process may have made a run here since setup()
            start_run_dir(path, args)
            self.counters, self.final = {**dict.fromkeys(counters, 0), **dict.fromkeys(phases, 0)}, {}
            self.finished, self.offline_done = False, False
        else:
            check_resumable(ckpt, args, self.script)
            self.counters, self.final, self.elapsed_before = ckpt["counters"], ckpt["final"], ckpt["elapsed_s"]
            step = sum(self.counters.get(p, 0) for p in phases)  # an old checkpoint may lack a phase's counter
            self.last_good = f"{args.checkpoint}, global step {step}"
            check_run_files(path, ckpt, step, args.checkpoint)
            for name in counters:
                self.counters.setdefault(name, 0)
            # Checkpoints before the run module (December 2026) kept no flags: their final metrics tell the state.
            self.finished = ckpt.get("finished", "eval/success_rate" in self.final)
            self.offline_done = ckpt.get("offline_done", "offline/eval/success_rate" in self.final)
            if buffer is not None and len(ckpt["online_data"]["reward"]):
                buffer.add(**{k: v.cpu().numpy() for k, v in ckpt["online_data"].items()})
            torch.set_rng_state(ckpt["torch_rng"].cpu())
            gen.set_state(ckpt["batch_rng"].cpu())
            if self.finished and any(self.counters[p] < n for p, n in phases.items()):
                self.extend()  # a finished run given more --online-steps
            if not self.finished:  # rows logged after the checkpoint are about to be redone
                rows = logged_rows(path, self.global_step())
        if self.finished and not (path / "final.json").is_file():  # killed between its last save and final.json
            self.write_final()
            print(f"note: {path / 'final.json'} was missing: rebuilt it from the checkpoint", file=sys.stderr)
        self.first_step = self.global_step()
        self.logger = None if self.finished else Logger(path, args, rows)

    def release(self) -> None:
        """Releases the run directory's lock (at the end of `with run`, or at once for a finished run)."""
        if self.lock is not None:
            os.close(self.lock)
            self.lock = None

    def extend(self) -> None:
        """Reopens a finished run whose budget grew: its final.json is kept as final-<global step>.json (never
        overwritten), the end-of-run metrics are dropped (the offline ones stay), and the online phase goes on from
        an episode reset with --seed (the last checkpoint need not be at an episode boundary): a continuation, not
        the run that the longer budget would have made from the start."""
        keep_final(self.path, self.global_step(), self.result())
        self.final = {k: v for k, v in self.final.items() if k.startswith("offline/")}
        self.finished = False
        write_text_atomic(self.path / "config.json", strict_json(asdict(self.args)))  # the new budget

    def global_step(self) -> int:
        """The sum of the phase counters: updates offline plus environment steps online."""
        return sum(self.counters[phase] for phase in self.phases)

    def elapsed(self) -> float:
        """Wall time of the run in seconds, over all the processes of a resumed run."""
        return self.elapsed_before + time.time() - self.start

    def result(self) -> dict[str, float]:
        """The final metrics (final.json's content) and `run_dir`."""
        return {**self.final, "run_dir": str(self.path)}

    def __enter__(self) -> Run:
        print(
            run_banner(self.script, self.path, self.counters if self.first_step else None), file=sys.stderr, flush=True
        )
        self.bar, self.bar_phase, self.postfix = tqdm(disable=True), None, {}
        self.stop, self.tick = stop_on_signals(), (time.time(), self.first_step)
        try:
            if self.first_step == 0 and sum(n for phase, n in self.phases.items() if phase != "env_step") > 0:
                self.evaluate("offline_step", 0)  # the policy before any training
            # A resumed run's bar starts in the phase it stopped in, e.g. online after its offline phase.
            self.phase_bar(next((p for p, n in self.phases.items() if self.counters[p] < n), list(self.phases)[-1]))
        except BaseException:  # `with` calls no __exit__ when __enter__ fails: restore handlers, close here
            self.__exit__(*sys.exc_info())
            raise
        return self

    def phase_bar(self, phase: str) -> tqdm:
        """The progress bar of `phase`: the previous phase's bar is closed (its line stays) on the first call for a
        new phase, which gets a bar of its own (`utils.run.logger.phase_bar`)."""
        if phase != self.bar_phase:
            self.bar.close()
            self.bar = phase_bar(phase, self.phases[phase], self.counters[phase], self.args.progress, self.postfix)
            self.bar_phase = phase
        return self.bar

    def __exit__(self, kind, error, traceback) -> None:
        self.explain(error)
        interrupted = None
        try:
            if kind is KeyboardInterrupt:  # at the end of a step: save the last state a resume can start from
                state = self.boundary if self.boundary is not None else self.snapshot()
                self.save(state)
                interrupted = interrupted_message(
                    self.args, self.path / "checkpoint.pt", self.counters, state["counters"]
                )
        finally:
            try:
                self.stop["restore"]()
                self.bar.close()
                self.logger.close()
                if self.env is not None:
                    self.env.close()
            finally:
                self.release()
        if interrupted:  # after the bar's last line, so that nothing redraws over it
            print(interrupted, file=sys.stderr, flush=True)
        # Non-finite weights fail somewhere between logging steps (torch.distributions refuses a NaN scale): say so.
        if (
            kind is not None
            and not issubclass(kind, (KeyboardInterrupt, Diverged))
            and not all_finite(self.agent.state_dict())
        ):
            first_line = (str(error).strip().splitlines() or [""])[0][:120]
            raise self.diverged(f"the weights (then {kind.__name__}: {first_line})", "non-finite") from error

    def explain(self, error: BaseException | None) -> None:
        """Completes a WriteFailed that does not yet say what to do: the last good checkpoint and how to go on."""
        if isinstance(error, WriteFailed) and not error.fix:
            error.fix = write_failed_fix(getattr(self, "last_good", "none yet"), self.path / "checkpoint.pt")

    def diverged(self, what: str, value) -> Diverged:
        """The error of a divergence found now (`utils.run.checkpoints.diverged_message`)."""
        return Diverged(diverged_message(self.global_step(), what, value, self.last_good))

    def log(self, row: dict, step: int | None = None) -> None:
        """Logs one row (metrics.csv, W&B) at `step`, by default the global step."""
        self.logger.log(row, self.global_step() if step is None else step)

    def log_episode(self, episode_return: float, length: int, goal: list[bool], env_step: int, step: int) -> None:
        """Logs a finished training episode at global `step`: return, length, `env_step` (the step that ended it)
        and, when the env reported goal flags (T,), its success by each of utils.envs.SUCCESS_DEFINITIONS."""
        success = {f"charts/{k}": v for k, v in episode_success(goal, self.args.env_id).items()} if goal else {}
        self.log(
            {
                "charts/episodic_return": episode_return,
                "charts/episodic_length": length,
                **success,
                "charts/env_step": env_step,
            },
            step,
        )

    def evaluate(self, phase: str, step: int) -> dict[str, float]:
        """Evaluates the policy and logs the result; with --capture-video, also a video of the first episode."""
        name = "online" if phase == "env_step" else phase.removesuffix("_step")
        video = self.path / "videos" / f"{name}-{step:07d}.mp4" if self.args.capture_video else None
        with writing_video(video):  # no partial mp4 left
            result = self.evaluate_policy(video)
        self.log({**result, f"charts/{phase}": step})
        if video is not None:
            self.logger.log_video(video, self.global_step())
        self.postfix = {
            k.removeprefix("eval/"): f"{v:.2f}"
            for k, v in result.items()
            if k in ("eval/success_final", "eval/normalized_score")
        }
        self.bar.set_postfix(self.postfix)
        return result

    def snapshot(self, env_rng: dict | None = None) -> dict:
        """The run's whole state now, copied: a resume from it redoes the next steps exactly. `env_rng`: the env's
        generators before the reset that starts the next episode (None: reset with the seed)."""
        return copy.deepcopy(
            {
                "script": self.script,
                "agent": self.agent.state_dict(),
                "args": asdict(self.args),
                "counters": self.counters,
                "final": self.final,
                "finished": self.finished,
                "horizon": self.horizon,
                "offline_done": self.offline_done,
                "elapsed_s": self.elapsed(),
                "buffer_end": getattr(self.buffer, "pos", None),
                "torch_rng": torch.get_rng_state(),
                "batch_rng": self.gen.get_state(),
                "env_rng": env_rng,
                "logged_rows": len(self.logger.rows),  # a resume checks that metrics.csv still holds them
            }
        )

    def save(self, state: dict, name: str = "checkpoint.pt") -> None:
        """Writes `state` with the online rows of the buffer it had (what a resume cannot rebuild) atomically."""
        step = sum(state["counters"][p] for p in self.phases)
        if not all_finite(state["agent"]):  # never replace the last good checkpoint by a broken one
            raise self.diverged(f"the weights to be saved at global step {step}", "non-finite")
        online = (
            {}
            if self.buffer is None
            else self.buffer.last(state["counters"].get("env_step", 0), end=state["buffer_end"])
        )
        try:
            save_checkpoint(
                {**state, "online_data": {k: torch.as_tensor(v) for k, v in online.items()}}, self.path / name
            )
        except WriteFailed as e:
            self.explain(e)
            raise
        if name == "checkpoint.pt":
            self.last_good = f"{self.path / name}, global step {step}"

    def after_step(
        self, phase: str, metrics: dict | None, n: int = 1, episode_end: bool | None = None, env_rng: dict | None = None
    ) -> None:
        """Counts `n` steps of `phase`, then does what falls due: logs `metrics` (None: no update this step)
        every log_every steps, evaluates every eval_every (the last one is finish()'s), checkpoints every
        save_every (`episode_end` None: any step end is a consistent state; False/True: only an episode's end,
        whose state is kept as `boundary`), and raises KeyboardInterrupt if Ctrl-C or SIGTERM came."""
        before, a = self.counters[phase], self.args
        self.counters[phase] += n
        self.phase_bar(phase).update(n)
        step = self.counters[phase]
        if metrics is not None and step // a.log_every > before // a.log_every:
            now, global_step = time.time(), self.global_step()
            sps = (global_step - self.tick[1]) / (now - self.tick[0])
            row = self.logger.log({**metrics, f"charts/{phase}": step, "charts/SPS": sps}, global_step)
            self.tick = (now, global_step)
            # The divergence guard reads what logging read anyway: no extra device sync per update.
            bad = first_non_finite(row)
            if bad is not None:
                raise self.diverged(bad, row[bad])
        if step // a.eval_every > before // a.eval_every and step < self.phases[phase]:
            self.evaluate(phase, step)
        self.save_due = self.save_due or step // a.save_every > before // a.save_every
        if episode_end:
            self.boundary = self.snapshot(env_rng)
        if self.save_due and episode_end is not False:
            self.save(self.boundary if episode_end else self.snapshot())
            self.save_due = False
        if self.stop["requested"]:
            raise KeyboardInterrupt

    def end_offline(self) -> None:
        """Evaluates the pretrained policy as step 0 of the online phase, once, and keeps it as offline/eval/*;
        checkpoint_offline.pt keeps the agent for --eval-only and analysis."""
        if not self.offline_done:
            result = self.evaluate("env_step", 0)
            self.final.update({f"offline/{k}": v for k, v in result.items()}, **{"offline/wall_time_s": self.elapsed()})
            self.offline_done = True
            self.save(self.snapshot())
            self.save(self.snapshot(), "checkpoint_offline.pt")

    def start_online(self, reset_env: bool = True) -> np.ndarray | None:
        """Starts the online phase; with `reset_env`, resets the env (seeded, or to the checkpoint's generators)
        for `after_env_step` and returns the first observation."""
        self.phase_bar("env_step")
        self.tick = (time.time(), self.global_step())
        if not reset_env:
            return None
        env, env_rng = self.env, self.ckpt["env_rng"] if self.ckpt and self.counters["env_step"] else None
        if env_rng is None:
            obs, _ = env.reset(seed=self.args.seed)
        else:
            set_rng_state(env, env_rng)
            obs, _ = env.reset()
        self.boundary, self.save_due, self.episode, self.goal = self.snapshot(env_rng), False, (0.0, 0), []
        return obs

    def after_env_step(
        self, next_obs: np.ndarray, reward: float, done: bool, metrics: dict | None, info: dict | None = None
    ) -> np.ndarray:
        """`after_step` for one environment step: logs a finished episode (`log_episode`, with the goal flags of
        the env's `info["success"]`) and resets the env. Returns the next observation to act on."""
        self.episode = (self.episode[0] + float(reward), self.episode[1] + 1)
        if info is not None and "success" in info:
            self.goal.append(bool(info["success"]))
        env_rng = None
        if done:
            self.log_episode(
                self.episode[0], self.episode[1], self.goal, self.counters["env_step"] + 1, self.global_step() + 1
            )
            env_rng = rng_state(self.env)
            next_obs, _ = self.env.reset()
            self.episode, self.goal = (0.0, 0), []
        self.after_step("env_step", metrics, episode_end=done, env_rng=env_rng)
        return next_obs

    def finish(self) -> None:
        """The final evaluation (once), SPS and wall time, and the last checkpoint. Without an online phase (no
        end_offline), the final evaluation is also the offline result."""
        last = list(self.phases)[-1]
        if not self.finished:
            result = self.evaluate(last, self.counters[last])
            self.final.update(result)
            if not self.offline_done:
                self.final.update({f"offline/{k}": v for k, v in result.items()})
            self.finished = True
        self.final.update(
            {
                "charts/SPS": (self.global_step() - self.first_step) / (time.time() - self.start),
                "wall_time_s": self.elapsed(),
            }
        )
        self.save(self.snapshot())
        self.write_final()

    def write_final(self) -> None:
        """final.json, atomically, after the last checkpoint: a directory holds a finished run exactly when it
        has one."""
        write_text_atomic(self.path / "final.json", strict_json(self.result()))
