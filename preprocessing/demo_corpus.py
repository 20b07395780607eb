"""A small synthetic corpus to run and test the toolkit without IEMOCAP.

It is a stand-in, NOT emotional speech: "utterances" are harmonic tones
shaped into syllables, and "transcripts" are word strings from a made-up
lexicon. What makes it useful is that each class leaves partial, noisy cues
in both modalities, so the models behave like on real data:

* audio: class-dependent pitch level and contour, loudness and speaking rate
  (angry/happy are high-arousal, sad/neutral low-arousal, so audio alone
  confuses angry↔happy and sad↔neutral); each utterance's expressiveness
  blends its class towards neutral, and speakers differ in base pitch;
* text: class words mixed with shared filler words; some utterances carry no
  class word and some carry a word of another class;
* 6% of labels are replaced by a random class.

Audio and text cues are drawn independently given the class, so a fused
model beats either modality alone; all stay well below 100%.

Written to `output_dir`:

* `wav/<id>.wav` (16 kHz, 16-bit mono) and `metadata.tsv` (columns
  `wav_path`, `transcript`, `label`, `speaker`, `session`): the raw-corpus
  form, readable by the manifest-corpus preprocessing;
* `<fold_name>/`: the reference fold folder (see `reference_arrays`), with
  a random train/dev/test split (70/15/15) and, as extra arrays, the raw
  waveforms (`waveform` int16 [n, S], `waveform_length` int32 [n]).

Run: `python -m preprocessing.demo_corpus --output_dir=demo_data`.
"""

import argparse
import csv
import os
import wave

import numpy as np

from common import atomic_files
from common.constants import LABEL_NAMES, SAMPLE_RATE
from preprocessing import extraction
from preprocessing import reference_arrays
from preprocessing import text_features

FOLD_NAME = "demo_set01"
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
LABEL_NOISE = 0.06

# Per class: pitch factor, pitch slope (octaves over the utterance),
# amplitude, syllable seconds, pitch jitter.
_AUDIO_STYLE = {
    "angry": (1.17, -0.08, 0.45, 0.14, 0.045),
    "happy": (1.20, 0.18, 0.38, 0.145, 0.028),
    "sad": (0.90, -0.15, 0.23, 0.18, 0.012),
    "neutral": (1.00, 0.00, 0.30, 0.16, 0.015),
}
_CLASS_WORDS = {
    "angry": ["furious", "hate", "stop", "ridiculous", "unfair", "shut",
              "enough", "damn", "never", "liar", "mad", "annoying"],
    "happy": ["great", "love", "wonderful", "yes", "amazing", "fun",
              "excited", "awesome", "glad", "perfect", "married", "won"],
    "sad": ["miss", "lost", "cry", "sorry", "alone", "died", "hurt",
            "gone", "tired", "empty", "funeral", "goodbye"],
    "neutral": ["okay", "table", "tuesday", "form", "meeting", "number",
                "address", "line", "office", "paper", "schedule", "usual"],
}
_FILLERS = ["i", "you", "the", "a", "and", "so", "it", "is", "that", "to",
            "we", "just", "know", "really", "well", "um", "uh", "like",
            "what", "this", "there", "was", "have", "do", "not", "be",
            "here", "about", "right", "oh", "me", "my", "your", "can",
            "think", "mean", "yeah", "going", "get", "now"]


def _utterance_text(rng, label_name):
    num_words = int(rng.integers(3, 9))
    words = list(rng.choice(_FILLERS, size=num_words))
    draw = rng.random()
    if draw < 0.52:
        cues = rng.choice(_CLASS_WORDS[label_name],
                          size=int(rng.integers(1, 3)))
    elif draw < 0.66:
        other = rng.choice([n for n in LABEL_NAMES if n != label_name])
        cues = rng.choice(_CLASS_WORDS[other], size=1)
    else:
        cues = []
    for cue in cues:
        words.insert(int(rng.integers(0, len(words) + 1)), str(cue))
    text = " ".join(words)
    text = text[0].upper() + text[1:]
    return text + ("!" if label_name == "angry" and rng.random() < 0.3
                   else rng.choice([".", "?", "."]))


def _utterance_audio(rng, label_name, base_pitch, num_syllables):
    pitch, slope, amplitude, syllable, jitter = _AUDIO_STYLE[label_name]
    neutral = _AUDIO_STYLE["neutral"]
    # Expressiveness blends the class style towards neutral: low values
    # make utterances of every class look alike (cue overlap).
    expressive = rng.beta(1.3, 1.3)
    blend = [n + expressive * (c - n) for c, n in zip(
        (pitch, slope, amplitude, syllable, jitter), neutral)]
    pitch, slope, amplitude, syllable, jitter = blend
    amplitude *= rng.lognormal(0.0, 0.45)
    syllable *= rng.lognormal(0.0, 0.2)
    pieces = []
    total = num_syllables * syllable
    elapsed = 0.0
    for _ in range(num_syllables):
        length = max(0.06, syllable * rng.uniform(0.6, 1.3))
        samples = int(length * SAMPLE_RATE)
        t = np.arange(samples) / SAMPLE_RATE
        position = (elapsed + t) / max(total, 1e-3)
        f0 = (base_pitch * pitch * 2.0 ** (slope * (position - 0.5))
              * (1.0 + jitter * rng.standard_normal()))
        phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
        harmonics = rng.uniform(0.2, 1.0, size=6) / np.arange(1, 7)
        tone = sum(h * np.sin((k + 1) * phase)
                   for k, h in enumerate(harmonics))
        envelope = np.sin(np.pi * np.arange(samples) / samples) ** 0.7
        pieces.append(amplitude * tone * envelope / harmonics.sum())
        gap = int(rng.uniform(0.02, 0.08) * SAMPLE_RATE)
        pieces.append(np.zeros(gap))
        elapsed += length + gap / SAMPLE_RATE
    signal = np.concatenate([np.zeros(int(0.05 * SAMPLE_RATE))] + pieces)
    signal += 0.004 * rng.standard_normal(len(signal))
    return np.clip(signal, -1.0, 1.0).astype(np.float32)


def synthesize(num_utterances=1500, num_speakers=8, seed=0):
    """Generates the corpus in memory.

    Args:
        num_utterances: int.
        num_speakers: int. Speakers alternate gender (base pitch ~120/210
            Hz) and are spread over sessions of two speakers.
        seed: int. The whole corpus is a function of it.

    Returns:
        list of dicts with keys id, waveform (float32), transcript, label
        (int, after label noise), speaker, session.
    """
    rng = np.random.default_rng(seed)
    base_pitches = [rng.normal(120 if s % 2 == 0 else 210, 25)
                    for s in range(num_speakers)]
    records = []
    for index in range(num_utterances):
        child = np.random.default_rng([seed, index])
        label = int(child.integers(0, len(LABEL_NAMES)))
        name = LABEL_NAMES[label]
        speaker = int(child.integers(0, num_speakers))
        transcript = _utterance_text(child, name)
        num_syllables = len(transcript.split()) + int(child.integers(0, 3))
        waveform = _utterance_audio(child, name, base_pitches[speaker],
                                    num_syllables)
        if child.random() < LABEL_NOISE:
            label = int(child.integers(0, len(LABEL_NAMES)))
        records.append({
            "id": f"demo_{index:05d}", "waveform": waveform,
            "transcript": transcript, "label": label,
            "speaker": f"spk{speaker:02d}", "session": f"session{speaker // 2 + 1}",
        })
    return records


def _write_wav(path, waveform):
    pcm = np.round(np.clip(waveform, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(SAMPLE_RATE)
        f.writeframes(pcm.tobytes())


def split_indices(num: int, seed: int) -> dict:
    """The demo corpus's seeded split: split name → sorted row indices of
    `num` utterances (fractions `SPLIT_FRACTIONS`)."""
    order = np.random.default_rng([seed, 1]).permutation(num)
    num_train = int(round(SPLIT_FRACTIONS[0] * num))
    num_dev = int(round(SPLIT_FRACTIONS[1] * num))
    return {"train": np.sort(order[:num_train]),
            "dev": np.sort(order[num_train:num_train + num_dev]),
            "test": np.sort(order[num_train + num_dev:])}


def _waveform_matrix(waveforms):
    lengths = np.array([len(w) for w in waveforms], dtype=np.int32)
    matrix = np.zeros((len(waveforms), lengths.max()), dtype=np.int16)
    for row, waveform in enumerate(waveforms):
        matrix[row, :len(waveform)] = np.round(waveform * 32767)
    return matrix, lengths


def generate(output_dir, num_utterances=1500, seed=0, embedding_dim=300,
             num_workers=2, overwrite=False, log=print):
    """Writes the demo corpus (wav + metadata.tsv) and its fold folder.

    Args:
        output_dir: str. Created; must not exist unless `overwrite`.
        num_utterances: int.
        seed: int.
        embedding_dim: int. Width of the random `W_embedding.npy` (300 like
            the GloVe vectors the reference runs use).
        num_workers: int. Processes for feature extraction.
        overwrite: bool.
        log: callable(str).

    Returns:
        str. Path of the fold folder.
    """
    with atomic_files.atomic_directory(output_dir, overwrite) as tmp_dir:
        _generate_into(tmp_dir, num_utterances, seed, embedding_dim,
                       num_workers, log)
    return os.path.join(output_dir, FOLD_NAME)


def _generate_into(directory, num_utterances, seed, embedding_dim,
                   num_workers, log):
    log(f"[demo] synthesising {num_utterances} utterances (seed {seed})")
    records = synthesize(num_utterances, seed=seed)
    os.makedirs(os.path.join(directory, "wav"))
    with open(os.path.join(directory, "metadata.tsv"), "w",
              newline="") as f:
        writer = csv.writer(f, delimiter="\t", lineterminator="\n")
        writer.writerow(["wav_path", "transcript", "label", "speaker",
                         "session"])
        for record in records:
            relative = os.path.join("wav", record["id"] + ".wav")
            _write_wav(os.path.join(directory, relative),
                       record["waveform"])
            writer.writerow([relative, record["transcript"],
                             LABEL_NAMES[record["label"]], record["speaker"],
                             record["session"]])
    log("[demo] extracting MFCC and prosody features")
    features = extraction.extract_many(
        [r["waveform"] for r in records], num_workers=num_workers)
    mfcc, seq_len = extraction.pad_frames([f[0] for f in features])
    prosody = np.stack([f[1] for f in features]).astype(np.float32)
    tokens = [text_features.tokenize(r["transcript"]) for r in records]
    labels = np.array([r["label"] for r in records], dtype=np.int32)
    indices = split_indices(len(records), seed)
    vocabulary = text_features.build_vocabulary(
        [tokens[i] for i in indices["train"]])
    text_ids = text_features.encode(tokens, vocabulary)
    embedding = np.random.default_rng([seed, 2]).uniform(
        -0.25, 0.25, (len(vocabulary), embedding_dim)).astype(np.float32)
    embedding[text_features.PAD_ID] = 0.0
    splits = {}
    for name, rows in indices.items():
        waveforms, lengths = _waveform_matrix(
            [records[i]["waveform"] for i in rows])
        splits[name] = reference_arrays.Split(
            mfcc=mfcc[rows], seq_len=seq_len[rows], prosody=prosody[rows],
            text_ids=text_ids[rows], label=labels[rows],
            extras={"waveform": waveforms, "waveform_length": lengths})
    manifest = {
        "corpus": "demo (synthetic stand-in, not emotional speech)",
        "label_names": list(LABEL_NAMES),
        "seed": seed,
        "num_utterances": num_utterances,
        "split_policy": "random 70/15/15",
        "counts": {name: np.bincount(labels[rows], minlength=4).tolist()
                   for name, rows in indices.items()},
        "vocabulary_size": len(vocabulary),
        "embedding": "random uniform(-0.25, 0.25), no GloVe",
        "sample_rate": SAMPLE_RATE,
    }
    reference_arrays.write_fold(os.path.join(directory, FOLD_NAME), splits,
                                vocabulary, embedding, manifest)
    log(f"[demo] wrote {FOLD_NAME}: " + ", ".join(
        f"{name} {len(rows)}" for name, rows in indices.items()))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--num_utterances", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_workers", type=int, default=2)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    print(generate(args.output_dir, args.num_utterances, args.seed,
                   num_workers=args.num_workers, overwrite=args.overwrite))


if __name__ == "__main__":
    main()
