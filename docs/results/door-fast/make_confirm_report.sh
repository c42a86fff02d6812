#!/usr/bin/env bash
# The door-fast confirmation's report (issue 33): arm A and the screen's best arm, seeds 0-2, extended from their
# screen runs to 300,000 online steps. Copies each run's config.json, metrics.csv and final.json (and final-125000.json,
# its screen result) into confirm/runs/, renamed by arm, then writes the summary at 100K, 200K and 300K, the curves and
# the paired comparison of the arm against A over the last five evaluations (260K-300K).
#   bash docs/results/door-fast/make_confirm_report.sh ARM [RESULTS_DIR]      (ARM: B, C, D or E; default ~/awac-results)
set -euo pipefail
arm=${1:?give the arm that beat A in the screen: B, C, D or E}
results=${2:-$HOME/awac-results}
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../../.."
for a in A "$arm"; do
  for seed in 0 1 2; do
    run="$results/door-fast-$a/runs/door-binary__awac__$seed"
    if ! grep -q '"online_steps": 300000' "$run/config.json" || [ ! -f "$run/final.json" ]; then
      echo "not finished at 300K: $run (re-issue the confirmation's commands first)" >&2
      exit 1
    fi
    dest="$here/confirm/runs/door-binary__awac-${a}__${seed}"
    mkdir -p "$dest"
    cp "$run"/config.json "$run"/metrics.csv "$run"/final.json "$run"/final-125000.json "$dest/"
  done
done
python -m utils.benchmark report "$here"/confirm/runs/* --out "$here/confirm" --at 100000 200000 300000 \
  --window 50000 > /dev/null
{
  echo "# Paired comparison against arm A at 300K (last five evaluations, 260K-300K)"
  echo
  python -m utils.benchmark paired --a "$here"/confirm/runs/*awac-A__* --b "$here"/confirm/runs/*awac-${arm}__* \
    --at 300000 --window 50000
} > "$here/confirm/paired.md"
echo "wrote $here/confirm: summary.md, summary.csv, runs.csv, curves.png, q_values.png, paired.md"
