#!/usr/bin/env bash
# The original's four reference runs (ARE, TRE, MDRE, MDREA), then a table.
#
#   bash reference_script.sh                 # demo corpus (made on first use)
#   bash reference_script.sh path/to/audio_woZ_set01   # a real fold folder
#   bash reference_script.sh --short         # a few steps per model (CI)
#
# On a real fold folder every setting is the reference one (batch 128,
# lr 0.001, 10,000 steps max, GRU 200, keep 0.7 audio / 0.3 text, GloVe).
# The demo corpus is ~10x smaller than IEMOCAP, so there it uses batch 32
# (validation every 7 steps instead of 1) and standardised audio features;
# see README.md. Each run appends a line to TEST_run_result.txt and writes a
# SavedModel under runs/<stamp>/<model>/saved_model. The environment
# variables RUNS_DIR (default runs) and RESULT_FILE (default
# TEST_run_result.txt) move them elsewhere.
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup_env.sh

source tools/run_args.sh
extra=("${demo_flags[@]}")
if [ "$short" = 1 ]; then
  extra+=(--num_train_steps=6 --hidden_dim_audio=16 --hidden_dim_text=16)
fi

stamp="$(date +%Y%m%d-%H%M%S)"
out="${RUNS_DIR:-runs}/$stamp"
result_file="${RESULT_FILE:-TEST_run_result.txt}"
for model in ARE TRE MDRE MDREA; do
  echo "=== $model"
  start=$(date +%s)
  python train.py --model="$model" --data_dir="$data_dir" \
    --run_dir="$out/$model" --result_file="$result_file" \
    --lr=0.001 --num_train_steps=10000 \
    --encoder_size_audio=750 --num_layer_audio=1 --hidden_dim_audio=200 \
    --dr_audio=0.7 --num_layer_text=1 --hidden_dim_text=200 --dr_text=0.3 \
    --use_glove "${extra[@]}"
  echo "$model: $(( $(date +%s) - start )) s wall"
done

echo "=== $result_file (this invocation)"
tail -n 4 "$result_file"
python tools/results_table.py "$out"
