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
for arm in A B C D; do
  for run in "$results/door-fast-$arm/runs"/door-binary__awac__*/; do
    [ -f "$run/final.json" ] || { echo "not finished: $run"; continue; }
    seed=${run%/}; seed=${seed##*__}
    dest="$here/screen/runs/door-binary__awac-${arm}__${seed}"
    mkdir -p "$dest"
    cp "$run"/config.json "$run"/metrics.csv "$run"/final.json "$dest/"
  done
done
python -m utils.benchmark report "$here"/screen/runs/* --out "$here/screen" --at 50000 100000 --window 50000 \
  --values values/advantage_max values/weight_max values/log_std_mean > /dev/null
{
  echo "# Paired comparisons against arm A (issue 33's rule: last five evaluations, 60K-100K)"
  for arm in B C D; do
    echo
    echo "## $arm"
    echo
    python -m utils.benchmark paired --a "$here"/screen/runs/*awac-A__* --b "$here"/screen/runs/*awac-${arm}__* \
      --at 100000 --window 50000
  done
} > "$here/screen/paired.md"
echo "wrote $here/screen: summary.md, summary.csv, runs.csv, curves.png, q_values.png, paired.md"
