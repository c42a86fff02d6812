"""The fast update path of awac.py and sac_fd.py: bf16 hidden layers that keep the advantage weights accurate,
torch.compile that agrees with eager, the hardware rule that picks each where it was measured faster, metrics that
stay on the device, and denormal flushing that reaches every thread."""

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
            compile="on",
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


def fake_cpu(monkeypatch, amx: bool, avx512_bf16: bool, avx512: bool = True) -> None:
    """Makes torch.cpu's feature probes report this CPU kind."""
    for probe, value in (
        ("_is_amx_tile_supported", amx),
        ("_is_avx512_bf16_supported", avx512_bf16),
        ("_is_avx512_supported", avx512),
    ):
        monkeypatch.setattr(torch.cpu, probe, lambda value=value: value)


@pytest.mark.parametrize(
    "amx, avx512_bf16, want, why",
    [
        (True, True, "bf16", "this CPU has AMX"),
        (False, True, "fp32", "this CPU has AVX-512-bf16 but no AMX: bf16 measured 0.71-0.74x fp32"),
        (False, False, "fp32", "this CPU has no bf16 matmul units"),
    ],
)
def test_auto_precision_is_bf16_only_where_measured_faster_and_says_why(
    amx, avx512_bf16, want, why, monkeypatch, tmp_path, small_pen_binary, capsys
):
    """The default `--precision auto` runs bf16 on a CPU with AMX only: on one with AVX-512-bf16 alone bf16 was
    measured 0.71-0.74x fp32 (issue 31). The probes are torch.cpu's, faked here for each kind. The run prints the
    choice and its reason; config.json records what ran and, under "auto", the choice and reason; the checkpoint
    keeps what ran; an agent built directly from default Args resolves it the same way."""
    fake_cpu(monkeypatch, amx, avx512_bf16)
    assert awac.Args().precision == sac_fd.Args().precision == "auto"
    agent = awac.AWAC(5, 3, awac.family_defaults(awac.Args(hidden_dims=(16, 16))), q_max=None)
    assert agent.critic.bf16 is (want == "bf16") and agent.actor.net.bf16 is (want == "bf16")
    _, path = small_pen_binary
    args = dict(env_id="pen-binary", dataset=str(path), offline_steps=20, online_steps=0, eval_every=10**6)
    awac.train(awac.Args(**args, run_dir=str(tmp_path), run_name="auto", **TINY))
    out = capsys.readouterr().out
    assert f"precision: {want} (auto: {why}" in out
    assert "compile: off (auto: 20 updates: under 10,000, compiling would not pay back)" in out
    config = json.loads((tmp_path / "auto" / "config.json").read_text())
    assert config["precision"] == want and config["compile"] == "off"
    assert config["auto"]["precision"] == want and config["auto"]["precision_reason"].startswith(why)
    assert torch.load(tmp_path / "auto" / "checkpoint.pt", weights_only=False)["args"]["precision"] == want


def test_auto_precision_on_a_gpu_follows_native_bf16(monkeypatch):
    """A CUDA GPU gives bf16 where it has native bf16, fp32 where it would only emulate it (faked: no GPU here)."""
    import contextlib

    from utils.run.precision import bf16_pays

    monkeypatch.setattr(torch.cuda, "device", lambda dev: contextlib.nullcontext())
    for native in (True, False):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native)
        assert bf16_pays("cuda") == (native, "this GPU has native bf16" if native else "this GPU has no native bf16")


def test_auto_compile_only_where_measured_to_pay_and_never_in_short_runs(monkeypatch):
    """`--compile auto`: on for fp32 on a CPU with AVX-512 and no AMX (measured 1.16-1.29x, issue 31) in runs of at
    least COMPILE_MIN_UPDATES updates; off with AMX (bf16 measured slower), off elsewhere (not measured), off in
    short runs such as the tests' (the cold compile would dominate them)."""
    from utils.run.precision import COMPILE_MIN_UPDATES, compile_pays, fast_path

    big, small = dict(offline_steps=25_000, online_steps=None), dict(offline_steps=100, online_steps=100)
    fake_cpu(monkeypatch, amx=False, avx512_bf16=True)
    assert compile_pays("cpu", "fp32", COMPILE_MIN_UPDATES)[0]
    assert not compile_pays("cpu", "fp32", COMPILE_MIN_UPDATES - 1)[0]
    assert not compile_pays("cpu", "bf16", 10**6)[0]
    assert fast_path(awac.Args(**big)) == (False, True)  # the default run on such a CPU: fp32, compiled
    assert fast_path(awac.Args(**small)) == (False, False)
    assert fast_path(awac.Args(**small, compile="on")) == (False, True)
    assert fast_path(awac.Args(**big, compile="off")) == (False, False)
    assert fast_path(sac_fd.Args(**big)) == (False, False), "sac_fd's default is off: not measured to pay"
    fake_cpu(monkeypatch, amx=True, avx512_bf16=True)
    assert fast_path(awac.Args(**big)) == (True, False)
    assert fast_path(awac.Args(**big, precision="fp32")) == (False, False)
    fake_cpu(monkeypatch, amx=False, avx512_bf16=False, avx512=False)
    assert fast_path(awac.Args(**big)) == (False, False)
    assert not compile_pays("meta", "fp32", 10**6)[0]


def _random_batches(n: int, obs_dim: int, act_dim: int, batch: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    return [
        {
            "obs": torch.randn(batch, obs_dim, generator=g),
            "action": torch.rand(batch, act_dim, generator=g) * 2 - 1,
            "reward": -torch.randint(0, 2, (batch,), generator=g).float(),
            "next_obs": torch.randn(batch, obs_dim, generator=g),
            "terminated": torch.zeros(batch),
        }
        for _ in range(n)
    ]


def test_compiled_update_agrees_with_eager_to_float_rounding_and_resumes_exactly():
    """Tolerance, and why: compiling fuses elementwise ops, which changes float32 rounding (a few ulps) and nothing
    else; the random draws are the same. After 30 fixed-seed updates every metric must agree to 1e-5 relative and
    every weight to 1e-5 absolute (measured: 3e-7 and 3e-8). Compilation must really happen (dynamo captured a
    graph). A compiled agent restored from its state dict and the torch RNG state repeats its updates bit for bit."""
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    batches, runs = _random_batches(30, 10, 4, 64), {}
    for mode in ("off", "on"):
        torch.manual_seed(0)
        args = awac.family_defaults(awac.Args(hidden_dims=(32, 32), precision="fp32", compile=mode))
        agent = awac.AWAC(10, 4, args, q_max=0.0)
        runs[mode] = agent, [{k: float(v) for k, v in agent.update(b).items()} for b in batches]
    (eager, m_eager), (compiled, m_compiled) = runs["off"], runs["on"]
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1, "torch.compile must actually compile"
    assert hasattr(compiled.losses, "_torchdynamo_orig_callable") and not hasattr(
        eager.losses, "_torchdynamo_orig_callable"
    )
    for a, b in zip(m_eager, m_compiled):
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=1e-5, abs=1e-6), k
    for p, q in zip(eager.actor.parameters(), compiled.actor.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-5)
    assert any(not torch.equal(p, q) for p, q in zip(eager.critic.parameters(), compiled.critic.parameters())), (
        "eager and compiled are expected to differ in rounding: equal weights would mean nothing was compiled"
    )

    import copy

    state, rng = copy.deepcopy(compiled.state_dict()), torch.get_rng_state()
    first = [compiled.update(b) for b in batches[:5]]
    compiled.load_state_dict(state)
    torch.set_rng_state(rng)
    again = [compiled.update(b) for b in batches[:5]]
    for a, b in zip(first, again):
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_checkpoint_with_the_old_bool_compile_resumes(tmp_path):
    """Checkpoints before December 2026 stored --compile as True/False: a resume reads them as "on"/"off"."""
    from dataclasses import asdict

    from utils.run.checks import resume_args

    saved = asdict(awac.Args(compile="off")) | {"compile": True}
    resumed = resume_args(awac.Args(checkpoint=str(tmp_path / "checkpoint.pt")), saved)
    assert resumed.compile == "on"


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
    assert out.startswith("CPU: ")
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| 1 | 8 |")]
    assert [r[2].strip() for r in rows] == ["fp32", "bf16", "before"]
    assert all(float(r[3]) > 0 for r in rows)


def test_speed_tools_name_the_cpu_kind_and_profile_shares_add_up(capsys):
    """utils.speed and utils.speed_profile print the CPU's model and its AMX / AVX-512-bf16 flags first; the
    profile's time shares of the update add up to the whole (timings themselves are never asserted)."""
    from utils import speed_profile
    from utils.run.precision import cpu_kind

    assert cpu_kind().startswith("CPU: ") and "AMX " in cpu_kind() and "AVX-512-bf16 " in cpu_kind()
    shares = speed_profile.profile_update("fp32", batch=8, updates=2, obs_dim=5, act_dim=3)
    fractions = [v for k, v in shares.items() if not k.startswith("ms ")]
    assert len(fractions) == 5 and sum(fractions) == pytest.approx(1.0)
    assert shares["matrix products"] > 0 and shares["optimizer + targets"] > 0
    assert speed_profile.category("aten::addmm") == "matrix products"
    assert speed_profile.category("aten::_to_copy") == "casts"
    assert speed_profile.category("aten::_fused_adam_") == "optimizer + targets"
    assert speed_profile.category("aten::sigmoid") == "elementwise + reductions"
