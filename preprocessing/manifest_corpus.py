"""A generic corpus: a CSV/TSV manifest of (wav, transcript, label, speaker).

Any corpus (RAVDESS, MSP-IMPROV, one's own recordings) becomes usable by
writing one table with a header row, read by the toolkit's one manifest
parser (`manifest.read_table`: delimiter, comments, quoting, column aliases,
relative paths; prediction reads manifests by the same rules). Columns:

| column     | aliases                              | required |
|------------|--------------------------------------|----------|
| wav        | wav, wav_path, path, audio, file     | yes      |
| transcript | transcript, text, transcription      | yes      |
| label      | label, emotion, class                | yes      |
| speaker    | speaker, speaker_id                  | yes      |
| session    | session                              | no       |
| id         | id, utterance_id, utt_id             | no       |

Labels go through a label map (raw label → class id, or -1 to drop the row
on purpose); the default map knows the IEMOCAP 4-class names in short and
long form. A bad row (missing wav, unreadable or empty audio, unknown label,
empty transcript, missing speaker, a wrong number of fields) is reported as
`file:line: problem` and either skipped and counted (`on_bad_row="skip"`)
or fatal (`"raise"`).

This module also defines `Example` and `Corpus`, the records every corpus
reader (see `iemocap.py`) returns.
"""

import collections
import dataclasses
import os
from typing import Dict, Optional, Sequence

from common.constants import LABEL_NAMES
from preprocessing import audio_io
from preprocessing import manifest
from preprocessing.reference_arrays import DataError

REQUIRED_COLUMNS = ("wav", "transcript", "label", "speaker")

# The original's 4 classes (excited merged into happy), by short and long
# names. Raw labels are lowercased before lookup.
DEFAULT_LABEL_MAP = {
    "ang": 0, "angry": 0, "anger": 0,
    "hap": 1, "happy": 1, "happiness": 1, "exc": 1, "excited": 1,
    "sad": 2, "sadness": 2,
    "neu": 3, "neutral": 3,
}
BAD_ROW_POLICIES = ("skip", "raise")


@dataclasses.dataclass
class Example:
    """One utterance of a corpus.

    Attributes:
        id: str. Unique utterance id.
        wav_path: str. Audio file.
        transcript: str.
        label: int. Class id 0..num_classes-1.
        raw_label: str. The corpus's own label (e.g. `exc`).
        speaker: str.
        session: str or None. Recording session (for leave-one-session-out).
        source: str. `file:line` it came from, for messages.
    """

    id: str
    wav_path: str
    transcript: str
    label: int
    raw_label: str
    speaker: str
    session: object = None
    source: str = ""


@dataclasses.dataclass
class Corpus:
    """Examples of a corpus plus what was dropped on the way.

    Attributes:
        examples: list of `Example`, in the corpus's canonical order.
        label_names: tuple of str, indexed by class id.
        problems: list of str, one `file:line: problem` per skipped bad row.
        dropped: dict raw label → count of rows dropped on purpose (label
            mapped to -1 or outside the class mapping).
        raw_label_counts: dict raw label → count over all rows read.
        source: str. What was read (a path).
    """

    examples: list
    label_names: tuple
    problems: list = dataclasses.field(default_factory=list)
    dropped: dict = dataclasses.field(default_factory=dict)
    raw_label_counts: dict = dataclasses.field(default_factory=dict)
    source: str = ""

    def class_counts(self):
        """dict label name → number of examples."""
        counts = collections.Counter(e.label for e in self.examples)
        return {name: counts.get(i, 0)
                for i, name in enumerate(self.label_names)}


def parse_label_map(text, label_names=None):
    """Parses `raw:id,raw:id,...` (or `raw:name`) into a label map.

    Args:
        text: str, e.g. `"ang:0,hap:1,exc:1,sad:2,neu:3,fru:-1"`; a value may
            also be a class name from `label_names`.
        label_names: sequence of str or None.

    Returns:
        dict lowercased raw label → int (-1 = drop).
    """
    label_map = {}
    names = [n.lower() for n in (label_names or ())]
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        raw, sep, value = entry.rpartition(":")
        if not sep or not raw.strip():
            raise ValueError(f"label map entry {entry!r}: expected "
                             "'raw_label:class_id'.")
        value = value.strip()
        if value.lower() in names:
            class_id = names.index(value.lower())
        else:
            try:
                class_id = int(value)
            except ValueError:
                raise ValueError(f"label map entry {entry!r}: expected an "
                                 f"integer class id or one of {names}, found "
                                 f"{value!r}.") from None
        label_map[raw.strip().lower()] = class_id
    if not label_map:
        raise ValueError(f"label map {text!r}: no entries.")
    return label_map


def _check_label_map(label_map, label_names, source):
    for raw, class_id in label_map.items():
        if class_id != -1 and not 0 <= class_id < len(label_names):
            raise ValueError(f"{source}: label map sends {raw!r} to "
                             f"{class_id}, expected -1 (drop) or 0.."
                             f"{len(label_names) - 1} ({len(label_names)} "
                             "label names).")


def audio_problem(path: str) -> Optional[str]:
    """Returns why an audio file cannot be used, or None if it looks fine.

    Reads only the header (fast; `audio_io.file_problem`: missing,
    unreadable, empty, truncated, shorter than one analysis window);
    decoding errors later still raise `DataError` naming the file during
    feature extraction.
    """
    return audio_io.file_problem(path)


def read_manifest(path: str, label_map: Optional[Dict[str, int]] = None,
                  label_names: Sequence[str] = LABEL_NAMES,
                  on_bad_row: str = "skip", check_audio: bool = True
                  ) -> Corpus:
    """Reads a CSV/TSV manifest corpus.

    Args:
        path: str. The manifest (`.csv` comma, `.tsv` tab, else sniffed;
            `manifest.read_table`).
        label_map: dict raw label → class id (-1 = drop), or None for
            `DEFAULT_LABEL_MAP` (IEMOCAP 4 classes). Keys match lowercased.
        label_names: sequence of str, the class names by id.
        on_bad_row: `"skip"` (report and count) or `"raise"` (`DataError`).
        check_audio: bool. Open each wav's header to catch unreadable files.

    Returns:
        `Corpus`, examples in file order.

    Raises:
        DataError: unreadable manifest, bad header, duplicate ids, or a bad
            row with `on_bad_row="raise"`.
    """
    if on_bad_row not in BAD_ROW_POLICIES:
        raise ValueError(f"on_bad_row={on_bad_row!r}: expected one of "
                         f"{BAD_ROW_POLICIES}.")
    label_names = tuple(label_names)
    label_map = {k.lower(): v for k, v in (label_map or
                                           DEFAULT_LABEL_MAP).items()}
    _check_label_map(label_map, label_names, path)
    table = manifest.read_table(path, required=REQUIRED_COLUMNS)
    corpus = Corpus(examples=[], label_names=label_names, source=path)
    raw_counts = collections.Counter()
    dropped = collections.Counter()
    seen_ids = {}

    def bad(line_number, problem):
        message = f"{path}:{line_number}: {problem}"
        if on_bad_row == "raise":
            raise DataError(message)
        corpus.problems.append(message)

    for row in table.rows:
        line_number = row.line
        if row.problem:
            bad(line_number, row.problem)
            continue
        field = row.fields
        raw_label = field["label"]
        raw_counts[raw_label] += 1
        class_id = label_map.get(raw_label.lower())
        if class_id is None:
            bad(line_number, f"unknown label {raw_label!r} (label map "
                             f"knows {sorted(label_map)})")
            continue
        if class_id == -1:
            dropped[raw_label] += 1
            continue
        if not field["transcript"]:
            bad(line_number, "empty transcript")
            continue
        if not field["speaker"]:
            bad(line_number, "empty speaker")
            continue
        if not field["wav"]:
            bad(line_number, "empty wav path")
            continue
        wav_path = row.wav_path
        problem = audio_problem(wav_path) if check_audio else (
            None if os.path.isfile(wav_path) else
            f"missing wav file {wav_path}")
        if problem:
            bad(line_number, problem)
            continue
        example_id = field.get("id") or os.path.splitext(
            os.path.basename(wav_path))[0]
        if example_id in seen_ids:
            raise DataError(f"{path}:{line_number}: duplicate utterance id "
                            f"{example_id!r} (first on line "
                            f"{seen_ids[example_id]}); add a unique id "
                            "column.")
        seen_ids[example_id] = line_number
        corpus.examples.append(Example(
            id=example_id, wav_path=wav_path, transcript=field["transcript"],
            label=class_id, raw_label=raw_label, speaker=field["speaker"],
            session=field.get("session") or None,
            source=f"{path}:{line_number}"))
    corpus.raw_label_counts = dict(sorted(raw_counts.items()))
    corpus.dropped = dict(sorted(dropped.items()))
    return corpus
