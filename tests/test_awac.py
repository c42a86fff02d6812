"""awac.py: loss pieces against hand-worked values, and tiny in-process runs that reach updates in both phases."""

import csv
import json
from dataclasses import replace
from math import inf
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import random_rollout_dataset

import awac
from utils.datasets import save_dataset

TINY = dict(
    batch_size=32, hidden_dims=(32, 32), eval_episodes=2, log_every=50, wandb_mode="disabled", progress=False, threads=1
)


def test_softmax_weights_sum_to_batch_size_and_favor_high_advantage():
    adv = torch.tensor([0.0, 0.5, -1.0, 2.0])
    w = awac.awac_weights(adv, beta=0.5, weighting="softmax", max_weight=100.0)
    assert w.sum().item() == pytest.approx(4.0)
    expected = 4 * torch.exp(adv / 0.5) / torch.exp(adv / 0.5).sum()
    torch.testing.assert_close(w, expected)
    assert w.argmax().item() == 3


def test_exp_weights_respect_their_bound():
    adv = torch.tensor([-1.0, 0.0, 1.0, 10.0])
    w = awac.awac_weights(adv, beta=1.0, weighting="exp", max_weight=5.0)
    torch.testing.assert_close(w, torch.tensor([np.exp(-1.0), 1.0, np.e, 5.0], dtype=torch.float32))
    with pytest.raises(ValueError, match="unknown weighting"):
        awac.awac_weights(adv, 1.0, "linear", 5.0)


def test_critic_target_bootstraps_truncation_not_termination():
    reward = torch.tensor([-1.0, -1.0, 0.0])
    terminated = torch.tensor([0.0, 1.0, 0.0])  # row 0 may be a truncation: it still bootstraps
    next_q = torch.tensor([[-5.0, -5.0, -2.0], [-4.0, -6.0, -3.0]])
    y = awac.critic_target(reward, terminated, next_q, gamma=0.9)
    torch.testing.assert_close(y, torch.tensor([-1.0 + 0.9 * -5.0, -1.0, 0.9 * -3.0]))


def test_shapes_and_q_clamp():
    actor = awac.GaussianActor(5, 3, (16,), min_log_std=-6.0, max_log_std=0.0)
    critic = awac.TwinQ(5, 3, (16,), q_max=0.0)
    obs, action = torch.randn(7, 5), torch.rand(7, 3) * 2 - 1
    assert actor.log_prob(obs, action).shape == (7,)
    q = critic(obs, action)
    assert q.shape == (2, 7) and (q <= 0).all()
    # the two critics are independent networks, not copies
    assert not torch.equal(critic.hidden[0].weight[0], critic.hidden[0].weight[1])
    std = actor(obs).stddev
    assert torch.allclose(std, torch.full_like(std, np.exp(-3.0)))  # sigmoid(0) puts log-std mid-range
    assert actor.act(np.zeros(5), deterministic=True).shape == (3,)


def test_clamped_critics_start_below_the_clamp_so_every_seed_learns():
    # With PyTorch's default init, a clamped critic whose every output starts above 0 has no gradient, ever: on door,
    # 20% of 4x256 twin pairs (and 3% of 2x256) began so, and one screen run learned nothing in its critics.
    obs, action = torch.rand(256, 39) * 2 - 1, torch.rand(256, 28) * 2 - 1
    for seed in range(20):
        torch.manual_seed(seed)
        critic = awac.TwinQ(39, 28, (256, 256, 256, 256), q_max=0.0)
        q = critic(obs, action)
        assert (q < 0).all(), f"seed {seed}: a critic starts at or above the clamp"
        q.sum().backward()
        assert (critic.out.bias.grad.abs() > 0).all(), f"seed {seed}: a critic gets no gradient"
    torch.manual_seed(0)  # without a clamp the output layer keeps PyTorch's default init (SAC's critics)
    assert awac.TwinQ(39, 28, (16,)).out.bias.abs().max() > 1e-2


def advantage_agent(**overrides):
    """An AWAC agent whose critics are known functions of the action's first coordinate: Q1 = a0, Q2 = 2 a0."""
    args = awac.family_defaults(awac.Args(**{"hidden_dims": (8,), "beta": 0.5, "advantage_clip": 0.5, **overrides}))
    agent = awac.AWAC(2, 2, args, q_max=None)
    agent.critic = lambda obs, action: torch.stack([action[:, 0], 2 * action[:, 0]])
    return agent


def test_advantage_weights_against_hand_worked_numbers():
    """rlkit's AWAC advantage (awac_trainer.py: awr_min_q, awr_use_mle_for_vf, clip_score, normalize_over_batch):
    A = min_i Q_i(s, a) - min_i Q_i(s, mean of pi), clipped at 0.5, w = B softmax(A / beta). Worked by hand for
    policy means a0 = 0.5, -0.5, 0 (so V = min(a0, 2 a0) = 0.5, -1, 0) and batch values Q1 = 0, 0, 2, Q2 = 1, -2, 3
    (min 0, -2, 2): A = -0.5, -1, 2 -> clipped -0.5, -1, 0.5."""
    obs = torch.zeros(3, 2)
    dist = torch.distributions.Normal(torch.tensor([[0.5, 0.0], [-0.5, 0.0], [0.0, 0.0]]), torch.full((3, 2), 0.1))
    q_data = torch.tensor([[0.0, 0.0, 2.0], [1.0, -2.0, 3.0]])
    advantage, weights = advantage_agent().advantage_weights(obs, q_data, dist)
    torch.testing.assert_close(advantage, torch.tensor([-0.5, -1.0, 0.5]))
    e = np.exp([-1.0, -2.0, 1.0])  # exp(A / 0.5)
    torch.testing.assert_close(weights, torch.tensor(3 * e / e.sum(), dtype=torch.float32))
    # --no-min-q-advantage: Q1 alone, in both terms (A = 0 - 0.5, 0 + 0.5, 2 - 0 -> clipped -0.5, 0.5, 0.5)
    advantage, _ = advantage_agent(min_q_advantage=False).advantage_weights(obs, q_data, dist)
    torch.testing.assert_close(advantage, torch.tensor([-0.5, 0.5, 0.5]))
    # no clip: the raw advantage reaches the weights
    advantage, weights = advantage_agent(advantage_clip=float("inf")).advantage_weights(obs, q_data, dist)
    torch.testing.assert_close(advantage, torch.tensor([-0.5, -1.0, 2.0]))
    assert weights[2] / weights[0] == pytest.approx(np.exp(2.5 / 0.5), rel=1e-4)


def test_target_critics_move_toward_the_critics_at_rate_tau():
    """Polyak averaging after each update: target <- (1 - tau) target + tau critic (rlkit soft_update_from_to)."""
    torch.manual_seed(0)
    agent = awac.AWAC(4, 2, awac.family_defaults(awac.Args(hidden_dims=(8,), tau=0.1)), q_max=None)
    with torch.no_grad():  # targets apart from the critics, so that the direction shows
        for p in agent.target_critic.parameters():
            p.add_(1.0)
    before = [p.clone() for p in agent.target_critic.parameters()]
    batch = {"obs": torch.randn(16, 4), "action": torch.rand(16, 2) * 2 - 1, "reward": -torch.ones(16)}
    batch |= {"next_obs": torch.randn(16, 4), "terminated": torch.zeros(16)}
    agent.update(batch)
    for old, new, critic in zip(before, agent.target_critic.parameters(), agent.critic.parameters()):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * critic.detach())


def test_update_on_a_batch_moves_the_actor_toward_high_advantage_actions():
    torch.manual_seed(0)
    args = awac.Args(hidden_dims=(32, 32), actor_lr=1e-2, critic_lr=1e-2, advantage_clip=float("inf"), beta=0.1)
    agent = awac.AWAC(4, 2, awac.family_defaults(args), q_max=None)
    obs = torch.zeros(64, 4)
    good, bad = torch.full((32, 2), 0.5), torch.full((32, 2), -0.5)
    # terminal transitions: the critic must learn Q(good) = 0 > Q(bad) = -1, and the weights then prefer good
    batch = {
        "obs": obs,
        "action": torch.cat([good, bad]),
        "reward": torch.cat([torch.zeros(32), -torch.ones(32)]),
        "next_obs": obs,
        "terminated": torch.ones(64),
    }
    for _ in range(200):
        metrics = agent.update(batch)
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in metrics.values())  # 0-dim tensors until logged
    mean = agent.actor.act(np.zeros(4, dtype=np.float32), deterministic=True)
    assert (mean > 0.4).all(), f"policy mean {mean} should approach the good action 0.5"
    q = agent.critic(obs[:1], good[:1]).min().item(), agent.critic(obs[:1], bad[:1]).min().item()
    assert q[0] == pytest.approx(0.0, abs=0.1) and q[1] == pytest.approx(-1.0, abs=0.1)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, small_pen_binary):
    run_dir = tmp_path_factory.mktemp("runs")
    _, path = small_pen_binary
    args = awac.Args(
        env_id="pen-binary",
        dataset=str(path),
        offline_steps=150,
        online_steps=200,
        eval_every=100,
        save_every=100,
        run_dir=str(run_dir),
        run_name="tiny",
        **TINY,
    )
    return args, awac.train(args)


def test_tiny_run_reaches_updates_in_both_phases_and_writes_its_files(tiny_run):
    args, final = tiny_run
    run = Path(final["run_dir"])
    for name in ("config.json", "metrics.csv", "checkpoint.pt", "checkpoint_offline.pt", "final.json"):
        assert (run / name).is_file(), name
    assert json.loads((run / "config.json").read_text())["offline_steps"] == 150
    assert json.loads((run / "final.json").read_text())["eval/success_rate"] == final["eval/success_rate"]
    assert all(np.isfinite(v) for k, v in final.items() if k != "run_dir")
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    offline = [r for r in rows if r.get("charts/offline_step") and r.get("losses/critic")]
    online = [r for r in rows if r.get("charts/env_step") and r.get("losses/critic")]
    assert [int(r["charts/offline_step"]) for r in offline] == [50, 100, 150]
    assert [int(r["charts/env_step"]) for r in online] == [50, 100, 150, 200]
    assert all(np.isfinite(float(r["losses/actor"])) for r in offline + online)
    evals = [r for r in rows if r.get("eval/success_rate")]
    assert len(evals) == 5  # offline 0 and 100, online 0 (= after offline), 100, and the end
    episodes = [r for r in rows if r.get("charts/episodic_return")]
    assert len(episodes) == 1 and float(episodes[0]["charts/episodic_length"]) == 200  # pen's horizon
    ep = episodes[0]  # training episodes are counted by each success definition; reward 0 marks a goal step
    goal_steps = float(ep["charts/episodic_length"]) + float(ep["charts/episodic_return"])
    assert float(ep["charts/success_any"]) == float(goal_steps > 0)
    assert float(ep["charts/success_rate"]) == float(goal_steps > 20)
    # goal at the last step implies goal at some step; no goal step at all rules out every definition
    assert float(ep["charts/success_final"]) <= float(ep["charts/success_any"])
    assert goal_steps > 0 or float(ep["charts/success_final"]) == 0.0
    for row in evals:  # every evaluation logs each definition and the pace, with values in their ranges
        assert all(0.0 <= float(row[f"eval/{k}"]) <= 1.0 for k in ("success_final", "success_any", "goal_never"))
        assert float(row["eval/success_final"]) <= float(row["eval/success_any"])
        assert 1.0 <= float(row["eval/goal_step"]) <= 200.0
        assert (float(row["eval/goal_never"]) == 1.0) == (float(row["eval/success_any"]) == 0.0)


def test_each_phase_samples_its_own_batch_size(tmp_path, small_pen_binary, monkeypatch):
    """--offline-batch-size (rlkit's bc_batch_size, 128 by default) in the offline phase, --batch-size online."""
    sizes = []
    real_sample = awac.ReplayBuffer.sample
    monkeypatch.setattr(awac.ReplayBuffer, "sample", lambda self, n: sizes.append(n) or real_sample(self, n))
    _, path = small_pen_binary
    awac.train(
        awac.Args(
            env_id="pen-binary",
            dataset=str(path),
            offline_steps=20,
            online_steps=30,
            eval_every=100,
            eval_episodes=1,
            run_dir=str(tmp_path),
            hidden_dims=(16, 16),
            batch_size=32,
            offline_batch_size=8,
            wandb_mode="disabled",
            progress=False,
            threads=1,
        )
    )
    assert sizes == [8] * 20 + [32] * 30
    assert awac.Args().offline_batch_size == 128 and awac.Args().batch_size == 1024


def test_parameters_change_in_each_phase(tiny_run):
    args, final = tiny_run
    torch.manual_seed(args.seed)
    init = awac.AWAC(
        45, 24, awac.family_defaults(args), q_max=0.0
    )  # train seeds torch the same way before building its agent
    run = Path(final["run_dir"])
    offline = torch.load(run / "checkpoint_offline.pt", weights_only=False)
    end = torch.load(run / "checkpoint.pt", weights_only=False)
    for key in ("actor", "critic", "target_critic"):
        p0 = torch.cat([p.flatten() for p in getattr(init, key).state_dict().values()])
        p1 = torch.cat([p.flatten() for p in offline["agent"][key].values()])
        p2 = torch.cat([p.flatten() for p in end["agent"][key].values()])
        assert not torch.equal(p0, p1) and not torch.equal(p1, p2), key
    assert offline["counters"] == {"offline_step": 150, "env_step": 0}
    assert end["counters"] == {"offline_step": 150, "env_step": 200}
    # online experience entered the buffer, truncated at the horizon but never terminated
    assert len(end["online_data"]["reward"]) == 200 and end["online_data"]["terminated"].sum() == 0
    assert end["agent"]["actor_opt"]["state"] and end["agent"]["critic_opt"]["state"], "optimizer state is saved"


def test_checkpoint_reload_gives_the_same_actions_and_eval(tiny_run):
    args, final = tiny_run
    run = Path(final["run_dir"])
    ckpt = torch.load(run / "checkpoint.pt", weights_only=False)
    fp32 = awac.family_defaults(replace(args, precision="fp32"))  # the by-hand forward below is fp32
    loaded, fresh = (awac.AWAC(45, 24, fp32, 0.0) for _ in range(2))
    loaded.load_state_dict(ckpt["agent"])
    for key in ("actor", "critic", "target_critic"):  # every trained weight comes back, bit for bit
        for name, value in getattr(loaded, key).state_dict().items():
            torch.testing.assert_close(value, ckpt["agent"][key][name], rtol=0, atol=0)
    # the mean action, by hand from the checkpoint's weights: tanh of the ReLU MLP's output
    obs = np.random.default_rng(0).normal(size=45).astype(np.float32)
    weights = ckpt["agent"]["actor"]
    layers = sorted({int(k.split(".")[1]) for k in weights if k.startswith("net.")})
    x = torch.as_tensor(obs)
    for i in layers:
        x = x @ weights[f"net.{i}.weight"].T + weights[f"net.{i}.bias"]
        x = torch.relu(x) if i != layers[-1] else torch.tanh(x)
    np.testing.assert_allclose(loaded.actor.act(obs, True), x.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(fresh.actor.act(obs, True), x.numpy(), atol=1e-3)  # an untrained agent acts otherwise
    result = awac.train(
        awac.Args(checkpoint=str(run / "checkpoint.pt"), eval_only=True, eval_episodes=2, progress=False)
    )
    assert result["eval/return_mean"] == final["eval/return_mean"]


def test_terminations_are_stored_and_eval_only_reproduces_a_continuous_return(tmp_path):
    """Hopper terminates when it falls: those transitions are stored as terminated, time limits are not."""
    path = save_dataset(random_rollout_dataset("Hopper-v5", episodes=10, seed=0), tmp_path / "hopper.npz")
    args = awac.Args(
        env_id="Hopper-v5",
        dataset=str(path),
        offline_steps=60,
        online_steps=300,
        eval_every=1000,
        save_every=1000,
        run_dir=str(tmp_path),
        run_name="hopper",
        **{**TINY, "eval_episodes": 1},
    )
    final = awac.train(args)
    ckpt = torch.load(tmp_path / "hopper" / "checkpoint.pt", weights_only=False)
    terminated = ckpt["online_data"]["terminated"]
    assert terminated.sum() >= 2, "random hopper episodes end by falling"
    with (tmp_path / "hopper" / "metrics.csv").open() as f:
        ends = [int(float(r["charts/env_step"])) for r in csv.DictReader(f) if r.get("charts/episodic_return")]
    assert np.flatnonzero(terminated).tolist() == [e - 1 for e in ends]
    again = awac.train(
        awac.Args(
            checkpoint=str(tmp_path / "hopper" / "checkpoint.pt"), eval_only=True, eval_episodes=1, progress=False
        )
    )
    assert again["eval/return_mean"] == final["eval/return_mean"] and final["eval/return_mean"] != 0


def test_same_seed_same_result(tmp_path, small_pen_binary):
    _, path = small_pen_binary
    results = [
        awac.train(
            awac.Args(
                env_id="pen-binary",
                dataset=str(path),
                offline_steps=40,
                online_steps=40,
                eval_every=1000,
                save_every=1000,
                run_dir=str(tmp_path),
                run_name=f"r{i}",
                **{**TINY, "log_every": 20},
            )
        )
        for i in range(2)
    ]
    for r in results:
        r.pop("run_dir"), r.pop("wall_time_s"), r.pop("charts/SPS"), r.pop("offline/wall_time_s")
    assert results[0] == results[1]
    losses = []
    for i in range(2):
        with (tmp_path / f"r{i}" / "metrics.csv").open() as f:
            losses.append([(r["losses/critic"], r["losses/actor"]) for r in csv.DictReader(f) if r["losses/critic"]])
    assert len(losses[0]) == 4 and losses[0] == losses[1]


def test_bad_dataset_for_the_env_fails_before_training(tmp_path, door_human):
    with pytest.raises(ValueError, match="expects 45"):
        awac.train(awac.Args(env_id="pen-binary", dataset="door-human", run_dir=str(tmp_path), **TINY))
    assert not any(tmp_path.iterdir()), "no run directory for a run that never started"


def test_buffer_keeps_the_newest_rows_when_overfilled():
    buffer = awac.ReplayBuffer(1, 1, capacity=4, device="cpu", seed=0)
    rows = np.arange(6, dtype=np.float32)
    buffer.add(obs=rows[:, None], action=rows[:, None], reward=rows, next_obs=rows[:, None], terminated=rows * 0)
    assert buffer.size == 4 and sorted(buffer.data["reward"].tolist()) == [2, 3, 4, 5]
    buffer.add(obs=[9.0], action=[9.0], reward=np.float32(9), next_obs=[9.0], terminated=np.float32(0))
    np.testing.assert_array_equal(buffer.last(3)["reward"], [4, 5, 9])


def test_config_paper_takes_the_papers_values_for_the_fields_left_unset(tmp_path, small_pen_binary):
    """--config paper: no advantage clip, lambda 0.3 and 4x256 actor and critics; flags given keep their values; the
    default stays rlkit's released hand configuration; off the hand tasks it is refused in one line."""
    import tyro

    def resolved(*flags):
        return awac.family_defaults(tyro.cli(awac.Args, args=list(flags)))

    rlkit = resolved()
    assert (rlkit.beta, rlkit.advantage_clip, rlkit.hidden_dims, rlkit.actor_hidden_dims) == (
        0.5,
        0.5,
        (256,) * 2,
        (256,) * 2,
    )
    paper = resolved("--config", "paper")
    assert (paper.beta, paper.advantage_clip, paper.hidden_dims, paper.actor_hidden_dims) == (
        0.3,
        inf,
        (256,) * 4,
        (256,) * 4,
    )
    assert paper.value_from_mean and paper.actor_weight_decay == rlkit.actor_weight_decay  # the rest stays rlkit's
    given = resolved("--config", "paper", "--beta", "0.5", "--hidden-dims", "64", "64")
    assert (given.beta, given.advantage_clip, given.hidden_dims, given.actor_hidden_dims) == (
        0.5,
        inf,
        (64, 64),
        (64, 64),
    )
    with pytest.raises(awac.ArgumentError, match="--config paper is the paper's hand-task setting, not HalfCheetah"):
        resolved("--config", "paper", "--env-id", "HalfCheetah-v5")

    agent = awac.AWAC(5, 3, paper, q_max=0.0)  # the networks are the paper's depth
    assert sum(isinstance(m, torch.nn.Linear) for m in agent.actor.modules()) == 5
    assert len(agent.critic.hidden) == 4 and agent.critic.hidden[3].weight.shape == (2, 256, 256)

    _, path = small_pen_binary  # a run records what it ran (config.json), so a resume keeps it
    tiny = {**TINY, "hidden_dims": None, "log_every": 10}
    final = awac.train(
        awac.Args(
            env_id="pen-binary",
            dataset=str(path),
            config="paper",
            offline_steps=40,
            online_steps=0,
            eval_every=10**6,
            run_dir=str(tmp_path),
            **tiny,
        )
    )
    config = json.loads((Path(final["run_dir"]) / "config.json").read_text())
    assert (config["config"], config["beta"], config["hidden_dims"]) == ("paper", 0.3, [256] * 4)
    assert float(config["advantage_clip"]) == inf  # config.json writes it "inf"
