#!/usr/bin/env bash
# Issue 24's full-budget report, once every door-full run has finished (AWAC seeds 0-2 at 500K; SACfD, BC, AWR
# seeds 0-2 at 300K): summary, curves and value trajectories with the runs' small files copied here, then the
# reading aids on the AWAC checkpoints. Run from the repository root:
#     bash docs/results/door-paper/make_report.sh [RESULTS]        (RESULTS: default ~/awac-results)
# Writes under docs/results/door-paper/december/; prints the failure-mode and clip tables to .md files there.
set -euo pipefail
shopt -s nullglob
R=${1:-$HOME/awac-results}
OUT=docs/results/door-paper/december
runs=("$R"/door-full/runs/door-binary__*/)
[ ${#runs[@]} -eq 12 ] || { echo "expected 12 runs in $R/door-full/runs (4 methods x 3 seeds), found ${#runs[@]}"; exit 1; }
for run in "${runs[@]}"; do
  [ -f "$run/final.json" ] || { echo "unfinished: $run (wait for it, or re-issue its command)"; exit 1; }
done
mkdir -p "$OUT"
python -m utils.benchmark report "${runs[@]%/}" --out "$OUT" --copy-runs --at 100000 200000 300000 500000 \
  --window 50000 --values values/log_std_mean values/advantage_max values/weight_max values/q_mean
snaps=()
for s in 0 1 2; do
  snaps+=("$R"/door-full-snapshots/door-binary__awac__$s/after-*.pt "$R"/door-full/runs/door-binary__awac__$s/checkpoint.pt)
done
title() { printf '# %s\n\n`%s`, on the door-full AWAC runs (seeds 0-2, 500K): definitions in the script'"'"'s docstring; read in ../README.md.\n\n' "$1" "$2"; }
{ title "Where door episodes fail, across training" "failure_modes.py --horizon 400 <checkpoints> --data door-human door-bc"
  python docs/results/door-paper/failure_modes.py --horizon 400 "${snaps[@]}" --data door-human door-bc; } > "$OUT/failure_modes.md"
{ title "How much the advantage clip flattens the actor's update" "clip_share.py <checkpoints>"
  python docs/results/door-paper/clip_share.py "${snaps[@]}"; } > "$OUT/clip_share.md"
{ title "Evaluation swings, and the pooled curve up to 150K" "swings.py --until 150000 <runs>"
  python docs/results/door-paper/swings.py --until 150000 "$R"/door-full/runs/door-binary__awac__[0-9]; } > "$OUT/swings.md"
echo "wrote $OUT"
