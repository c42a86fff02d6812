#!/usr/bin/env bash
# The door-fast screen's report (issue 33): copies each finished run's config.json, metrics.csv and final.json from
# the results directory into screen/runs/, renamed by arm (door-binary__awac-A__0, ...), then writes the summary, the
# curves (success and goal step against steps), each arm's paired comparison against A, and how the actor's loss weights
# its batch (weights.md).
#   bash docs/results/door-fast/make_report.sh [RESULTS_DIR]      (default: ~/awac-results)
set -euo pipefail
results=${1:-$HOME/awac-results}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
mkdir -p "$here/screen/runs"
for arm in A B C D E; do
  for run in "$results/door-fast-$arm/runs"/door-binary__awac__*/; do
    [ -f "$run/final.json" ] || { echo "not finished: $run"; continue; }
    seed=${run%/}; seed=${seed##*__}
    dest="$here/screen/runs/door-binary__awac-${arm}__${seed}"
    mkdir -p "$dest"
    # A run extended to 300K by the confirmation keeps its screen result as final-125000.json: the screen's report
    # takes that, the metrics rows up to the screen's last global step (25,000 offline + 100,000 online), and its
    # config.json with the screen's budget (the extension rewrote online_steps, and nothing else of the settings).
    python - "$run" "$dest" <<'PY'
import csv, json, shutil, sys
from pathlib import Path
run, dest = Path(sys.argv[1]), Path(sys.argv[2])
screen = run / "final-125000.json"
shutil.copy(screen if screen.is_file() else run / "final.json", dest / "final.json")
config = json.loads((run / "config.json").read_text())
if screen.is_file():
    config["online_steps"] = 100_000
(dest / "config.json").write_text(json.dumps(config, indent=2))
with open(run / "metrics.csv") as f:
    reader = csv.DictReader(f)
    rows = [r for r in reader if float(r["charts/global_step"] or 0) <= 125_000]
with open(dest / "metrics.csv", "w", newline="") as f:
    writer = csv.DictWriter(f, reader.fieldnames)
    writer.writeheader()
    writer.writerows(rows)
PY
  done
done
python -m utils.benchmark report "$here"/screen/runs/* --out "$here/screen" --at 50000 100000 --window 50000 \
  --values values/advantage_max values/weight_max values/log_std_mean > /dev/null
{
  echo "# Paired comparisons against arm A (issue 33's rule: last five evaluations, 60K-100K)"
  for arm in B C D E; do
    echo
    echo "## $arm"
    echo
    if ! compgen -G "$here/screen/runs/*awac-${arm}__*" > /dev/null; then
      echo "No run of $arm has finished yet."
      continue
    fi
    python -m utils.benchmark paired --a "$here"/screen/runs/*awac-A__* --b "$here"/screen/runs/*awac-${arm}__* \
      --at 100000 --window 50000
  done
} > "$here/screen/paired.md"
# How many transitions carry the actor's loss: per run, over the logged rows of the online phase, the median and the
# largest weight of a batch, and the median effective sample size of its weights, (sum w)^2 / sum w^2, which for
# weights of mean 1 and standard deviation sd is B / (1 + sd^2), as a share of the batch B.
python - "$here/screen" <<'PY' > "$here/screen/weights.md"
import csv, sys
from pathlib import Path
import numpy as np
runs = sorted(Path(sys.argv[1], "runs").iterdir(), key=lambda d: (d.name.split("__")[1], int(d.name.split("__")[2])))
print("# Weights of the actor's loss, online phase (logged batches of 1,024; weights have mean 1)")
print()
print("| arm | seed | median weight max | largest weight max | median advantage max | median effective sample size (share of batch) |")
print("|---|---|---|---|---|---|")
for run in runs:
    rows = [r for r in csv.DictReader((run / "metrics.csv").open()) if r["values/weight_std"] and r["charts/env_step"]]
    w_max = np.array([float(r["values/weight_max"]) for r in rows])
    mean = np.array([float(r["values/weight_mean"]) for r in rows])
    sd = np.array([float(r["values/weight_std"]) for r in rows])
    adv = np.array([float(r["values/advantage_max"]) for r in rows])
    ess = np.median(mean**2 / (mean**2 + sd**2))
    arm, seed = run.name.split("__")[1].removeprefix("awac-"), run.name.split("__")[2]
    print(f"| {arm} | {seed} | {np.median(w_max):.1f} | {w_max.max():.1f} | {np.median(adv):.2f} | {ess:.3f} |")
PY
echo "wrote $here/screen: summary.md, summary.csv, runs.csv, curves.png, q_values.png, paired.md, weights.md"
