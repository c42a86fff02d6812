#!/usr/bin/env bash
# The door-fast screen's report (issue 33): copies each finished run's config.json, metrics.csv and final.json from
# the results directory into screen/runs/, renamed by arm (door-binary__awac-A__0, ...), then writes the summary, the
# curves (success and goal step against steps) and each arm's paired comparison against A.
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
echo "wrote $here/screen: summary.md, summary.csv, runs.csv, curves.png, q_values.png, paired.md"
