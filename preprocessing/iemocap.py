"""Reader of the IEMOCAP release layout (the original's corpus).

Layout read (as distributed by USC SAIL):

    SessionN/sentences/wav/<dialog>/<utterance>.wav
    SessionN/dialog/EmoEvaluation/<dialog>.txt      consensus labels
    SessionN/dialog/transcriptions/<dialog>.txt     transcripts

Labels: in each EmoEvaluation file, the first line of every utterance block
(`[start - end]<TAB>utterance_id<TAB>label<TAB>[v, a, d]`) carries the
consensus label; sub-folders (Categorical, Attribute, Self-evaluation) are
not read. The 4-class mapping of the original is ang → 0, hap + exc → 1,
sad → 2, neu → 3; everything else (fru, xxx, sur, ...) is dropped.

Transcripts: `utterance_id [start-end]: text` lines; ids not starting with
`Ses` or containing `XX` (unlabelled turns) are skipped. The text is all
after the first colon. `colon_truncation=True` reproduces the original's bug
(yoon_spec §8.13): only the part between the first and second colon is kept.

Order: by session folder, dialog name, then utterance id (lexicographic), the
order the original's arrays and random folds use. Speaker = session + the
gender letter of the utterance's own turn (`Ses01F_impro01_M003` → `Ses01M`).
macOS `._*` resource files shipped in some copies are ignored.
"""

import collections
import os
import re

from common.constants import LABEL_NAMES
from preprocessing.manifest_corpus import Corpus, Example
from preprocessing.reference_arrays import DataError

FOUR_CLASS_MAP = {"ang": 0, "hap": 1, "exc": 1, "sad": 2, "neu": 3}
_SESSION_RE = re.compile(r"^Session\d+$")
_LABEL_LINE_RE = re.compile(r"^\[[^\]]*\]\t(\S+)\t(\S+)\t")
_UTTERANCE_RE = re.compile(r"^(Ses\d+)[FM]_.*_([FM])[^_]*$")


def speaker_of(utterance_id):
    """`Ses01F_impro01_M003` → `Ses01M` (session + speaking turn's gender).

    Raises:
        ValueError: an id not in the IEMOCAP pattern.
    """
    match = _UTTERANCE_RE.match(utterance_id)
    if not match:
        raise ValueError(f"{utterance_id!r}: not an IEMOCAP utterance id "
                         "(expected e.g. Ses01F_impro01_F000).")
    return match.group(1) + match.group(2)


def _text_files(directory):
    """Plain .txt files directly in `directory`, sorted, no `._` files."""
    if not os.path.isdir(directory):
        return []
    return sorted(
        name for name in os.listdir(directory)
        if name.endswith(".txt") and not name.startswith(".")
        and os.path.isfile(os.path.join(directory, name)))


def read_labels(path):
    """Consensus labels of one EmoEvaluation file.

    Returns:
        dict utterance id → raw label (e.g. `exc`).
    """
    labels = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            match = _LABEL_LINE_RE.match(line)
            if match:
                labels.setdefault(match.group(1), match.group(2))
    return labels


def read_transcripts(path, colon_truncation=False):
    """Transcripts of one dialog's transcription file.

    Args:
        path: str.
        colon_truncation: bool. Keep only the text between the first and
            second colon, as the original did (bug, off by default).

    Returns:
        dict utterance id → transcript (whitespace-stripped).
    """
    transcripts = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("Ses") or ":" not in line:
                continue
            utterance_id = line.split(None, 1)[0]
            if "XX" in utterance_id:
                continue
            parts = line.split(":")
            text = parts[1] if colon_truncation else ":".join(parts[1:])
            transcripts[utterance_id] = text.strip()
    return transcripts


def read_iemocap(corpus_dir, label_map=None, label_names=LABEL_NAMES,
                 colon_truncation=False, sessions=None, on_bad_row="skip"):
    """Reads an IEMOCAP release tree into a `Corpus`.

    Args:
        corpus_dir: str. The folder holding `Session1` ... `Session5`.
        label_map: dict raw label → class id (-1 or absent = drop), default
            `FOUR_CLASS_MAP`.
        label_names: sequence of str, class names by id.
        colon_truncation: bool. Reproduce the original's transcript bug.
        sessions: iterable of int or None. Only these sessions (e.g. [1, 2]).
        on_bad_row: `"skip"` or `"raise"`: what to do with a kept-label
            utterance whose wav or transcript is missing or empty.

    Returns:
        `Corpus` with one `Example` per kept utterance, session = `Ses01`...

    Raises:
        DataError: no `SessionN` folder or no labels found, or a bad
            utterance with `on_bad_row="raise"`.
    """
    label_map = dict(FOUR_CLASS_MAP if label_map is None else label_map)
    if not os.path.isdir(corpus_dir):
        raise DataError(f"{corpus_dir}: not a directory (expected the "
                        "IEMOCAP release folder holding Session1..5).")
    session_dirs = sorted(
        name for name in os.listdir(corpus_dir)
        if _SESSION_RE.match(name)
        and os.path.isdir(os.path.join(corpus_dir, name)))
    if sessions is not None:
        wanted = {f"Session{int(s)}" for s in sessions}
        session_dirs = [s for s in session_dirs if s in wanted]
    if not session_dirs:
        raise DataError(f"{corpus_dir}: no SessionN folders found (expected "
                        "Session1/dialog/EmoEvaluation/*.txt etc.).")
    corpus = Corpus(examples=[], label_names=tuple(label_names),
                    source=corpus_dir)
    raw_counts = collections.Counter()
    dropped = collections.Counter()

    def bad(message):
        if on_bad_row == "raise":
            raise DataError(message)
        corpus.problems.append(message)

    for session in session_dirs:
        root = os.path.join(corpus_dir, session)
        label_dir = os.path.join(root, "dialog", "EmoEvaluation")
        text_dir = os.path.join(root, "dialog", "transcriptions")
        label_files = _text_files(label_dir)
        if not label_files:
            raise DataError(f"{label_dir}: no EmoEvaluation .txt files.")
        for file_name in label_files:
            dialog = file_name[:-len(".txt")]
            label_path = os.path.join(label_dir, file_name)
            labels = read_labels(label_path)
            text_path = os.path.join(text_dir, file_name)
            transcripts = (read_transcripts(text_path, colon_truncation)
                           if os.path.isfile(text_path) else {})
            for utterance_id in sorted(labels):
                raw_label = labels[utterance_id]
                raw_counts[raw_label] += 1
                class_id = label_map.get(raw_label, -1)
                if class_id == -1:
                    dropped[raw_label] += 1
                    continue
                where = f"{label_path}: {utterance_id}"
                wav_path = os.path.join(root, "sentences", "wav", dialog,
                                        utterance_id + ".wav")
                if not os.path.isfile(wav_path):
                    bad(f"{where}: missing wav file {wav_path}")
                    continue
                transcript = transcripts.get(utterance_id, "")
                if not transcript:
                    bad(f"{where}: no or empty transcript in {text_path}")
                    continue
                corpus.examples.append(Example(
                    id=utterance_id, wav_path=wav_path,
                    transcript=transcript, label=class_id,
                    raw_label=raw_label, speaker=speaker_of(utterance_id),
                    session=utterance_id[:5], source=where))
    if not raw_counts:
        raise DataError(f"{corpus_dir}: no labelled utterances found in "
                        "SessionN/dialog/EmoEvaluation/*.txt.")
    corpus.raw_label_counts = dict(sorted(raw_counts.items()))
    corpus.dropped = dict(sorted(dropped.items()))
    return corpus
