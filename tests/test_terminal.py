"""What a user sees in a terminal, through real processes: the run directory, a progress bar per phase (a resumed one
starting in its phase), W&B kept quiet offline, Ctrl-C's message with the command that resumes, and the first run's
dataset build announced (and, interrupted, what it left)."""

import fcntl
import os
import pty
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from conftest import ROOT


def as_from_a_shell() -> None:
    """In the child, before it starts: Ctrl-C's default action, as a shell gives a command it runs in the foreground
    (a shell without job control starts background commands, such as a test run with `&`, with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def in_terminal(command: list[str], interrupt_at: str, cwd: Path, timeout: float = 120) -> tuple[str, int]:
    """Runs `command` with its stdout and stderr on a pseudo-terminal of 120 columns (as a user's shell, so tqdm
    draws its bar), sends SIGINT once the output matches the regex `interrupt_at`, and returns (the output with
    "\\r\\n" as "\\n", exit status)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        command, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, cwd=cwd, env=env, preexec_fn=as_from_a_shell
    )
    os.close(slave)
    out, sent, deadline = b"", False, time.time() + timeout
    try:
        while time.time() < deadline:
            if select.select([master], [], [], 1.0)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the process closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
                if not sent and re.search(interrupt_at, out.decode(errors="replace")):
                    proc.send_signal(signal.SIGINT)
                    sent = True
            elif proc.poll() is not None:
                break
        else:
            raise AssertionError(f"{command} did not end within {timeout} s:\n{out.decode(errors='replace')[-2000:]}")
        return out.decode(errors="replace").replace("\r\n", "\n"), proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()


def test_ctrl_c_says_on_its_own_line_how_to_resume_and_the_resumed_bar_starts_online(tmp_path, small_pen_binary):
    """A new run names its directory, draws one bar per phase (offline updates, then online steps against their own
    budget) and prints no W&B lines offline while W&B still writes its files. Ctrl-C in the online phase prints,
    on its own line after the bar, where it came, what the checkpoint holds (the last episode's end: pen's episodes
    are 200 steps) and how many steps are not saved, and then the exact command that resumes; typed as printed, that
    command's bar starts in the online phase at the saved step."""
    _, dataset = small_pen_binary
    flags = "--env-id pen-binary --offline-steps 20 --online-steps 5000 --batch-size 32 --hidden-dims 32 32"
    flags += " --eval-episodes 1 --eval-every 10000 --save-every 100 --threads 1 --run-name a"
    command = [sys.executable, str(ROOT / "awac.py"), *flags.split(), "--dataset", str(dataset), "--run-dir", "runs"]
    text, code = in_terminal(command, r"online: .*\| *(2[1-9]\d|3[0-8]\d)/5000", tmp_path)
    assert code == 130, text
    assert "\nawac.py: new run in runs/a (" in "\n" + text
    assert re.search(r"offline: 100%.*\| 20/20 ", text) and re.search(r"online: .*\| *0/5000 ", text)
    assert "wandb" not in text.lower()  # offline, W&B's start-up and summary lines stay out of the terminal
    assert list((tmp_path / "runs" / "a" / "wandb").glob("offline-run-*/files/output.log"))
    lines = text.splitlines()
    said = next(i for i, line in enumerate(lines) if "interrupted" in line)
    stopped, saved, lost = map(
        int,
        re.fullmatch(
            r"interrupted at offline step 20, env step (\d+): saved runs/a/checkpoint.pt at offline step 20, env step "
            r"(\d+) \(the end of the last finished episode; the (\d+) steps of the unfinished episode are not saved "
            r"and a resume redoes them\)",
            lines[said],
        ).groups(),
    )
    assert saved == stopped // 200 * 200 and lost == stopped - saved > 0
    # The script as it was started (here by its absolute path), the checkpoint relative to the working directory.
    script = shlex.quote(str(ROOT / "awac.py"))
    assert lines[said + 1] == f"resume with: python {script} --checkpoint runs/a/checkpoint.pt"

    resume = shlex.split(lines[said + 1].removeprefix("resume with: "))
    text, code = in_terminal([sys.executable, *resume[1:]], r"online: .*\| *\d+/5000 .*step/s\]", tmp_path)
    assert code == 130
    assert f"awac.py: resuming run in runs/a at offline step 20, env step {saved} " in text
    assert "offline:" not in text and re.search(rf"online: +\d+%\|.*\| {saved}/5000 ", text)


def test_a_first_run_announces_its_dataset_build_and_ctrl_c_during_it_says_what_is_left(tmp_path):
    """With an empty cache, the first run says which dataset it builds, where it is cached and roughly how long it
    takes. Ctrl-C once the demonstrations are cached ends it with one line naming what was kept and what the next
    start builds again, no traceback, exit status 130."""
    cache = tmp_path / "cache"
    command = [sys.executable, str(ROOT / "awac.py"), "--env-id", "pen-binary", "--data-dir", str(cache)]
    command += ["--threads", "1", "--wandb-mode", "disabled", "--run-dir", str(tmp_path / "runs")]
    proc = subprocess.Popen(command, cwd=tmp_path, stderr=subprocess.PIPE, text=True, preexec_fn=as_from_a_shell)
    try:
        first = proc.stderr.readline()
        assert first == (
            "building dataset pen-binary (pen-expert + pen-bc: the AWAC paper's prior data) once, usually 1-4 min on "
            f"a 2-core CPU; it is cached as {cache}/pen-binary-h200-seed0.npz (--data-dir or $AWAC_DATA_DIR move the "
            "cache)\n"
        )
        deadline = time.time() + 120
        while not (cache / "pen-expert-h200-seed0.npz").is_file() and time.time() < deadline:
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)  # while the BC policy trains or its episodes roll out
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, rest
    assert rest.splitlines()[-1] == (
        f"interrupted while building dataset pen-binary: pen-expert cached in {cache}; pen-bc, pen-binary not "
        "saved: the next start builds them again"
    )
    assert "Traceback" not in rest and not (cache / "pen-binary-h200-seed0.npz").exists()
