"""Issue 23, part 1: is there a cheaper way than fp32 to cut the advantage-weight error of `--precision bf16`?

    python docs/results/precision/error_probe.py CHECKPOINT [--blocks 30] [--updates 8] [--batches 10] [--micro]

Loads a trained AWAC door checkpoint (2x256 actor and twin critics), samples 1,024 door-binary transitions with a
fixed seed, and for each precision scheme computes the advantages A = min_i Q_i(s, a) - min_i Q_i(s, mean of
pi(.|s)), clipped at 0.5, and the weights w = B * softmax(A / 0.5), exactly as `awac.AWAC.advantage_weights` does,
then compares them with fp32's: median and 99th percentile of |dA|, and mean |dw| / mean w in %. Then it times the
full `AWAC.update` of every scheme at batch 1024 on one thread, in interleaved blocks (A, B, C, A, B, C, ...), and
prints each scheme's median updates/s and its ratio to fp32's.

How the schemes run (each is a real training update, not an emulation; awac.py is not modified):
  * "bf16" layers run as awac.py runs them: under torch.autocast("cpu", torch.bfloat16), bf16 operands and a bf16
    output (the next layer's input).
  * "bf32" layers are float32 matmuls with torch.backends.mkldnn.matmul.fp32_precision = "bf16" (PyTorch >= 2.9):
    oneDNN rounds both operands to bf16, multiplies on AMX with float32 accumulation and writes a float32 output.
    It is the only CPU route found to "bf16 inputs, fp32 output": torch.mm/bmm/baddbmm/addmm(out_dtype=float32)
    exist but raise NotImplementedError on CPU in torch 2.13 (CUDA only; torch.matmul has no out_dtype).
  * "bf16x3" layers split x = x_hi + x_lo and W = W_hi + W_lo (hi = bf16 rounding, lo = bf16 of the remainder) and
    sum x_hi W_hi + x_hi W_lo + x_lo W_hi in float32: three bf32 baddbmm calls, bf32(x, W) + bf32(x, W - bf16(W))
    + bf32(x - bf16(x), W), since bf32's own rounding of the operands is the split. "xsplit" and "wsplit" keep two
    of the three products (x exact and W rounded, or the reverse): the error probe's decomposition, and a cheaper
    scheme.
  * bf32 and bf16x3 layers have a custom backward: both gradient matmuls in bf32.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import awac  # noqa: E402
from utils.datasets import load_dataset  # noqa: E402

MKL = torch.backends.mkldnn.matmul


@contextlib.contextmanager
def bf32(enabled: bool = True):
    """float32 matmuls on oneDNN with bf16 operands, float32 accumulation and output (fpmath mode bf16)."""
    if not enabled:
        yield
        return
    old = MKL.fp32_precision
    MKL.fp32_precision = "bf16"
    try:
        yield
    finally:
        MKL.fp32_precision = old


class LowMatmul(torch.autograd.Function):
    """baddbmm(bias, x, w) with a float32 output: mode "bf32" (bf16 operands), "bf16x3" (both operands split, three
    bf16 products), "xsplit" (x split, W rounded: x_hi W_hi + x_lo W_hi) or "wsplit" (x rounded, W split: x_hi W_hi +
    x_hi W_lo), two bf16 products each; backward: both gradient matmuls in bf32."""

    @staticmethod
    def forward(ctx, bias, x, w, mode):
        ctx.save_for_backward(x, w)
        add_mm, add_mm_ = (torch.baddbmm, torch.Tensor.baddbmm_) if x.dim() == 3 else (torch.addmm, torch.Tensor.addmm_)
        with bf32():
            if mode == "bf32":
                return add_mm(bias, x, w)
            # bf32 rounds each operand to bf16 (round to nearest even, as .bfloat16()), so x itself serves as x_hi
            # and W as W_hi, and the remainders x - bf16(x), W - bf16(W) are rounded to x_lo, W_lo
            y = add_mm(bias, x, w)
            if mode in ("bf16x3", "wsplit"):
                add_mm_(y, x, w - w.bfloat16())
            if mode in ("bf16x3", "xsplit"):
                add_mm_(y, x - x.bfloat16(), w)
            return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        with bf32():
            gx = torch.matmul(g, w.transpose(-1, -2)) if ctx.needs_input_grad[1] else None
            gw = torch.matmul(x.transpose(-1, -2), g) if ctx.needs_input_grad[2] else None
        gb = (g.sum(-2, keepdim=True) if g.dim() == 3 else g.sum(0)) if ctx.needs_input_grad[0] else None
        return gb, gx, gw, None


def hidden_layer(layer: awac.EnsembleLinear | torch.nn.Linear, x: torch.Tensor, mode: str) -> torch.Tensor:
    """One hidden layer (a critic's EnsembleLinear or the actor's Linear) + ReLU in `mode`: fp32, bf16 (autocast, as
    awac.py), fp16 (autocast), or a LowMatmul mode (bf32, bf16x3, xsplit, wsplit)."""
    if mode in ("bf16", "fp16"):
        with torch.autocast("cpu", torch.bfloat16 if mode == "bf16" else torch.float16):
            return F.relu(layer(x))
    x = x.float()
    if mode == "fp32":
        return F.relu(layer(x))
    w = layer.weight.t() if isinstance(layer, torch.nn.Linear) else layer.weight
    return F.relu(LowMatmul.apply(layer.bias, x, w, mode))


class SchemeTwinQ(awac.TwinQ):
    """awac.TwinQ whose hidden layers each run in a mode of `hidden_layer`; `modes` can be given per call."""

    modes: tuple[str, ...] = ("fp32", "fp32")

    def forward(self, obs, action, modes=None):
        x = torch.cat([obs, action], -1).expand(2, -1, -1)
        for layer, mode in zip(self.hidden, modes or self.modes):
            x = hidden_layer(layer, x, mode)
        q = self.out(x.float()).squeeze(-1)
        return q if self.q_max is None else q.clamp(max=self.q_max)


@dataclass
class Scheme:
    """How one update runs. critic: modes of the critics' hidden layers in every forward (loss, target, V(s));
    v: modes of the V(s) forward if different; adv_q: if given, Q(s, a) for the advantage is recomputed in a
    no-grad forward with these modes (V(s) too, unless `v` is given); target: modes of the target critics (default:
    `critic`; they do not enter the advantage); actor: the mode of all its hidden layers, or
    one per layer; global_bf32: every float32 matmul of the update (all layers, both passes) in bf32."""

    name: str
    critic: tuple[str, ...] = ("fp32", "fp32")
    target: tuple[str, ...] | None = None
    v: tuple[str, ...] | None = None
    adv_q: tuple[str, ...] | None = None
    actor: str | tuple[str, ...] = "fp32"
    global_bf32: bool = False
    original: str | None = None  # "fp32" / "bf16": awac.AWAC itself, unchanged
    note: str = ""


class SchemeAWAC(awac.AWAC):
    """awac.AWAC with the critics' and actor's precision set by a Scheme (the math is awac.py's)."""

    def __init__(self, scheme: Scheme, *a, **k):
        super().__init__(*a, **k)
        self.scheme = scheme
        for net, modes in ((self.critic, scheme.critic), (self.target_critic, scheme.target or scheme.critic)):
            net.__class__ = SchemeTwinQ
            net.modes = modes
        self.actor.net.bf16 = False
        if scheme.actor != "fp32":
            mlp = self.actor.net
            linears = [m for m in mlp if isinstance(m, torch.nn.Linear)][:-1]
            modes = (scheme.actor,) * len(linears) if isinstance(scheme.actor, str) else scheme.actor

            def forward(x, mlp=mlp, linears=linears, modes=modes):
                for layer, mode in zip(linears, modes):
                    x = hidden_layer(layer, x, mode)
                return mlp[-1](x.float())

            mlp.forward = forward

    @torch.no_grad()
    def advantage_weights(self, obs, q_data, dist):
        s, a = self.scheme, self.args
        if s.adv_q is not None:
            q_data = self.critic(obs, self._batch_action, s.adv_q)  # an extra forward, no gradient
        v_modes = s.v or s.adv_q or s.critic
        q_pi = self.critic(obs, dist.mean if a.value_from_mean else dist.sample().clamp(-1.0, 1.0), v_modes)
        advantage = q_data.min(0).values - q_pi.min(0).values if a.min_q_advantage else q_data[0] - q_pi[0]
        if a.advantage_clip < math.inf:
            advantage = advantage.clamp(max=a.advantage_clip)
        return advantage, awac.awac_weights(advantage, a.beta, a.weighting, a.max_weight)

    def compute_losses(self, batch):
        self._batch_action = batch["action"]  # for a recomputed Q(s, a) (adv_q)
        return super().compute_losses(batch)

    def update(self, batch):
        with bf32(self.scheme.global_bf32):
            return super().update(batch)


SCHEMES = [
    Scheme("(a) fp32", original="fp32"),
    Scheme("(b) bf16, today (all hidden layers autocast)", original="bf16"),
    Scheme("(b') (b) as this probe re-implements it (its overhead)", critic=("bf16", "bf16"), actor="bf16"),
    Scheme("(c) critics' hidden layers bf16x3, actor bf16", critic=("bf16x3", "bf16x3"), actor="bf16"),
    Scheme("(d) bf16, V(s) forward fp32", critic=("bf16", "bf16"), v=("fp32", "fp32"), actor="bf16"),
    Scheme("(e) bf16, critics' last hidden layer bf16x3", critic=("bf16", "bf16x3"), actor="bf16"),
    Scheme("(f) bf16, critics' first layer fp32 (cat(obs, a) unrounded)", critic=("fp32", "bf16"), actor="bf16"),
    Scheme("(g) bf16, critics' first layer bf16x3", critic=("bf16x3", "bf16"), actor="bf16"),
    Scheme(
        "(h) critics' hidden layers bf32 (bf16 operands, fp32 out), actor bf16", critic=("bf32", "bf32"), actor="bf16"
    ),
    Scheme("(i) bf32 everywhere (fpmath bf16 for every fp32 matmul)", global_bf32=True),
    Scheme(
        "(j) bf16 + advantage's two Q forwards fp32 (extra Q(s,a))",
        critic=("bf16", "bf16"),
        adv_q=("fp32", "fp32"),
        actor="bf16",
    ),
    Scheme(
        "(k) bf16 + advantage's two Q forwards bf16x3 (extra Q(s,a))",
        critic=("bf16", "bf16"),
        adv_q=("bf16x3", "bf16x3"),
        actor="bf16",
    ),
    Scheme(
        "(l) bf16 + advantage's two Q forwards bf32 (extra Q(s,a))",
        critic=("bf16", "bf16"),
        adv_q=("bf32", "bf32"),
        actor="bf16",
    ),
    Scheme("(m) fp16 autocast (critics' and actor's hidden layers)", critic=("fp16", "fp16"), actor="fp16"),
    Scheme(
        "(n) critics (fp32, xsplit) for Q(s,a) and V(s), target critics bf16, actor bf16",
        critic=("fp32", "xsplit"),
        target=("bf16", "bf16"),
        actor="bf16",
    ),
    Scheme(
        "(o) as (n), actor (fp32, xsplit) too",
        critic=("fp32", "xsplit"),
        target=("bf16", "bf16"),
        actor=("fp32", "xsplit"),
    ),
    Scheme(
        "(r) as (n), critics' first layer bf32 instead of fp32",
        critic=("bf32", "xsplit"),
        target=("bf16", "bf16"),
        actor="bf16",
    ),
    Scheme(
        "(p) critics bf16x3 for Q(s,a) and V(s), target critics bf16, actor bf16",
        critic=("bf16x3", "bf16x3"),
        target=("bf16", "bf16"),
        actor="bf16",
    ),
    Scheme(
        "(q) bf16 + advantage's two Q forwards (fp32, xsplit) (extra Q(s,a))",
        critic=("bf16", "bf16"),
        adv_q=("fp32", "xsplit"),
        actor="bf16",
    ),
    Scheme("diag: bf16 critics, fp32 actor", critic=("bf16", "bf16"), actor="fp32", note="diagnostic"),
    Scheme("diag: fp32 critics, bf16 actor", critic=("fp32", "fp32"), actor="bf16", note="diagnostic"),
    Scheme("diag: critics' layer 1 bf32, layer 2 fp32; fp32 actor", critic=("bf32", "fp32"), note="diagnostic"),
    Scheme(
        "diag: critics' layer 1 input cat(obs, a) rounded only; fp32 actor",
        critic=("wsplit", "fp32"),
        note="diagnostic",
    ),
    Scheme("diag: critics' layer 1 weights rounded only; fp32 actor", critic=("xsplit", "fp32"), note="diagnostic"),
    Scheme("diag: critics' layer 2 input h1 rounded only; fp32 actor", critic=("fp32", "wsplit"), note="diagnostic"),
    Scheme("diag: critics' layer 2 weights rounded only; fp32 actor", critic=("fp32", "xsplit"), note="diagnostic"),
    Scheme("diag: critics' layer 2 bf32; fp32 actor", critic=("fp32", "bf32"), note="diagnostic"),
    Scheme("diag: critics' layer 2 bf16 (autocast); fp32 actor", critic=("fp32", "bf16"), note="diagnostic"),
    Scheme("diag: critics (bf32, xsplit); fp32 actor", critic=("bf32", "xsplit"), note="diagnostic"),
    Scheme("diag: critics (bf16x3, bf16x3); fp32 actor", critic=("bf16x3", "bf16x3"), note="diagnostic"),
]


def build(scheme: Scheme, ckpt: dict) -> awac.AWAC:
    raw = dict(ckpt["args"])
    raw["precision"] = scheme.original or "fp32"
    args = awac.family_defaults(awac.Args(**raw))
    if scheme.original:
        agent = awac.AWAC(obs_dim=39, act_dim=28, args=args, q_max=0.0)
    else:
        agent = SchemeAWAC(scheme, obs_dim=39, act_dim=28, args=args, q_max=0.0)
    agent.load_state_dict(ckpt["agent"])
    return agent


def sample(data: dict, n: int, seed: int) -> dict[str, torch.Tensor]:
    rows = np.random.default_rng(seed).choice(len(data["rewards"]), n, replace=False)
    cols = dict(obs="observations", action="actions", reward="rewards", next_obs="next_observations")
    batch = {k: torch.as_tensor(np.asarray(data[v][rows], dtype=np.float32)) for k, v in cols.items()}
    batch["terminated"] = torch.as_tensor(data["terminals"][rows].astype(np.float32))
    return batch


@torch.no_grad()
def advantages(agent: awac.AWAC, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, w) as compute_losses produces them: Q(s, a) from the loss forward, pi(.|s) from the actor forward."""
    scheme = getattr(agent, "scheme", None)
    with bf32(bool(scheme and scheme.global_bf32)):
        if isinstance(agent, SchemeAWAC):
            agent._batch_action = batch["action"]
        q = agent.critic(batch["obs"], batch["action"])
        return agent.advantage_weights(batch["obs"], q, agent.actor(batch["obs"]))


def errors(a_ref, w_ref, a, w) -> tuple[float, float, float]:
    da = (a - a_ref).abs()
    return float(da.median()), float(torch.quantile(da, 0.99)), float(100 * (w - w_ref).abs().mean() / w_ref.mean())


def time_updates(agents: dict, data: dict, blocks: int, updates: int, batch_size: int) -> dict[str, list[float]]:
    """updates/s of each agent per block, the agents interleaved within every block."""
    batches = [sample(data, batch_size, 1000 + i) for i in range(updates)]
    for agent in agents.values():  # warm-up (oneDNN primitive caches, allocator)
        for b in batches[:3]:
            agent.update(b)
    rates = {k: [] for k in agents}
    for _ in range(blocks):
        for name, agent in agents.items():
            t0 = time.perf_counter()
            for b in batches:
                agent.update(b)
            rates[name].append(updates / (time.perf_counter() - t0))
    return rates


def matmul_micro(blocks: int = 15, reps: int = 40) -> None:
    """The critics' 256x256 layer alone, (2, 1024, 256) x (2, 256, 256) + bias + ReLU, forward only, interleaved
    blocks: what each mode costs relative to fp32, and what splitting x alone costs."""
    torch.manual_seed(0)
    layer = awac.EnsembleLinear(2, 256, 256)
    x = torch.relu(torch.randn(2, 1024, 256))
    fns = {m: (lambda m=m: hidden_layer(layer, x, m)) for m in ("fp32", "bf16", "bf32", "xsplit", "bf16x3", "fp16")}
    fns["split x only: x - bf16(x)"] = lambda: x - x.bfloat16()
    times = {k: [] for k in fns}
    with torch.no_grad():
        for f in fns.values():
            f()
        for _ in range(blocks):
            for k, f in fns.items():
                t0 = time.perf_counter()
                for _ in range(reps):
                    f()
                times[k].append((time.perf_counter() - t0) / reps)
    ref = statistics.median(times["fp32"])
    print("\n| 256x256 layer + ReLU, batch 1024, both critics, forward | median time / fp32's |\n|---|---|")
    for k, v in times.items():
        print(f"| {k} | {statistics.median(v) / ref:.2f} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint")
    p.add_argument("--seed", type=int, default=0, help="seed of the 1,024-transition batch")
    p.add_argument("--batches", type=int, default=10, help="also average the weight error over this many batches")
    p.add_argument("--blocks", type=int, default=30)
    p.add_argument("--updates", type=int, default=8, help="updates per timed block")
    p.add_argument("--no-speed", action="store_true")
    p.add_argument("--micro", action="store_true", help="also time one 256x256 layer in each mode")
    a = p.parse_args()
    torch.set_num_threads(1)
    ckpt = torch.load(a.checkpoint, weights_only=True)
    data = load_dataset("door-binary", env_id="door-binary", progress=False)
    print(
        f"checkpoint {a.checkpoint}: run {ckpt['args'].get('run_name')}, precision {ckpt['args']['precision']}, "
        f"counters {ckpt['counters']}; torch {torch.__version__}"
    )

    agents = {s.name: build(s, ckpt) for s in SCHEMES}
    ref = agents["(a) fp32"]
    # the probe's own re-implementation must reproduce awac.py where they coincide
    b0 = sample(data, 1024, a.seed)
    check = {
        "fp32": (Scheme("x", critic=("fp32", "fp32")), "(a) fp32"),
        "bf16": (Scheme("x", critic=("bf16", "bf16"), actor="bf16"), "(b) bf16, today (all hidden layers autocast)"),
    }
    for label, (s, orig) in check.items():
        mine, theirs = advantages(build(s, ckpt), b0), advantages(agents[orig], b0)
        assert torch.equal(mine[0], theirs[0]), f"re-implemented {label} differs from awac.py's"

    results = {}
    for name, agent in agents.items():
        errs = []
        for i in range(a.batches):
            batch = sample(data, 1024, a.seed + i)
            errs.append(errors(*advantages(ref, batch), *advantages(agent, batch)))
        results[name] = dict(med=errs[0][0], p99=errs[0][1], werr=errs[0][2], werr_mean=np.mean([e[2] for e in errs]))
    a0, w0 = advantages(ref, b0)
    with torch.no_grad():
        q0 = ref.critic(b0["obs"], b0["action"])
    print(
        f"batch seed {a.seed}: fp32 Q(s,a) mean {float(q0.mean()):.1f} std {float(q0.std()):.1f}; A mean "
        f"{float(a0.mean()):.3f} std {float(a0.std()):.3f}, {float((a0 >= 0.5).float().mean()) * 100:.0f}% at the "
        f"clip; w max {float(w0.max()):.2f}"
    )

    speed = {}
    if not a.no_speed:
        timed = {n: build(s, ckpt) for n, s in zip(agents, SCHEMES) if not s.note}
        rates = time_updates(timed, data, a.blocks, a.updates, 1024)
        med = {k: statistics.median(v) for k, v in rates.items()}
        # the ratio per block (same block, neighbouring in time), then its median: robust to load drifting
        ratio = {k: statistics.median([r / f for r, f in zip(rates[k], rates["(a) fp32"])]) for k in rates}
        speed = {k: (med[k], ratio[k]) for k in rates}

    if a.micro:
        matmul_micro()

    print(
        f"\n| scheme | median abs dA | p99 abs dA | weight error % | weight error %, mean of {a.batches} batches "
        "| updates/s ratio vs fp32 (batch 1024, 1 thread) | updates/s (median) | kept? (>= 1.7x) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        s = speed.get(name)
        kept = "-" if s is None else ("ref" if name == "(a) fp32" else "yes" if s[1] >= 1.7 else "no")
        rate = "-" if s is None else f"{s[1]:.2f}x"
        ups = "-" if s is None else f"{s[0]:.1f}"
        print(
            f"| {name} | {r['med']:.4f} | {r['p99']:.4f} | {r['werr']:.2f} | {r['werr_mean']:.2f} | {rate} | "
            f"{ups} | {kept} |"
        )


if __name__ == "__main__":
    main()
