#!/usr/bin/env bash
# Trains every MFCC/text model of the toolkit on one fold and prints one
# comparison table (test WA, UA, trainable parameters, train time).
#
#   bash tools/compare_models.sh                    # demo corpus (made on first use)
#   bash tools/compare_models.sh path/to/fold       # a real fold folder
#   bash tools/compare_models.sh --short            # a few steps per model (CI)
#
# Models: ARE TRE MDRE MDREA (reference settings) and the seed-system models
# BLSTM_SA_TEXT CNN_SPEC MMMF TRANSFORMER_FUSION (models/seed_models.py) with
# the sizes below. The wav2vec2 models need a TF-Hub handle and are left out.
# On the demo corpus every run uses batch 32 and --normalize_audio, as
# reference_script.sh does. Environment: STEPS (max train steps, default
# 10000 with early stopping), FRAMES (--encoder_size_audio, default 750),
# MODELS (space-separated subset), RUNS_DIR (default runs), RESULT_FILE
# (default TEST_run_result.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup_env.sh

source tools/run_args.sh
common=(--lr=0.001 --num_train_steps="${STEPS:-10000}"
        --encoder_size_audio="${FRAMES:-750}" --use_glove "${demo_flags[@]}")
small=()
if [ "$short" = 1 ]; then
  common+=(--num_train_steps=6)
  small=(--hidden_dim_audio=16 --hidden_dim_text=16 --attention_units=8
         --hidden_units=8 --fusion_units=8 --cnn_filters=4,8
         --transformer_units=16 --transformer_ff_units=16 --side_units=8)
fi

model_flags() {
  case "$1" in
    ARE|TRE|MDRE|MDREA)
      echo --num_layer_audio=1 --hidden_dim_audio=200 --dr_audio=0.7 \
        --num_layer_text=1 --hidden_dim_text=200 --dr_text=0.3 ;;
    BLSTM_SA_TEXT) echo --hidden_dim_text=128 --dr_text=0.7 ;;
    CNN_SPEC) echo --cnn_filters=32,64 --dr_audio=0.7 ;;
    MMMF) echo --hidden_dim_audio=64 --hidden_dim_text=64 --dr_audio=0.8 \
      --dr_text=0.7 --mmmf_pooling=attention ;;
    TRANSFORMER_FUSION) echo --hidden_dim_audio=64 --dr_audio=0.8 \
      --audio_encoder=gru --fusion=concat --use_side_features ;;
  esac
}

models="${MODELS:-ARE TRE MDRE MDREA BLSTM_SA_TEXT CNN_SPEC MMMF TRANSFORMER_FUSION}"
stamp="$(date +%Y%m%d-%H%M%S)"
out="${RUNS_DIR:-runs}/compare-$stamp"
result_file="${RESULT_FILE:-TEST_run_result.txt}"
for model in $models; do
  echo "=== $model"
  start=$(date +%s)
  # shellcheck disable=SC2046
  python train.py --model="$model" --data_dir="$data_dir" \
    --run_dir="$out/$model" --result_file="$result_file" \
    "${common[@]}" $(model_flags "$model") ${small[@]+"${small[@]}"}
  echo "$((  $(date +%s) - start ))" > "$out/$model/wall_seconds"
done

echo "=== comparison ($data_dir, $out)"
python - "$out" $models <<'EOF'
import json, os, sys

import numpy as np

from models import registry

root, names = sys.argv[1], sys.argv[2:]
print("| model | params | steps | dev WA | test WA | test UA | train s | wall s |")
print("|---|---|---|---|---|---|---|---|")
for name in names:
    run = os.path.join(root, name)
    with open(os.path.join(run, "metrics.json")) as f:
        m = json.load(f)
    with open(os.path.join(run, "config.json")) as f:
        c = json.load(f)
    model = registry.build_model(c["model"]["name"], **c["model"]["kwargs"])
    params = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    with open(os.path.join(run, "wall_seconds")) as f:
        wall = f.read().strip()
    print(f"| {name} | {params:,} | {m['steps']} | {m['dev']['wa']:.3f} | "
          f"{m['test']['wa']:.3f} | {m['test']['ua']:.3f} | "
          f"{m['train_seconds']:.0f} | {wall} |")
EOF
