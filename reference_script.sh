#!/usr/bin/env bash
# The original's four reference runs (ARE, TRE, MDRE, MDREA), or with --all
# every model of the toolkit, then one comparison table.
#
#   bash reference_script.sh                 # demo corpus (made on first use)
#   bash reference_script.sh path/to/audio_woZ_set01   # a real fold folder
#   bash reference_script.sh --all           # every model, ensembles included
#   bash reference_script.sh --short         # a few steps per model (CI)
#   bash reference_script.sh --asr           # text models on gold vs ASR text
#
# On a real fold folder every reference setting is the original's (batch
# 128, lr 0.001, 10,000 steps max, GRU 200, keep 0.7 audio / 0.3 text,
# GloVe). The demo corpus is ~10x smaller than IEMOCAP, so there every run
# uses batch 32 (validation every 7 steps instead of 1) and standardised
# audio features; see README.md.
#
# --all adds the seed-system models (BLSTM_SA_TEXT, CNN_SPEC over log-mel
# spectrograms when the fold stores waveforms, else over MFCC, MMMF,
# TRANSFORMER_FUSION, TRANSFORMER_FUSION_BERT with its text encoder
# initialised from a BERT-style SavedModel, TRANSFORMER_FUSION_W2V2_BERT
# with wav2vec2 audio as well), the wav2vec2 models (W2V2,
# W2V2_TRE, W2V2_TREA; folds with waveforms only), two ensembles of
# CNN_SPEC + BLSTM_SA_TEXT (Sobczak's pair; weighted and feature level) and
# the classical baseline (BASELINE_SVM, BASELINE_LOGREG).
# The pretrained encoders come from WAV2VEC2_HANDLE and BERT_HANDLE (a
# TF-Hub URL or a SavedModel folder). Unset, the demo corpus uses tiny
# RANDOM-WEIGHT stand-ins (tools/make_*_standin.py, made once under
# demo_data/standins): they test the path, not what pretraining brings. On
# a real fold the rows without a handle are skipped.
#
# Each run appends a line to TEST_run_result.txt and writes a run folder
# (with its SavedModel) under runs/<stamp>/<row>. Environment: RUNS_DIR
# (default runs), RESULT_FILE (default TEST_run_result.txt), MODELS (the
# rows to run, space-separated), STEPS (max train steps, default 10000 with
# early stopping), FRAMES (--encoder_size_audio, default 750).
#
# --asr runs the text and fused reference models (TRE, MDRE, MDREA) twice,
# as the paper reports them: on gold transcripts and on what a speech
# recogniser hears. It builds two fold folders from a raw corpus with
# preprocessing.build_arrays (--transcripts=gold and --transcripts=asr; the
# same split, features and vocabulary policy) under ASR_DATA_DIR, trains
# each row on both (runs/<stamp>/gold/<row>, runs/<stamp>/asr/<row>) and
# prints a gold-vs-ASR table with the recogniser's WER. The corpus is the
# demo corpus's wavs (random5, fold 1), or BUILD_ARGS (build_arrays flags,
# e.g. "--corpus=iemocap --corpus_dir=DIR --split=random5 --glove=FILE").
# ASR is the recogniser spec (default pocketsphinx: ~1-3 s per clip per
# core, so ~20 min for the demo's 1,500 clips on 2 cores, cached per
# utterance in ASR_DATA_DIR/asr_cache afterwards); with --short and no ASR
# it is the random-weight wav2vec2-CTC stand-in (a path test: its text is
# random letters).
set -euo pipefail
cd "$(dirname "$0")"
source tools/setup_env.sh
source tools/run_args.sh

has_waveforms=0
if grep -q '"waveform"' "$data_dir/manifest.json" 2>/dev/null; then
  has_waveforms=1
fi
standins=demo_data/standins
w2v2_handle="${WAV2VEC2_HANDLE:-}"
bert_handle="${BERT_HANDLE:-}"
if [ "$all" = 1 ] && [ "$demo" = 1 ]; then
  if [ -z "$w2v2_handle" ]; then
    w2v2_handle="$standins/wav2vec2"
    [ -f "$w2v2_handle/saved_model.pb" ] || python \
      tools/make_wav2vec2_standin.py --output_dir="$w2v2_handle" --overwrite
  fi
  if [ -z "$bert_handle" ]; then
    bert_handle="$standins/bert"
    [ -f "$bert_handle/saved_model.pb" ] || python \
      tools/make_bert_standin.py --output_dir="$bert_handle" --overwrite
  fi
fi

if [ "$all" = 1 ]; then
  default_rows="ARE TRE MDRE MDREA BLSTM_SA_TEXT CNN_SPEC MMMF
    TRANSFORMER_FUSION TRANSFORMER_FUSION_BERT TRANSFORMER_FUSION_W2V2_BERT
    W2V2 W2V2_TRE W2V2_TREA
    ENSEMBLE_WEIGHTED ENSEMBLE_FEATURE BASELINE_SVM BASELINE_LOGREG"
else
  default_rows="ARE TRE MDRE MDREA"
fi
rows="${MODELS:-$default_rows}"
stamp="$(date +%Y%m%d-%H%M%S)"
out="${RUNS_DIR:-runs}/$stamp"
result_file="${RESULT_FILE:-TEST_run_result.txt}"
common=(--data_dir="$data_dir" --result_file="$result_file" --lr=0.001
        --num_train_steps="${STEPS:-10000}"
        --encoder_size_audio="${FRAMES:-750}" --use_glove
        ${demo_flags[@]+"${demo_flags[@]}"})
if [ "$short" = 1 ]; then
  common+=(--num_train_steps=6)
fi
cnn_input=mfcc
[ "$has_waveforms" = 1 ] && cnn_input=logmel

# Sets $row_flags to a row's train.py flags, or returns 1 (with a note) when
# the row cannot run on this fold. Each row gets only options its model
# takes (train.py refuses the others); --short adds tiny sizes.
set_row_flags() {
  local audio=(--num_layer_audio=1 --hidden_dim_audio=200 --dr_audio=0.7)
  local text=(--num_layer_text=1 --hidden_dim_text=200 --dr_text=0.3)
  local tf=(--model=TRANSFORMER_FUSION --hidden_dim_audio=64 --dr_audio=0.8
            --model_override=fusion=concat,use_side_features=true)
  local sa=() st=() sblstm=() scnn=() smmmf=() stf=()
  if [ "$short" = 1 ]; then
    sa=(--hidden_dim_audio=16)
    st=(--hidden_dim_text=16)
    sblstm=(--hidden_dim_text=16 --model_override=attention_units=8,hidden_units=8)
    scnn=(--model_override=cnn_filters=[4,8],hidden_units=8)
    smmmf=(--hidden_dim_audio=16 --hidden_dim_text=16
           --model_override=attention_units=8,fusion_units=8)
    stf=(--hidden_dim_audio=16 --model_override=transformer_units=16,transformer_ff_units=16,side_units=8,hidden_units=8,fusion_units=8)
  fi
  case "$1" in
    ARE) row_flags=(--model="$1" "${audio[@]}" ${sa[@]+"${sa[@]}"}) ;;
    TRE) row_flags=(--model="$1" "${text[@]}" ${st[@]+"${st[@]}"}) ;;
    MDRE|MDREA) row_flags=(--model="$1" "${audio[@]}" "${text[@]}"
                           ${sa[@]+"${sa[@]}"} ${st[@]+"${st[@]}"}) ;;
    # The classical baseline (fitted by scikit-learn; schedule flags unused).
    BASELINE_SVM|BASELINE_LOGREG) row_flags=(--model="$1") ;;
    BLSTM_SA_TEXT) row_flags=(--model="$1" --hidden_dim_text=128
                              --dr_text=0.7 ${sblstm[@]+"${sblstm[@]}"}) ;;
    CNN_SPEC) row_flags=(--model="$1" --dr_audio=0.7
                         --model_override=audio_input="$cnn_input",cnn_filters=[32,64]
                         ${scnn[@]+"${scnn[@]}"}) ;;
    MMMF) row_flags=(--model="$1" --hidden_dim_audio=64 --hidden_dim_text=64
                     --dr_audio=0.8 --dr_text=0.7
                     --model_override=pooling=attention
                     ${smmmf[@]+"${smmmf[@]}"}) ;;
    TRANSFORMER_FUSION) row_flags=("${tf[@]}" --model_override=audio_encoder=gru
                                   ${stf[@]+"${stf[@]}"}) ;;
    TRANSFORMER_FUSION_BERT)
      if [ -z "$bert_handle" ]; then
        echo "skipped: set BERT_HANDLE to a BERT-style SavedModel"; return 1
      fi
      row_flags=("${tf[@]}" --model_override=audio_encoder=gru
                 --text_encoder_handle="$bert_handle"
                 ${stf[@]+"${stf[@]}"}) ;;
    TRANSFORMER_FUSION_W2V2_BERT)
      # Patamia et al.'s combination: wav2vec2 speech + BERT text + a side
      # vector (the prosody functionals stand in for motion capture).
      if [ "$has_waveforms" = 0 ] || [ -z "$w2v2_handle" ] ||
         [ -z "$bert_handle" ]; then
        echo "skipped: needs waveforms in the fold, WAV2VEC2_HANDLE and" \
          "BERT_HANDLE"; return 1
      fi
      row_flags=(--model=TRANSFORMER_FUSION --hub_handle="$w2v2_handle"
                 --encoder_lr=1e-4 --text_encoder_handle="$bert_handle"
                 --model_override=audio_encoder=wav2vec2,fusion=concat,use_side_features=true
                 ${stf[@]+"${stf[@]}"}) ;;
    W2V2|W2V2_TRE|W2V2_TREA)
      if [ "$has_waveforms" = 0 ] || [ -z "$w2v2_handle" ]; then
        echo "skipped: needs waveforms in the fold (build_arrays" \
          "--store_waveforms) and WAV2VEC2_HANDLE"; return 1
      fi
      row_flags=(--model="$1" --hub_handle="$w2v2_handle" --encoder_lr=1e-4)
      if [ "$1" != W2V2 ]; then
        row_flags+=(--hidden_dim_text=200 --dr_text=0.3 ${st[@]+"${st[@]}"})
      fi ;;
    ENSEMBLE_WEIGHTED|ENSEMBLE_FEATURE)
      local method=weighted
      [ "$1" = ENSEMBLE_FEATURE ] && method=feature
      if [ ! -f "$out/CNN_SPEC/metrics.json" ] ||
         [ ! -f "$out/BLSTM_SA_TEXT/metrics.json" ]; then
        echo "skipped: needs the CNN_SPEC and BLSTM_SA_TEXT rows first"
        return 1
      fi
      row_flags=(--ensemble_members="$out/CNN_SPEC,$out/BLSTM_SA_TEXT"
                 --ensemble_method="$method") ;;
    *) echo "unknown row $1" >&2; exit 2 ;;
  esac
}

if [ "$asr" = 1 ]; then
  if [ -n "${BUILD_ARGS:-}" ]; then
    read -r -a build_args <<< "$BUILD_ARGS"
    asr_root="${ASR_DATA_DIR:-asr_data}"
  elif [ "$demo" = 1 ]; then
    build_args=(--corpus=manifest --manifest=demo_data/metadata.tsv
                --split=random5)
    asr_root="${ASR_DATA_DIR:-demo_data/asr}"
  else
    echo "--asr recognises the audio of a raw corpus, which a fold folder" \
      "does not hold: set BUILD_ARGS to build_arrays flags instead" >&2
    exit 2
  fi
  asr_spec="${ASR:-pocketsphinx}"
  if [ "$short" = 1 ] && [ -z "${ASR:-}" ]; then
    ctc="$standins/wav2vec2_ctc"
    [ -f "$ctc/saved_model.pb" ] || python tools/make_wav2vec2_standin.py \
      --ctc --output_dir="$ctc" --overwrite
    asr_spec="ctc:$ctc"
  fi
  for source in gold asr; do
    echo "=== build_arrays --transcripts=$source ($asr_root/$source)"
    python -m preprocessing.build_arrays "${build_args[@]}" \
      --output_dir="$asr_root/$source" --transcripts="$source" \
      --asr="$asr_spec" --asr_cache_dir="$asr_root/asr_cache"
  done
  fold="$(python -c 'import json, sys
print(sorted(json.load(open(sys.argv[1]))["folds"])[0])' \
    "$asr_root/asr/manifest.json")"
  ran=()
  failed=()
  for row in ${MODELS:-TRE MDRE MDREA}; do
    set_row_flags "$row" || continue
    for source in gold asr; do
      echo "=== $row on $source transcripts ($asr_root/$source/$fold)"
      if ! python train.py "${common[@]}" "${row_flags[@]}" \
          --data_dir="$asr_root/$source/$fold" \
          --run_dir="$out/$source/$row"; then
        failed+=("$row/$source")
      fi
    done
    ran+=("$row")
  done
  echo "=== gold vs ASR transcripts ($asr_root, $out)"
  python tools/results_table.py --asr "$out" "$asr_root/asr/$fold" \
    ${ran[@]+"${ran[@]}"}
  if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]}" >&2
    exit 1
  fi
  exit 0
fi

ran=()
failed=()
for row in $rows; do
  echo "=== $row"
  set_row_flags "$row" || continue
  start=$(date +%s)
  # A failed row is reported in the table; the other rows still run.
  if python train.py "${common[@]}" "${row_flags[@]}" \
      --run_dir="$out/$row"; then
    echo "$(( $(date +%s) - start ))" > "$out/$row/wall_seconds"
    echo "$row: $(cat "$out/$row/wall_seconds") s wall"
  else
    failed+=("$row")
  fi
  ran+=("$row")
done

echo "=== $result_file (this invocation)"
tail -n "$(( ${#ran[@]} - ${#failed[@]} ))" "$result_file"
echo "=== comparison ($data_dir, $out)"
python tools/results_table.py "$out" ${ran[@]+"${ran[@]}"}
if [ "${#failed[@]}" -gt 0 ]; then
  echo "FAILED: ${failed[*]}" >&2
  exit 1
fi
