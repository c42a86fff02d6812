"""The fast update path of awac.py and sac_fd.py: bf16 hidden layers that keep the advantage weights accurate,
torch.compile, metrics that stay on the device, and denormal flushing that reaches every thread."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import ROOT

import awac
import sac_fd

TINY = dict(
    batch_size=32, hidden_dims=(32, 32), eval_episodes=1, log_every=50, wandb_mode="disabled", progress=False, threads=1
)


def _door_agents(door_human):
    """fp32 and bf16 AWAC agents with the same weights, and a batch of 1024 real door transitions. The critics'
    output layer is scaled so Q spans the hand tasks' range (here mean -48, std 3, as after training) instead of
    sitting near 0 as at initialization: the precision question is about resolving differences of such values."""
    torch.manual_seed(0)
    rows = np.random.default_rng(0).integers(0, len(door_human["rewards"]), 1024)
    obs = torch.as_tensor(door_human["observations"][rows], dtype=torch.float32)
    action = torch.as_tensor(door_human["actions"][rows], dtype=torch.float32).clamp(-1, 1)
    agents = {p: awac.AWAC(39, 28, awac.family_defaults(awac.Args(precision=p)), q_max=0.0) for p in ("fp32", "bf16")}
    with torch.no_grad():
        agents["fp32"].critic.out.weight.mul_(100.0)
        agents["fp32"].critic.out.bias.fill_(-50.0)
    agents["bf16"].load_state_dict(agents["fp32"].state_dict())
    return agents, obs, action


def test_bf16_advantage_weights_stay_close_to_fp32(door_human):
    """Tolerances, and why: bf16 rounds each hidden activation to 8 significant bits (relative error <= 2^-9);
    with the output layer in float32 these errors reach Q(s, a) and V(s) as ~0.01-0.08 here, and an error d in
    A changes a weight by exp(d / beta). We require |dA| <= 0.15 for every sample (a weight factor within
    exp(0.3) = 1.35 at beta = 0.5) and a mean |dw| <= 0.01 (1% of the mean weight, 1). Measured here: max |dA|
    0.079, mean |dw| 0.0045. Running the output layer in bf16 too (Q near -50 resolved to 0.25) fails both:
    max |dA| 0.27, mean |dw| 0.021. This guards the design; it does not prove learning is unchanged: on critics
    trained on door (README, precision check) the errors are larger (mean |dw| 0.06-0.08, against 0.29 with bf16
    outputs), and the learning check is the evidence that they do not matter."""
    agents, obs, action = _door_agents(door_human)
    out = {}
    for p, agent in agents.items():
        with torch.no_grad():
            q = agent.critic(obs, action)
            out[p] = (q, *agent.advantage_weights(obs, q, agent.actor(obs)))
    (q32, a32, w32), (q16, a16, w16) = out["fp32"], out["bf16"]
    assert q16.dtype == a16.dtype == w16.dtype == torch.float32, "what follows the hidden layers stays float32"
    assert -60 < q32.mean() < -40 and a32.std() > 0.1, "the setting must be the one the tolerance is about"
    assert not torch.equal(q16, q32), "bf16 must actually run"
    assert (a16 - a32).abs().max() <= 0.15
    assert (w16 - w32).abs().mean() <= 0.01
    assert w16.sum().item() == pytest.approx(1024, rel=1e-4)


def test_bf16_runs_only_the_hidden_layers_in_bf16():
    seen = []
    agent = awac.AWAC(5, 3, awac.family_defaults(awac.Args(precision="bf16", hidden_dims=(16, 16))), q_max=None)
    hooks = [
        m.register_forward_hook(lambda m, i, o: seen.append((type(m).__name__, o.dtype)))
        for m in [*agent.actor.net, *agent.critic.hidden, agent.critic.out]
        if not isinstance(m, torch.nn.ReLU)
    ]
    obs, action = torch.randn(8, 5), torch.rand(8, 3) * 2 - 1
    assert agent.critic(obs, action).dtype == torch.float32
    assert agent.actor.log_prob(obs, action).dtype == torch.float32
    for h in hooks:
        h.remove()
    # actor: Linear, Linear (bf16), output Linear (fp32); critic: 2 hidden (bf16), output (fp32)
    assert [d for _, d in seen] == [torch.bfloat16] * 2 + [torch.float32] + [torch.bfloat16] * 2 + [torch.float32]


@pytest.mark.parametrize("module", [awac, sac_fd])
def test_update_returns_device_tensors_read_only_when_logged(module):
    args = module.Args(hidden_dims=(16,), batch_size=8)
    agent = module.AWAC(4, 2, awac.family_defaults(args), q_max=None) if module is awac else module.SAC(4, 2, args)
    batch = {
        "obs": torch.randn(8, 4),
        "action": torch.rand(8, 2) * 2 - 1,
        "reward": -torch.ones(8),
        "next_obs": torch.randn(8, 4),
        "terminated": torch.zeros(8),
    }
    metrics = agent.update(batch)
    assert metrics and all(
        isinstance(v, torch.Tensor) and v.ndim == 0 and not v.requires_grad for v in metrics.values()
    )


@pytest.mark.parametrize("module", [awac, sac_fd])
def test_bf16_and_compiled_runs_reach_updates_in_both_phases(module, tmp_path, small_pen_binary):
    _, path = small_pen_binary
    final = module.train(
        module.Args(
            env_id="pen-binary",
            dataset=str(path),
            offline_steps=100,
            online_steps=100,
            eval_every=10**6,
            save_every=10**6,
            run_dir=str(tmp_path),
            run_name="fast",
            precision="bf16",
            compile=True,
            **TINY,
        )
    )
    assert np.isfinite(final["eval/return_mean"]) and np.isfinite(final["offline/eval/return_mean"])
    rows = (tmp_path / "fast" / "metrics.csv").read_text().splitlines()
    header = rows[0].split(",")
    losses = [dict(zip(header, r.split(","))) for r in rows[1:]]
    offline = [r for r in losses if r.get("charts/offline_step") and r.get("losses/critic")]
    online = [r for r in losses if r.get("charts/env_step") and r.get("losses/critic")]
    assert len(offline) == 2 and len(online) == 2
    assert all(np.isfinite(float(r["losses/critic"])) for r in offline + online)
    assert json.loads((tmp_path / "fast" / "config.json").read_text())["precision"] == "bf16"


@pytest.mark.parametrize("has_bf16", [True, False])
def test_auto_precision_runs_bf16_only_where_the_cpu_has_bf16_units_and_records_it(
    has_bf16, monkeypatch, tmp_path, small_pen_binary
):
    """The default `--precision auto` becomes bf16 on a CPU with AMX or AVX-512-bf16 and fp32 on one without (probed
    through torch.cpu, faked here both ways); config.json and the checkpoint say which ran, and an agent built
    directly from default Args resolves it the same way."""
    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: has_bf16)
    want = "bf16" if has_bf16 else "fp32"
    assert awac.Args().precision == sac_fd.Args().precision == "auto"
    agent = awac.AWAC(5, 3, awac.family_defaults(awac.Args(hidden_dims=(16, 16))), q_max=None)
    assert agent.critic.bf16 is has_bf16 and agent.actor.net.bf16 is has_bf16
    _, path = small_pen_binary
    args = dict(env_id="pen-binary", dataset=str(path), offline_steps=20, online_steps=0, eval_every=10**6)
    awac.train(awac.Args(**args, run_dir=str(tmp_path), run_name="auto", **TINY))
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["precision"] == want
    assert torch.load(tmp_path / "auto" / "checkpoint.pt", weights_only=False)["args"]["precision"] == want


def test_no_denormals_in_any_thread_after_training_on_real_data(door_human, tmp_path):
    """Without the flush, this run (1,500 updates on the human door demonstrations) leaves ~1,700 denormal
    numbers in its Adam moments (measured), which slow x86 arithmetic several-fold. A fresh process, as a user
    starts one, with 2 threads: the optimizer state holds none, and a parallel op over denormals in the same
    process flushes them in every thread (set too late, only the calling thread's half would be flushed)."""
    script = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(ROOT)!r})
        import awac
        final = awac.train(awac.Args(env_id="door-binary", dataset="door-human", offline_steps=1500, online_steps=0,
                                     batch_size=64, hidden_dims=(64, 64), eval_episodes=1, eval_every=10**6,
                                     save_every=10**6, log_every=10**6, wandb_mode="disabled", progress=False,
                                     threads=2, run_dir={str(tmp_path)!r}, run_name="denormal"))
        tiny = torch.finfo(torch.float32).tiny
        def denormals(x):
            if isinstance(x, torch.Tensor) and x.is_floating_point():
                return int(((x != 0) & (x.abs() < tiny)).sum())
            if isinstance(x, dict):
                return sum(denormals(v) for v in x.values())
            if isinstance(x, (list, tuple)):
                return sum(denormals(v) for v in x)
            return 0
        state = torch.load(final["run_dir"] + "/checkpoint.pt", weights_only=False)["agent"]
        probe = torch.full((4_000_000,), 1e-39) * 1.0
        print(denormals(state), int((probe != 0).sum()), torch.get_num_threads())
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True)
    in_state, in_probe, threads = map(int, out.stdout.split()[-3:])
    assert threads == 2
    assert in_state == 0, f"{in_state} denormal numbers in the agent's parameters and optimizer state"
    assert in_probe == 0, f"{in_probe} of 4,000,000 denormals survived a 2-thread op: a thread does not flush"


def test_speed_tool_prints_its_update_table(capsys):
    """utils.speed runs end to end on tiny settings (timings themselves are never asserted in tests)."""
    from utils import speed

    speed.main(
        [
            "--env-id",
            "pen-binary",
            "--batch-sizes",
            "8",
            "--threads",
            "1",
            "--hidden-dims",
            "8",
            "--updates",
            "2",
            "--blocks",
            "1",
            "--variants",
            "fp32",
            "bf16",
            "--before",
            "HEAD",
            "--no-process",
        ]
    )
    out = capsys.readouterr().out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| 1 | 8 |")]
    assert [r[2].strip() for r in rows] == ["fp32", "bf16", "before"]
    assert all(float(r[3]) > 0 for r in rows)
