"""Run names: the original's scheme (yoon_spec.md §4), per model.

`run_name_parts(model, options, ...)` gives the (tag, value) fields after
the run-name prefix, from the model's options (its constructor arguments);
`models/run_files.run_name` joins them with the fold name and batch size.
A reference run's name is the original's, character for character.
"""

from typing import Any, List, Mapping, Tuple

from common import constants
from models import registry

def _seed_model_parts(model: str, hparams: Mapping[str, Any]) -> List[Tuple[str, Any]]:
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


def run_name_parts(model: str, hparams: Mapping[str, Any], use_glove: bool,
                   embedding_trainable: bool) -> List[Tuple[str, Any]]:
    """The original's run-name fields for `model` (see yoon_spec.md §4).

    `hparams` holds all the model's options (defaults included) plus the
    run's `encoder_size_audio` and `encoder_lr`.

    The wav2vec2 models get the encoder's fields (`_wav2vec2_parts`), then
    TRE's as in MDRE's names (esT, LT, HT, G, drT).
    """
    # Built for every model; a model without that branch never uses them.
    audio = [
        ("es", hparams["encoder_size_audio"]),
        ("L", hparams.get("audio_layers")),
        ("H", hparams.get("audio_units")),
    ]
    text = [
        ("es", constants.TEXT_LENGTH),
        ("L", hparams.get("text_layers")),
        ("H", hparams.get("text_units")),
        ("G", f"{int(use_glove)}{'' if embedding_trainable else 'F'}"),
    ]
    family = registry.spec(model).family
    if family == "seed":
        return _seed_model_parts(model, hparams)
    if model == "ARE":
        return audio + [("dr", hparams["audio_keep_prob"])]
    if model == "ARE_POOL":
        return audio + [("dr", hparams["audio_keep_prob"]),
                        ("P", hparams["pooling"]),
                        ("S", hparams["frame_stride"])]
    if model == "TRE":
        return text + [("dr", hparams["text_keep_prob"])]
    if family == "wav2vec2":
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
