"""What `--precision auto` and `--compile auto` pick on this machine, and why: the choices are measured per kind of
hardware (docs/results/speed), and each run prints and records what it chose."""

from __future__ import annotations

import os
import platform
from dataclasses import replace
from pathlib import Path

import torch

from utils.run.checks import DEFAULT_ONLINE_STEPS

# What `--precision auto` and `--compile auto` pick, by hardware, from the update's speed measured on each kind
# (docs/results/speed): a choice is the default only where it was measured faster; unmeasured kinds stay eager, and
# fp32 except a GPU with native bf16 (its bf16 tensor cores).
AMX_COMPILE = {"fp32": "1.10-1.23", "bf16": "0.75-0.85"}  # the update alone, batch 1024, 1-2 threads
COMPILE_MIN_UPDATES = 10_000  # below this a run stays eager: a cold compile (5-45 s measured) would not pay back


def bf16_pays(device: str) -> tuple[bool, str]:
    """(whether bfloat16 autocast runs the update faster than fp32 on `device`, why), by hardware: a CPU with AMX
    yes (1.6-2.3x measured, quiet machine); a CPU with AVX-512-bf16 but no AMX no (0.71-0.74x measured, issue 31);
    another CPU no (no bf16 matmul units); a CUDA GPU with native bf16 yes (not measured here). `device` must pass
    check_device."""
    dev = torch.device(device)
    if dev.type == "cpu":
        if torch.cpu._is_amx_tile_supported():
            return True, "this CPU has AMX: bf16 measured 1.6-2.3x fp32"
        if torch.cpu._is_avx512_bf16_supported():
            return False, "this CPU has AVX-512-bf16 but no AMX: bf16 measured 0.71-0.74x fp32"
        return False, "this CPU has no bf16 matmul units"
    if dev.type == "cuda":
        with torch.cuda.device(dev):
            if torch.cuda.is_bf16_supported(including_emulation=False):
                return True, "this GPU has native bf16"
        return False, "this GPU has no native bf16"
    return False, f"bf16 not measured on {dev.type}"


def compile_pays(device: str, precision: str, updates: int) -> tuple[bool, str]:
    """(whether torch.compile of the losses pays on `device` at `precision` ("fp32"/"bf16") in a run of `updates`
    updates, why), by hardware: only fp32 on a CPU with AVX-512 and no AMX was measured to gain >= 1.1x (1.16x on 1
    thread, 1.29x on 2, issue 31); with AMX, 0.75-0.85x in bf16 (auto's precision there) and 1.10-1.23x in fp32 (the
    update alone; its whole-process gain not shown >= 1.1x), so off; other kinds were not measured, so off. Runs under
    COMPILE_MIN_UPDATES stay eager. `device` must pass check_device."""
    if updates < COMPILE_MIN_UPDATES:
        return False, f"{updates:,} updates: under {COMPILE_MIN_UPDATES:,}, compiling would not pay back"
    if torch.device(device).type != "cpu":
        return False, "compile not measured on this device"
    if torch.cpu._is_amx_tile_supported():
        return False, f"this CPU has AMX: compile measured {AMX_COMPILE[precision]}x eager in {precision}"
    if torch.cpu._is_avx512_supported() and precision == "fp32":
        return True, "this CPU has AVX-512 and no AMX: compile measured 1.16-1.29x fp32"
    return False, f"compile not measured to pay on this CPU in {precision}"


def resolve_precision(precision: str, device: str) -> str:
    """--precision as the update runs it: "fp32" or "bf16" as given; "auto" is bf16 where `bf16_pays(device)` and
    fp32 elsewhere. The learning check behind bf16 is docs/results/precision (door, 4 seed pairs)."""
    if precision != "auto":
        return precision
    return "bf16" if bf16_pays(device)[0] else "fp32"


def planned_updates(args) -> int:
    """The updates a run of `args` makes in all: offline plus online steps (DEFAULT_ONLINE_STEPS where None)."""
    online = args.online_steps if args.online_steps is not None else DEFAULT_ONLINE_STEPS
    return getattr(args, "offline_steps", 0) + getattr(args, "bc_pretrain_steps", 0) + online


def fast_path(args) -> tuple[bool, bool]:
    """(bf16, compile): how the update of `args` runs. --precision and --compile as given ("on"/"off"), "auto"
    resolved by `bf16_pays` and `compile_pays` for this device and the run's `planned_updates`."""
    precision = resolve_precision(args.precision, args.device)
    if args.compile == "auto":
        return precision == "bf16", compile_pays(args.device, precision, planned_updates(args))[0]
    return precision == "bf16", args.compile == "on"


def auto_choices(args) -> dict[str, str]:
    """What `--precision auto` and `--compile auto` pick for `args` on this machine, and why: config.json's "auto"
    entry, e.g. {"precision": "bf16", "precision_reason": "this CPU has AMX: ...", "compile": "off", ...}."""
    bf16, why = bf16_pays(args.device)
    precision = resolve_precision(args.precision, args.device)
    compiled, why_compile = compile_pays(args.device, precision, planned_updates(args))
    return dict(
        precision="bf16" if bf16 else "fp32",
        precision_reason=why,
        compile="on" if compiled else "off",
        compile_reason=why_compile,
    )


def resolve_fast_path(args, resumed: bool):
    """`args` with --precision and --compile "auto" resolved (what config.json and checkpoints record), after
    printing one line for each: its value and why, e.g. "precision: bf16 (auto: this CPU has AMX: ...)". Printed on
    stdout, so an error stays the one line on stderr; not for --eval-only, whose stdout is its result (JSON)."""
    auto = auto_choices(args)
    for name, given in (("precision", args.precision), ("compile", args.compile)):
        value = auto[name] if given == "auto" else given
        why = "the checkpoint's" if resumed else f"auto: {auto[name + '_reason']}" if given == "auto" else "the flag"
        if not args.eval_only:
            print(f"{name}: {value} ({why})", flush=True)
        args = replace(args, **{name: value})
    return args


def cpu_kind() -> str:
    """One line: this CPU's model and the flags that decide its fast path (AMX, AVX-512-bf16, AVX-512), as
    /proc/cpuinfo and torch's probes report them, e.g. "CPU: Intel(R) Xeon(R) Processor, 2 cores; AMX yes, ..."."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    probes = {
        "AMX": torch.cpu._is_amx_tile_supported(),
        "AVX-512-bf16": torch.cpu._is_avx512_bf16_supported(),
        "AVX-512": torch.cpu._is_avx512_supported(),
    }
    named = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in probes.items())
    listed = " ".join(sorted(f for f in flags if f.startswith(("amx", "avx512_bf16", "avx512f"))))
    model = model or platform.processor() or "unknown"
    return f"CPU: {model}, {os.cpu_count()} cores; {named} (flags: {listed or '-'})"
