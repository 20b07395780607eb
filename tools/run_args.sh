# Sourced by reference_script.sh: reads its arguments, `[--all] [--short]
# [--asr] [FOLD_DIR]`, into $all, $short, $asr and $data_dir; without a fold
# folder (and, with --asr, without BUILD_ARGS naming a raw corpus) it makes
# the demo corpus on first use and sets $demo_flags to the demo settings
# (batch 32 and standardised audio; see README.md) and $demo=1.
data_dir=""
short=0
all=0
asr=0
for arg in "$@"; do
  case "$arg" in
    --short) short=1 ;;
    --all) all=1 ;;
    --asr) asr=1 ;;
    -*) echo "unknown option $arg (valid: --all, --short, --asr, a fold" \
          "folder)" >&2
        exit 2 ;;
    *) data_dir="$arg" ;;
  esac
done
demo_flags=()
demo=0
if [ -z "$data_dir" ] && { [ "$asr" = 0 ] || [ -z "${BUILD_ARGS:-}" ]; }; then
  demo=1
  data_dir=demo_data/demo_set01
  if [ ! -f "$data_dir/manifest.json" ]; then
    python -m preprocessing.demo_corpus --output_dir=demo_data --overwrite
  fi
  demo_flags=(--batch_size=32 --normalize_audio)
fi
