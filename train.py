"""Trains ARE, TRE, MDRE or MDREA on a fold folder, as the original trainers,
or the wav2vec2 models W2V2, W2V2_TRE and W2V2_TREA.
The seed-system models BLSTM_SA_TEXT, CNN_SPEC, MMMF and TRANSFORMER_FUSION
(models/seed_models.py) train the same way (`bash reference_script.sh
--all` trains every model). With --ensemble_members it builds an ensemble
of trained runs instead (ensemble_runs.py). BASELINE_SVM and BASELINE_LOGREG
(the classical baseline) are fitted by scikit-learn instead of trained
(baseline_runs.py) and leave the same run folder.

Example (the reference MDREA run; defaults are the reference settings):

    python train.py --model=MDREA --data_dir=demo_data/demo_set01

wav2vec2 + text, fine-tuning a TF-Hub wav2vec2 (or any SavedModel directory,
e.g. the offline stand-in of tools/make_wav2vec2_standin.py) with its own
learning rate:

    python train.py --model=W2V2_TREA --data_dir=demo_data/demo_set01 \
        --hub_handle=https://tfhub.dev/vasudevgupta7/wav2vec2/1 \
        --batch_size=8 --lr=1e-3 --encoder_lr=1e-5

Writes `<output_dir>/<run name>/` with `config.json`, checkpoints (resume a
killed run with `--run_dir=<that folder>`), TensorBoard events,
`metrics.json`, `model.weights.h5` and `saved_model/`, and appends one line
to `TEST_run_result.txt`.
"""

import inspect
import os

from absl import app
from absl import flags
from absl import logging


def define_flags():
    """Defines this binary's flags (only when it runs as a program, so that
    the binaries stay importable together, e.g. by the tests)."""
    from models import registry

    flags.DEFINE_enum(
        "model",
        "MDREA",
        list(registry.model_names()),
        "Which model to train.",
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "Fold folder in the reference format (e.g. "
        "demo_data/demo_set01 or .../audio_woZ_set01).",
    )
    flags.DEFINE_string(
        "output_dir", "runs", "Runs are written below this folder."
    )
    flags.DEFINE_string(
        "run_dir",
        None,
        "Exact run folder; an existing one is resumed from its "
        "last checkpoint. Default: <output_dir>/<run name>.",
    )
    flags.DEFINE_string(
        "result_file",
        "TEST_run_result.txt",
        "File the run's result line is appended to.",
    )
    flags.DEFINE_string(
        "graph_prefix",
        None,
        "Run-name prefix (default: the original's per "
        "model: SE_prosody, SE_nlp, SE_multi, SE_multi_attn_prosody; "
        "SE_w2v2, SE_w2v2_nlp, SE_w2v2_nlp_attn for the wav2vec2 models).",
    )
    flags.DEFINE_enum(
        "recipe", "reference", ["reference", "real"],
        "Training recipe (recipes.py): reference = the original schedule "
        "exactly; real = for small real corpora (shuffled epochs, epoch "
        "early stopping, warm-up + cosine decay, AdamW, class-balanced "
        "loss, per-speaker normalisation). Every recipe option below "
        "left unset takes the recipe's value.")
    flags.DEFINE_string(
        "config", None,
        "JSON file of flag values (e.g. written by search.py); flags given "
        "on the command line win.")
    flags.DEFINE_integer("batch_size", None,
                         "Global batch size (reference 128, real 32).")
    flags.DEFINE_float("lr", None, "Adam learning rate (default 0.001).")
    flags.DEFINE_integer("num_train_steps", None,
                         "Maximum training steps (reference 10000; "
                         "ignored with --max_epochs).")
    flags.DEFINE_integer(
        "patience",
        None,
        "Early stopping: stop at the (patience+1)-th validation "
        "in a row without a better dev score (reference 7 validations; "
        "with --max_epochs: epochs, real 6).",
    )
    flags.DEFINE_integer(
        "max_epochs", None,
        "Train at most this many epochs, validating once per epoch "
        "(real 30; reference: step schedule).")
    flags.DEFINE_integer("min_epochs", None,
                         "Never stop early before this many epochs (real "
                         "10).")
    flags.DEFINE_integer("warmup_epochs", None,
                         "Linear learning-rate warm-up (real 2 epochs).")
    flags.DEFINE_enum("lr_decay", None, ["none", "cosine", "linear"],
                      "Learning-rate decay to 0 at the last step (real "
                      "cosine).")
    flags.DEFINE_float("weight_decay", None,
                       "AdamW decoupled weight decay (0 = Adam; real 1e-3).")
    flags.DEFINE_boolean("class_balance", None,
                         "Weight the training loss by n/(K·n_class) (real "
                         "on).")
    flags.DEFINE_boolean(
        "speaker_norm", None,
        "Standardise MFCC and prosody per speaker with each speaker's own "
        "utterances, in every split (needs the fold manifest's "
        "split_speakers; real on).")
    flags.DEFINE_boolean("spec_augment", None,
                         "SpecAugment time/frequency masks on MFCC or "
                         "log-mel in training (off in both recipes).")
    flags.DEFINE_boolean("wave_augment", None,
                         "Gain, noise and speed perturbation of training "
                         "waveforms (wav2vec2, log-mel; off in both).")
    flags.DEFINE_enum("selection", None, ["loss", "ua"],
                      "Keep the weights of the lowest dev loss (default) or "
                      "the highest dev UA.")
    flags.DEFINE_integer(
        "encoder_size_audio", 750, "MFCC frames fed to the audio GRU."
    )
    flags.DEFINE_integer("num_layer_audio", 1, "Audio GRU layers.")
    flags.DEFINE_integer("hidden_dim_audio", 200, "Audio GRU units.")
    flags.DEFINE_float("dr_audio", 0.7, "Audio dropout KEEP probability.")
    flags.DEFINE_integer("num_layer_text", 1, "Text GRU layers.")
    flags.DEFINE_integer("hidden_dim_text", 200, "Text GRU units.")
    flags.DEFINE_float("dr_text", 0.3, "Text dropout KEEP probability.")
    flags.DEFINE_boolean(
        "use_glove", True, "Initialise the embedding from W_embedding.npy."
    )
    flags.DEFINE_integer(
        "embedding_dim", 100, "Embedding width when --nouse_glove."
    )
    flags.DEFINE_boolean(
        "embedding_trainable", True, "Fine-tune the word embedding."
    )
    flags.DEFINE_boolean(
        "mask_attention",
        True,
        "MDREA: mask padded words (False = the paper-era unmasked attention).",
    )
    flags.DEFINE_boolean(
        "normalize_audio",
        None,
        "Standardise MFCC and prosody with train-split "
        "statistics (kept in the model). Off = raw features, as the "
        "original (real: on).",
    )
    flags.DEFINE_enum(
        "sampling",
        None,
        ["sample", "epochs"],
        "sample: each batch drawn "
        "uniformly with replacement (original); epochs: shuffled epochs "
        "(real).",
    )
    flags.DEFINE_integer(
        "seed", 0, "Seed of initialisers, dropout and the sampler."
    )
    flags.DEFINE_enum(
        "strategy",
        "auto",
        ["auto", "mirrored", "multi_worker", "one_device"],
        "tf.distribute strategy (auto: mirrored over visible GPUs, else CPU).",
    )
    flags.DEFINE_enum(
        "gru_impl",
        "tf1",
        ["tf1", "cudnn"],
        "ARE/TRE/MDRE/MDREA GRU: tf1 = the original's cell (reset_after="
        "False); cudnn = Keras' reset_after cell, cuDNN on a GPU, NOT the "
        "original's cell (+3H parameters per GRU layer).",
    )
    flags.DEFINE_boolean("jit_compile", False, "XLA-compile the train step.")
    flags.DEFINE_boolean(
        "mixed_precision",
        False,
        "Compute in float16 with float32 weights and loss scaling "
        "(mixed_float16); GPU only, ignored with a log line on CPU.",
    )
    flags.DEFINE_string(
        "hub_handle",
        None,
        "wav2vec2 models: the encoder, a TF-Hub URL (e.g. "
        "https://tfhub.dev/vasudevgupta7/wav2vec2/1, cached in "
        "$TFHUB_CACHE_DIR) or a TF2 SavedModel directory (e.g. from "
        "tools/make_wav2vec2_standin.py).",
    )
    flags.DEFINE_boolean(
        "encoder_trainable", True, "wav2vec2 models: fine-tune the encoder."
    )
    flags.DEFINE_boolean(
        "freeze_feature_extractor",
        True,
        "wav2vec2 models: keep the convolutional feature extractor frozen "
        "while the rest of the encoder trains.",
    )
    flags.DEFINE_float(
        "encoder_lr",
        1e-5,
        "wav2vec2 models (and TRANSFORMER_FUSION --text_encoder_handle): "
        "Adam learning rate of the pretrained encoder (the rest uses --lr).",
    )
    flags.DEFINE_integer(
        "fixed_input_length",
        None,
        "wav2vec2 models: samples fed to the encoder per example (default: "
        "the SavedModel's own fixed length, else whole utterances).",
    )
    flags.DEFINE_enum(
        "pooling",
        "mean",
        ["mean", "attention"],
        "wav2vec2 models: pooling of the encoder frames (masked mean or "
        "attention with a learned query).",
    )
    flags.DEFINE_boolean("export", True, "Export a SavedModel at the end.")
    flags.DEFINE_boolean(
        "baseline_select", True,
        "BASELINE_SVM/BASELINE_LOGREG: pick C (and the RBF gamma) on dev UA "
        "from a small grid (never on test); off: C=1, gamma=1/D.")
    flags.DEFINE_enum(
        "baseline_class_weight", "balanced", ["balanced", "none"],
        "BASELINE_*: class weights of the scikit-learn fit.")
    # Ensembles of trained runs (ensemble_runs.py): --model and --data_dir
    # are then ignored (the members' fold folder is used).
    flags.DEFINE_list(
        "ensemble_members", None,
        "Comma-separated run folders to combine into an ensemble run "
        "instead of training --model (same fold folder and "
        "--encoder_size_audio).")
    flags.DEFINE_enum(
        "ensemble_method", "weighted",
        ["max_confidence", "average", "weighted", "feature"],
        "Ensembles: combine the members' probabilities (max_confidence, "
        "average, weighted with weights fitted on dev) or train a linear "
        "head on their frozen features (feature).")
    flags.DEFINE_integer(
        "grid_steps", 10,
        "Ensembles, weighted: weights are multiples of 1/grid_steps.")
    # The seed-system models (models/seed_models.py). They also read
    # --hidden_dim_audio/--hidden_dim_text (GRU/LSTM units), --dr_audio/
    # --dr_text (keep probabilities), --num_layer_audio and the embedding
    # flags.
    flags.DEFINE_integer(
        "attention_units", 64,
        "BLSTM_SA_TEXT, MMMF: width of the attention projections.")
    flags.DEFINE_integer(
        "hidden_units", 64,
        "BLSTM_SA_TEXT, CNN_SPEC, TRANSFORMER_FUSION: hidden layer before "
        "the logits.")
    flags.DEFINE_enum(
        "are_pooling", "mean_max", ["mean_max", "mean_std", "mean",
                                    "attention"],
        "ARE_POOL: pooling of the GRU outputs (masked mean and max, mean "
        "and standard deviation, mean, or attention).")
    flags.DEFINE_integer(
        "frame_stride", 1,
        "ARE_POOL: average this many consecutive frames before the GRU.")
    flags.DEFINE_boolean(
        "are_vector_norm", False,
        "ARE_POOL: batch-normalise the pooled vector (⊕ prosody) before "
        "the hidden layer (pooled means of standardised frames have a small, "
        "uneven spread).")
    flags.DEFINE_enum(
        "mmmf_pooling", "attention", ["last", "mean", "attention"],
        "MMMF: temporal pooling of each modality's BLSTM.")
    flags.DEFINE_integer(
        "fusion_units", 64,
        "MMMF, TRANSFORMER_FUSION (pairwise): common size of the modality "
        "vectors.")
    flags.DEFINE_list("cnn_filters", ["32", "64"],
                      "CNN_SPEC (and TRANSFORMER_FUSION --audio_encoder=cnn): "
                      "channels per conv block.")
    flags.DEFINE_integer("cnn_kernel_size", 3, "CNN kernel size.")
    flags.DEFINE_boolean("use_prosody", False,
                         "CNN_SPEC: also feed the prosody functionals.")
    flags.DEFINE_enum("cnn_input", "mfcc", ["mfcc", "logmel"],
                      "CNN_SPEC: its time-frequency image, the fold's MFCC "
                      "frames or a log-mel spectrogram computed from the "
                      "fold's raw waveforms (needs a fold with waveforms: "
                      "the demo corpus, build_arrays --store_waveforms).")
    flags.DEFINE_integer("n_mels", 64,
                         "CNN_SPEC --cnn_input=logmel: mel bands.")
    flags.DEFINE_integer("transformer_units", 64,
                         "TRANSFORMER_FUSION: transformer width.")
    flags.DEFINE_integer("transformer_heads", 4,
                         "TRANSFORMER_FUSION: attention heads.")
    flags.DEFINE_integer("transformer_layers", 2,
                         "TRANSFORMER_FUSION: transformer blocks.")
    flags.DEFINE_integer("transformer_ff_units", 128,
                         "TRANSFORMER_FUSION: feed-forward width.")
    flags.DEFINE_float("transformer_dropout", 0.1,
                       "TRANSFORMER_FUSION: dropout RATE in the transformer.")
    flags.DEFINE_enum("audio_encoder", "gru", ["gru", "cnn", "wav2vec2"],
                      "TRANSFORMER_FUSION: audio encoder (ARE's GRU, "
                      "CNN_SPEC's CNN, or wav2vec2: then --hub_handle, "
                      "--encoder_trainable, --freeze_feature_extractor, "
                      "--pooling, --fixed_input_length and --encoder_lr "
                      "apply as for the W2V2 models).")
    flags.DEFINE_boolean(
        "use_side_features", True,
        "TRANSFORMER_FUSION: a third, dense side modality (the prosody "
        "vector, standing in for motion-capture features).")
    flags.DEFINE_integer("side_units", 32,
                         "TRANSFORMER_FUSION: side-feature projection.")
    flags.DEFINE_string(
        "side_features", "audio_prosody",
        "TRANSFORMER_FUSION: the side input, audio_prosody or the name of a "
        "per-utterance float extra array [n, D] of the fold (listed in its "
        "manifest.json 'extras', e.g. mocap); D is read from the fold.")
    flags.DEFINE_enum("fusion", "concat", ["concat", "pairwise"],
                      "TRANSFORMER_FUSION: modality fusion.")
    flags.DEFINE_float("fusion_keep_prob", 0.7,
                       "TRANSFORMER_FUSION: keep probability before logits.")
    flags.DEFINE_string(
        "text_encoder_handle", None,
        "TRANSFORMER_FUSION: a BERT-style TF-Hub URL or local SavedModel "
        "directory to use as the text encoder instead of the from-scratch "
        "transformer (an offline random stand-in: python "
        "tools/make_bert_standin.py --output_dir=DIR). Its learning rate is "
        "--encoder_lr.")
    flags.DEFINE_boolean(
        "text_encoder_trainable", True,
        "TRANSFORMER_FUSION --text_encoder_handle: fine-tune the encoder "
        "(else frozen).")
    flags.DEFINE_enum(
        "text_encoder_pooling", "pooled", ["pooled", "mean"],
        "TRANSFORMER_FUSION --text_encoder_handle: text vector = the "
        "handle's pooled_output, or the masked mean of its sequence_output.")
    flags.DEFINE_integer(
        "text_encoder_seq_length", 128,
        "TRANSFORMER_FUSION --text_encoder_handle: longest WordPiece "
        "sequence ([CLS] and [SEP] included); longer texts are truncated.")


DEFAULT_PREFIXES = {
    "ARE": "SE_prosody",
    "TRE": "SE_nlp",
    "MDRE": "SE_multi",
    "MDREA": "SE_multi_attn_prosody",
    "W2V2": "SE_w2v2",
    "W2V2_TRE": "SE_w2v2_nlp",
    "W2V2_TREA": "SE_w2v2_nlp_attn",
    "BLSTM_SA_TEXT": "SE_blstm_sa",
    "CNN_SPEC": "SE_cnn_spec",
    "MMMF": "SE_mmmf",
    "TRANSFORMER_FUSION": "SE_transformer_fusion",
    "ARE_POOL": "SE_prosody_pool",
}
SEED_MODELS = ("BLSTM_SA_TEXT", "CNN_SPEC", "MMMF", "TRANSFORMER_FUSION")
# The classical baseline (models/baseline.py, baseline_runs.py).
BASELINE_MODELS = ("BASELINE_SVM", "BASELINE_LOGREG")


def _seed_model_parts(model, hparams):
    """Run-name fields of the seed-system models (after a model tag)."""
    if model == "BLSTM_SA_TEXT":
        return [("H", hparams["text_units"]),
                ("A", hparams["attention_units"]),
                ("dr", hparams["text_keep_prob"])]
    if model == "CNN_SPEC":
        parts = [("es", hparams["encoder_size_audio"]),
                 ("C", "-".join(str(f) for f in hparams["cnn_filters"])),
                 ("dr", hparams["audio_keep_prob"])]
        if hparams.get("audio_input") == "logmel":
            parts.append(("I", f"logmel{hparams['n_mels']}"))
        return parts
    if model == "MMMF":
        return [("HA", hparams["audio_units"]), ("HT", hparams["text_units"]),
                ("P", hparams["pooling"])]
    if hparams.get("text_encoder_handle"):
        # A pretrained text encoder: E0 frozen, E1 fine-tuned (lrE).
        trainable = hparams["text_encoder_trainable"]
        text = [("TE", f"{int(trainable)}{hparams['text_encoder_pooling']}")]
        if trainable:
            text.append(("lrE", hparams["encoder_lr"]))
    else:
        text = [("W", hparams["transformer_units"]),
                ("N", hparams["transformer_layers"])]
    audio = [("A", hparams["audio_encoder"])]
    if hparams["audio_encoder"] == "wav2vec2":
        # One lrE field serves both pretrained encoders.
        has_lr = any(tag == "lrE" for tag, _ in text)
        audio += [part for part in _wav2vec2_parts(hparams)
                  if not (has_lr and part[0] == "lrE")]
    side = hparams.get("side_features", "audio_prosody")
    side = (int(hparams["use_side_features"]) if side == "audio_prosody"
            or not hparams["use_side_features"] else side)
    return text + audio + [("S", side), ("F", hparams["fusion"])]
WAV2VEC2_MODELS = ("W2V2", "W2V2_TRE", "W2V2_TREA")


def _wav2vec2_parts(hparams):
    """Run-name fields of the wav2vec2 encoder: pooling, training mode.

    E0 = frozen encoder; E1F = fine-tuned with a frozen feature extractor;
    E1 = fully fine-tuned; lrE = the encoder's learning rate when it trains.
    """
    trainable = hparams["encoder_trainable"]
    mode = "0" if not trainable else (
        "1F" if hparams["freeze_feature_extractor"] else "1")
    parts = [("P", hparams["pooling"]), ("E", mode)]
    if trainable:
        parts.append(("lrE", hparams["encoder_lr"]))
    if hparams.get("fixed_input_length"):
        parts.append(("S", hparams["fixed_input_length"]))
    return parts


def run_name_parts(model, hparams, use_glove, embedding_trainable):
    """The original's run-name fields for `model` (see yoon_spec.md §4).

    The wav2vec2 models get the encoder's fields (`_wav2vec2_parts`), then
    TRE's as in MDRE's names (esT, LT, HT, G, drT).
    """
    audio = [
        ("es", hparams["encoder_size_audio"]),
        ("L", hparams["audio_layers"]),
        ("H", hparams["audio_units"]),
    ]
    text = [
        ("es", 128),
        ("L", hparams["text_layers"]),
        ("H", hparams["text_units"]),
        ("G", f"{int(use_glove)}{'' if embedding_trainable else 'F'}"),
    ]
    if model in SEED_MODELS:
        return _seed_model_parts(model, hparams)
    if model == "ARE":
        return audio + [("dr", hparams["audio_keep_prob"])]
    if model == "ARE_POOL":
        return audio + [("dr", hparams["audio_keep_prob"]),
                        ("P", hparams["pooling"]),
                        ("S", hparams["frame_stride"])] + (
                            [("BN", 1)] if hparams.get("vector_norm") else [])
    if model == "TRE":
        return text + [("dr", hparams["text_keep_prob"])]
    if model in WAV2VEC2_MODELS:
        parts = _wav2vec2_parts(hparams)
        if model == "W2V2":
            return parts
        return (
            parts
            + [(tag + "T", value) for tag, value in text[:3]]
            + [text[3], ("drT", hparams["text_keep_prob"])]
        )
    return (
        [(tag + "A", value) for tag, value in audio]
        + [("drA", hparams["audio_keep_prob"])]
        + [(tag + "T", value) for tag, value in text[:3]]
        + [text[3], ("drT", hparams["text_keep_prob"])]
    )


def train(
    model,
    data_dir,
    output_dir="runs",
    run_dir=None,
    result_file="TEST_run_result.txt",
    graph_prefix=None,
    recipe="reference",
    batch_size=None,
    lr=None,
    num_train_steps=None,
    patience=None,
    max_epochs=None,
    min_epochs=None,
    warmup_epochs=None,
    lr_decay=None,
    weight_decay=None,
    class_balance=None,
    speaker_norm=None,
    spec_augment=None,
    wave_augment=None,
    selection=None,
    encoder_size_audio=750,
    num_layer_audio=1,
    hidden_dim_audio=200,
    dr_audio=0.7,
    num_layer_text=1,
    hidden_dim_text=200,
    dr_text=0.3,
    use_glove=True,
    embedding_dim=100,
    embedding_trainable=True,
    mask_attention=True,
    gru_impl="tf1",
    normalize_audio=None,
    sampling=None,
    seed=0,
    strategy="auto",
    jit_compile=False,
    mixed_precision=False,
    export=True,
    hub_handle=None,
    encoder_trainable=True,
    freeze_feature_extractor=True,
    encoder_lr=1e-5,
    fixed_input_length=None,
    pooling="mean",
    attention_units=64,
    hidden_units=64,
    are_pooling="mean_max",
    frame_stride=1,
    are_vector_norm=False,
    mmmf_pooling="attention",
    fusion_units=64,
    cnn_filters=(32, 64),
    cnn_kernel_size=3,
    use_prosody=False,
    cnn_input="mfcc",
    n_mels=64,
    transformer_units=64,
    transformer_heads=4,
    transformer_layers=2,
    transformer_ff_units=128,
    transformer_dropout=0.1,
    audio_encoder="gru",
    use_side_features=True,
    side_units=32,
    side_features="audio_prosody",
    fusion="concat",
    fusion_keep_prob=0.7,
    text_encoder_handle=None,
    text_encoder_trainable=True,
    text_encoder_pooling="pooled",
    text_encoder_seq_length=128,
    baseline_select=True,
    baseline_class_weight="balanced",
    log=print,
):
    """Trains one model; returns (run_dir, TrainResult, result line).

    Arguments mirror the flags of this binary (see `--help`); the recipe
    options left None take the values of `recipe` (recipes.py). A run folder
    that already finished (same model config and data) is not trained
    again: its result line is returned with TrainResult None.

    Raises:
        run_files.RunError: a setting no run can use (checked before
            anything is read or written), a resumed run with another
            config, a damaged checkpoint state.
        reference_arrays.DataError: a bad fold folder.
    """
    settings = {name: value for name, value in locals().items()
                if name != "log"}
    import keras

    import experiment
    import recipes
    from models import bert_text_encoder
    from models import optimizers
    from models import run_files
    from models import training
    from models import wav2vec2_models

    experiment.check_settings(**settings)
    if model in BASELINE_MODELS:
        # Fitted by scikit-learn, not by the Trainer (baseline_runs.py); the
        # training-schedule arguments do not apply, the recipe's per-speaker
        # normalisation does (the same features as the neural models).
        import baseline_runs

        return baseline_runs.train_baseline(
            model, data_dir, output_dir, run_dir, result_file, graph_prefix,
            batch_size or 128, encoder_size_audio, seed, export,
            baseline_select, baseline_class_weight,
            recipes.resolve(recipe, speaker_norm=speaker_norm)[
                "speaker_norm"], log)
    options = recipes.resolve(
        recipe, batch_size=batch_size, lr=lr,
        num_train_steps=num_train_steps, patience=patience,
        sampling=sampling, max_epochs=max_epochs, min_epochs=min_epochs,
        warmup_epochs=warmup_epochs, lr_decay=lr_decay,
        weight_decay=weight_decay, class_balance=class_balance,
        speaker_norm=speaker_norm, normalize_audio=normalize_audio,
        spec_augment=spec_augment, wave_augment=wave_augment,
        selection=selection)
    batch_size, sampling = options["batch_size"], options["sampling"]
    normalize_audio = options["normalize_audio"]
    # Before any TF op (multi_worker needs that) and before any output:
    # the global batch must split over the replicas.
    distribution = training.make_strategy(strategy)
    training.check_batch_size(batch_size, distribution)
    # A wav2vec2 audio encoder: the W2V2 models, or TRANSFORMER_FUSION
    # --audio_encoder=wav2vec2.
    is_wav2vec2 = model in WAV2VEC2_MODELS or (
        model == "TRANSFORMER_FUSION" and audio_encoder == "wav2vec2")
    if is_wav2vec2:
        if not hub_handle:
            raise run_files.RunError(
                f"--model={model} needs --hub_handle: a TF-Hub URL such as "
                "https://tfhub.dev/vasudevgupta7/wav2vec2/1 or a SavedModel "
                "directory (an offline stand-in: python "
                "tools/make_wav2vec2_standin.py --output_dir=DIR)."
            )
        if "://" not in hub_handle:
            # A local directory: absolute, so that evaluate.py and export.py
            # rebuild the model from anywhere.
            hub_handle = os.path.abspath(hub_handle)
    # A pretrained BERT-style text encoder (TRANSFORMER_FUSION only).
    uses_text_encoder = bool(text_encoder_handle)
    if uses_text_encoder:
        if model != "TRANSFORMER_FUSION":
            raise run_files.RunError(
                f"--text_encoder_handle applies to TRANSFORMER_FUSION only; "
                f"found --model={model}."
            )
        if "://" not in text_encoder_handle:
            text_encoder_handle = os.path.abspath(text_encoder_handle)
    hparams = dict(
        audio_units=hidden_dim_audio,
        audio_layers=num_layer_audio,
        audio_keep_prob=dr_audio,
        text_units=hidden_dim_text,
        text_layers=num_layer_text,
        text_keep_prob=dr_text,
        embedding_trainable=embedding_trainable,
        mask_attention=mask_attention,
        seed=seed,
    )
    if model in ("ARE", "TRE", "MDRE", "MDREA"):
        hparams["gru_impl"] = gru_impl
    if model in SEED_MODELS:
        hparams.update(
            attention_units=attention_units,
            hidden_units=hidden_units,
            pooling=mmmf_pooling,
            fusion_units=fusion_units,
            cnn_filters=[int(f) for f in cnn_filters],
            cnn_kernel_size=cnn_kernel_size,
            use_prosody=use_prosody,
            audio_input=cnn_input,
            n_mels=n_mels,
            transformer_units=transformer_units,
            transformer_heads=transformer_heads,
            transformer_layers=transformer_layers,
            transformer_ff_units=transformer_ff_units,
            transformer_dropout=transformer_dropout,
            audio_encoder=audio_encoder,
            use_side_features=use_side_features,
            side_units=side_units,
            fusion=fusion,
            fusion_keep_prob=fusion_keep_prob,
        )
        if model != "MMMF":
            del hparams["pooling"]
        if uses_text_encoder:
            # Only then: configs of from-scratch runs stay as they were, so
            # those runs still resume.
            hparams.update(
                text_encoder_handle=text_encoder_handle,
                text_encoder_trainable=text_encoder_trainable,
                text_encoder_pooling=text_encoder_pooling,
                text_encoder_seq_length=text_encoder_seq_length,
            )
        if side_features != "audio_prosody":
            # Only then, as above: side_dim is filled in from the fold.
            hparams.update(side_features=side_features)
    if model == "ARE_POOL":
        hparams.update(pooling=are_pooling, frame_stride=frame_stride,
                       hidden_units=hidden_units)
        if are_vector_norm:
            # Only then: configs of earlier runs stay as they were.
            hparams.update(vector_norm=True)
    if is_wav2vec2:
        hparams.update(
            hub_handle=hub_handle,
            encoder_trainable=encoder_trainable,
            freeze_feature_extractor=freeze_feature_extractor,
            fixed_input_length=fixed_input_length,
            pooling=pooling,
        )
    # The model's arguments decide what is read (e.g. the waveforms of a
    # log-mel CNN_SPEC).
    fold = experiment.load_fold(data_dir, model, hparams)
    if options["speaker_norm"]:
        experiment.normalize_speakers(fold, encoder_size_audio)
    kwargs = experiment.model_kwargs(
        model, fold, use_glove, embedding_dim, normalize_audio, **hparams
    )
    name = run_files.run_name(
        graph_prefix or DEFAULT_PREFIXES[model],
        fold.name,
        batch_size,
        run_name_parts(
            model,
            dict(
                hparams,
                encoder_size_audio=encoder_size_audio,
                encoder_lr=encoder_lr,
            ),
            use_glove,
            embedding_trainable,
        ),
    )
    run_files.check_run_name(name)
    resuming = run_dir is not None and os.path.exists(
        os.path.join(run_dir, "config.json")
    )
    if run_dir is None:
        run_dir = os.path.join(output_dir, name)
        # The same command within the same minute names the same folder.
        line = experiment.finished_run(run_dir, result_file, log)
        if line is not None:
            return run_dir, None, line
    train_config = recipes.train_config(
        options, len(fold.splits["train"]), fold.splits["train"].label,
        fold.num_classes, jit_compile=jit_compile,
        mixed_precision=mixed_precision)
    config = {
        "run_name": name,
        "model": {"name": model, "kwargs": kwargs},
        "data": {
            "data_dir": os.path.abspath(data_dir),
            "dataset": fold.name,
            "digest": experiment.manifest_digest(data_dir),
            "label_names": list(fold.label_names),
            "encoder_size_audio": encoder_size_audio,
            **({"speaker_norm": True} if options["speaker_norm"] else {}),
        },
        "train": dict(
            vars(train_config),
            **({} if recipe == "reference" else {"recipe": recipe}),
            recipe_options=options,
            sampling=sampling,
            seed=seed,
            use_glove=use_glove,
            strategy=strategy,
            **({"encoder_lr": encoder_lr}
               if is_wav2vec2 or uses_text_encoder else {}),
        ),
    }
    config_path = os.path.join(run_dir, "config.json")
    if resuming:
        previous = run_files.read_json(config_path)
        if previous["model"] != config["model"] or (
            previous["data"]["digest"] != config["data"]["digest"]
        ):
            raise run_files.RunError(
                f"{config_path}: the run being resumed was "
                "trained with another model config or data; "
                "use a new --run_dir."
            )
        config["run_name"] = name = previous["run_name"]
        # The same model and data: a finished run is not trained again.
        line = experiment.finished_run(run_dir, result_file, log)
        if line is not None:
            return run_dir, None, line
    else:
        run_files.write_json(config_path, config)
    log(f"[Info] run {name} -> {run_dir}")

    keras.utils.set_random_seed(seed)
    extra_trainer_args = {}
    # The pretrained encoders (wav2vec2 and/or the BERT-style text
    # encoder) get --encoder_lr, everything else --lr.
    encoder_layers = []
    if is_wav2vec2:
        encoder_layers.append(wav2vec2_models.ENCODER_LAYER_NAME)
    if uses_text_encoder:
        encoder_layers.append(bert_text_encoder.TEXT_ENCODER_LAYER_NAME)
    if encoder_layers:
        extra_trainer_args["optimizer_fn"] = (
            optimizers.encoder_head_optimizer_fn(encoder_lr, encoder_layers)
        )
    trainer = training.Trainer(
        lambda: experiment.build_model(model, kwargs, fold, use_glove),
        distribution,
        run_dir,
        train_config,
        fold.num_classes,
        fold.label_names,
        log=log,
        **extra_trainer_args,
    )
    splits = fold.splits
    # What the model reads decides the features: raw waveforms, log-mel.
    data_args = experiment.dataset_options(trainer.model)
    result = trainer.fit(
        experiment.train_dataset_fn(
            splits["train"],
            batch_size,
            sampling,
            seed,
            encoder_size_audio,
            augmentation=recipes.augmentation(options),
            **data_args,
        ),
        experiment.eval_dataset(
            splits["dev"], batch_size, encoder_size_audio, by_length=True,
            **data_args
        ),
        experiment.eval_dataset(
            splits["test"], batch_size, encoder_size_audio, by_length=True,
            **data_args
        ),
        num_train=len(splits["train"]),
    )
    if not trainer.is_chief:
        return run_dir, result, None
    line = experiment.finish_run(
        run_dir, trainer.model, result, fold.name, name, result_file, export,
        log)
    return run_dir, result, line


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if flags.FLAGS.data_dir is None and not flags.FLAGS.ensemble_members:
        raise app.UsageError(
            "--data_dir is required (a fold folder; make "
            "the demo one with `python -m "
            "preprocessing.demo_corpus --output_dir=...`)."
        )
    uses_wav2vec2 = flags.FLAGS.model in WAV2VEC2_MODELS or (
        flags.FLAGS.model == "TRANSFORMER_FUSION"
        and flags.FLAGS.audio_encoder == "wav2vec2")
    if uses_wav2vec2 and not flags.FLAGS.hub_handle:
        raise app.UsageError(
            f"--model={flags.FLAGS.model} needs --hub_handle (a TF-Hub URL "
            "such as https://tfhub.dev/vasudevgupta7/wav2vec2/1, or a "
            "SavedModel directory; an offline stand-in: python "
            "tools/make_wav2vec2_standin.py --output_dir=DIR)."
        )
    values = flags.FLAGS
    if values.config:
        import recipes

        try:
            recipes.apply_config_file(values, values.config)
        except ValueError as error:
            raise app.UsageError(str(error)) from error
    function = train
    if values.ensemble_members:
        import ensemble_runs

        function = ensemble_runs.train_ensemble
    kwargs = {
        name: values[name].value
        for name in inspect.signature(function).parameters
        if name != "log"
    }
    if values.ensemble_members:
        # The recipe's values for the schedule flags left unset.
        import recipes

        options = recipes.resolve(values.recipe)
        kwargs.update({name: options[name] for name in kwargs
                       if kwargs[name] is None and name in options})
    logging.set_verbosity(logging.WARNING)
    function(**kwargs, log=lambda line: print(line, flush=True))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    define_flags()
    from models import run_files
    from preprocessing import cli

    cli.run(main, "train.py", (run_files.RunError,))
