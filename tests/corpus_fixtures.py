"""Tiny synthetic corpora for the preprocessing tests (written to tmp dirs).

* `make_iemocap_tree`: the IEMOCAP release layout with short tone wavs,
  EmoEvaluation and transcription files (incl. dropped labels, `XX` turns,
  a colon inside a transcript and macOS `._` files).
* `make_manifest_corpus`: wavs plus a `metadata.tsv` in the demo corpus's
  form (wav_path, transcript, label, speaker, session).
* `write_tricky_manifest`: a manifest every rule of `preprocessing.manifest`
  is needed to read (BOM, comments, sniffed delimiter, quoting, aliases).
"""

import os

import numpy as np
import soundfile

SR = 16000
# Kept labels cycle through these; every 5th utterance gets a dropped one.
KEPT = ("neu", "ang", "exc", "sad", "hap")
DROPPED = ("fru", "xxx", "sur")
WORDS = ("well", "i", "think", "so", "you", "are", "late", "again", "great",
         "news", "sorry", "okay")


def write_tone(path, f0, seconds=0.25, amplitude=0.3):
    """Writes a 16-bit mono harmonic tone."""
    t = np.arange(int(seconds * SR)) / SR
    wave = sum(amplitude / k * np.sin(2 * np.pi * k * f0 * t)
               for k in range(1, 4)) * np.hanning(len(t))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    soundfile.write(path, wave, SR, subtype="PCM_16")


def _sentence(rng):
    return " ".join(rng.choice(WORDS, size=int(rng.integers(2, 6))))


def make_iemocap_tree(root, sessions=(1, 2), per_dialog=8, seed=0):
    """Writes a small IEMOCAP-layout tree.

    Each session has two dialogs (`SesXXF_impro01`, `SesXXM_script01_1`),
    `per_dialog` utterances each, alternating F/M speaker turns. Every 5th
    utterance has a dropped label (fru/xxx/sur); one transcript per tree
    holds a colon.

    Returns:
        dict utterance id → (raw label, transcript) of all labelled turns.
    """
    rng = np.random.default_rng(seed)
    truth = {}
    count = 0
    for session in sessions:
        base = os.path.join(root, f"Session{session}")
        for dialog in (f"Ses{session:02d}F_impro01",
                       f"Ses{session:02d}M_script01_1"):
            label_lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION "
                           "[V, A, D]", ""]
            text_lines = []
            for k in range(per_dialog):
                gender = "FM"[k % 2]
                utterance = f"{dialog}_{gender}{k // 2:03d}"
                raw = (DROPPED[count % 3] if count % 5 == 4
                       else KEPT[(count + count // 5) % 5])
                text = _sentence(rng)
                if count == 1:
                    text = "Listen: this part was cut by the original"
                start = 1.0 + 2 * k
                label_lines += [
                    f"[{start:.4f} - {start + 1.5:.4f}]\t{utterance}\t{raw}"
                    "\t[2.5000, 2.5000, 2.5000]",
                    "C-E1:\tNeutral;\t()", "A-E1:\tval 3; act 2; dom  2;\t()",
                    ""]
                text_lines.append(f"{utterance} [{start:08.4f}-"
                                  f"{start + 1.5:08.4f}]: {text}")
                write_tone(os.path.join(base, "sentences", "wav", dialog,
                                        utterance + ".wav"),
                           110.0 + 20 * (count % 7) + 40 * (gender == "F"))
                truth[utterance] = (raw, text)
                count += 1
            # An unlabelled turn that the reader must skip.
            text_lines.append(f"{dialog}_MXX0 [020.0000-021.0000]: "
                              "[LAUGHTER]")
            text_lines.reverse()  # The reader must not rely on file order.
            for sub, lines in (("EmoEvaluation", label_lines),
                               ("transcriptions", text_lines)):
                directory = os.path.join(base, "dialog", sub)
                os.makedirs(directory, exist_ok=True)
                with open(os.path.join(directory, dialog + ".txt"),
                          "w") as f:
                    f.write("\n".join(lines) + "\n")
                # macOS resource-fork junk found in some IEMOCAP copies.
                with open(os.path.join(directory, "._" + dialog + ".txt"),
                          "wb") as f:
                    f.write(b"\x00\x05\x16\x07junk")
        # Sub-folders of EmoEvaluation hold per-annotator files: not read.
        os.makedirs(os.path.join(base, "dialog", "EmoEvaluation",
                                 "Categorical"), exist_ok=True)
    return truth


def make_manifest_corpus(root, num=30, num_speakers=4, num_sessions=2,
                         seed=0, name="metadata.tsv"):
    """Writes `num` tone wavs and a demo-style manifest.

    Returns:
        str, the manifest path.
    """
    rng = np.random.default_rng(seed)
    labels = ("angry", "happy", "sad", "neutral")
    rows = ["wav_path\ttranscript\tlabel\tspeaker\tsession"]
    for i in range(num):
        speaker = f"spk{i % num_speakers}"
        session = f"sess{(i % num_speakers) % num_sessions + 1}"
        relative = os.path.join("wav", f"utt{i:03d}.wav")
        write_tone(os.path.join(root, relative), 120.0 + 15 * (i % 9))
        rows.append(f"{relative}\t{_sentence(rng)}\t{labels[i % 4]}\t"
                    f"{speaker}\t{session}")
    path = os.path.join(root, name)
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")
    return path


def write_tricky_manifest(root):
    """Writes `root/lists/tricky.txt` and its 4 wavs; returns (path, the
    (absolute wav path, transcript) each data row holds, in order).

    A byte-order mark, comments before the header and between rows (one
    holding a quote and commas), a header with spaces, mixed case and
    aliases, a `.txt` name (delimiter sniffed from the header: commas),
    quoted fields holding the delimiter and a doubled quote, a blank line
    and a delimiter-only line, and wav paths relative to the manifest's
    folder (one through `..`) and absolute.
    """
    lists = os.path.join(root, "lists")
    wavs = [os.path.join(root, "audio", f"{name}.wav")
            for name in ("a", "b", "c", "d")]
    for index, wav in enumerate(wavs):
        write_tone(wav, 150.0 + 40 * index)
    rows = [(wavs[0], "Hello, there"), (wavs[1], "spaced out"),
            (wavs[2], 'She said "no"'), (wavs[3], "tabs\tinside")]
    text = ("\ufeff# Recorded in 2024, \"quoted\", with commas\n"
            "   # an indented comment\n"
            " Wav_Path , Text ,EMOTION,speaker_id,Session\n"
            "../audio/a.wav,\"Hello, there\",ang,s1,1\n"
            "# a comment between rows, with a \" quote\n"
            "\n"
            "../audio/../audio/b.wav,  spaced out  ,Hap,s2,1\n"
            ",,,,\n"
            "\"../audio/c.wav\",\"She said \"\"no\"\"\",sad,s1,2\n"
            f"{wavs[3]},tabs\tinside,neu,s2,2\n")
    os.makedirs(lists, exist_ok=True)
    path = os.path.join(lists, "tricky.txt")
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return path, rows
