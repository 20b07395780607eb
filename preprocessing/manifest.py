"""The manifest file format: one table of audio files, read by one parser.

Training (`manifest_corpus.read_manifest`, a labelled corpus) and prediction
(`read_wav_transcripts`, files to classify) both read manifests through
`read_table`, so the same file gives the same rows to both:

* UTF-8 text (a byte-order mark allowed); anything else is an error naming
  the line and column.
* Lines whose first non-blank character is `#` are comments; blank lines
  (only delimiters and spaces) are skipped. Line numbers in messages count
  every line of the file.
* The first other line is the header. Column names are matched
  case-insensitively and without surrounding spaces against
  `COLUMN_ALIASES`; for each column the first alias present wins.
* Delimiter: tab for `.tsv`/`.tab`, comma for `.csv`; any other name uses
  the header line's more frequent one of the two (tab on a tie with none).
  Fields are CSV-quoted (`"a, b"`); values are stripped.
* A row with fewer fields than the header, or with non-empty fields beyond
  it (an unquoted delimiter in a transcript), is a bad row
  (`Row.problem`), never silently shifted or cut.
* Relative wav paths are resolved against the manifest's own folder.

Errors are `DataError`s of one line, `file:line: problem`.
"""

import csv
import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

from preprocessing.reference_arrays import DataError

COLUMN_ALIASES = {
    "wav": ("wav", "wav_path", "path", "audio", "file"),
    "transcript": ("transcript", "text", "transcription"),
    "label": ("label", "emotion", "class"),
    "speaker": ("speaker", "speaker_id"),
    "session": ("session",),
    "id": ("id", "utterance_id", "utt_id"),
}


@dataclasses.dataclass(frozen=True)
class Row:
    """One data row of a manifest.

    Attributes:
        line: int. 1-based line number in the file (for messages).
        fields: dict column → stripped value, for every column the header
            names ("" where the row has no such field).
        wav_path: str or None. The wav column resolved against the
            manifest's folder (None when empty).
        problem: str or None. Why the row cannot be used as it stands
            (wrong number of fields); its fields are then unreliable.
    """

    line: int
    fields: Dict[str, str]
    wav_path: Optional[str]
    problem: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Table:
    """A parsed manifest.

    Attributes:
        path: str. The manifest file.
        header_line: int. Line number of the header.
        columns: dict column → field index, for the columns found.
        rows: list of `Row`, in file order (comments and blank lines left
            out).
    """

    path: str
    header_line: int
    columns: Dict[str, int]
    rows: List[Row]


def read_utf8(path: str) -> str:
    """A text file's contents (UTF-8, a byte-order mark allowed).

    Raises:
        DataError: bytes that are not UTF-8, naming the file, the line and
            the column.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line_start = data.rfind(b"\n", 0, error.start) + 1
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(
            f"{path}:{line}: not UTF-8 text (byte "
            f"0x{data[error.start]:02x} at column "
            f"{error.start - line_start + 1}); save the file as UTF-8 "
            "(e.g. iconv -f latin1 -t utf-8).") from None


def delimiter(path: str, header: str) -> str:
    """The field delimiter of a manifest: by extension, else by its header."""
    if path.lower().endswith((".tsv", ".tab")):
        return "\t"
    if path.lower().endswith(".csv"):
        return ","
    return "\t" if header.count("\t") > header.count(",") else ","


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def read_table(path: str, required: Sequence[str] = ("wav",)) -> Table:
    """Parses a manifest (see the module docstring for the rules).

    Args:
        path: str. The manifest file.
        required: sequence of column names (keys of `COLUMN_ALIASES`) the
            header must name.

    Returns:
        `Table`.

    Raises:
        DataError: a missing or non-UTF-8 file, no header, or a header
            without a required column.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing manifest file.")
    lines = read_utf8(path).splitlines()
    header_index = next((i for i, line in enumerate(lines)
                         if line.strip() and not _is_comment(line)), None)
    if header_index is None:
        raise DataError(f"{path}: empty manifest (expected a header row).")
    header_line = header_index + 1
    separator = delimiter(path, lines[header_index])
    # Comment lines are fed as empty lines, so the reader's line numbers
    # stay those of the file and a quote inside a comment is inert.
    reader = csv.reader(("" if _is_comment(line) else line
                         for line in lines[header_index:]),
                        delimiter=separator)
    header = next(reader)
    lowered = [name.strip().lower() for name in header]
    columns = {}
    for name, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in lowered:
                columns[name] = lowered.index(alias)
                break
    missing = [name for name in required if name not in columns]
    if missing:
        aliases = "; ".join(f"{name}: {', '.join(COLUMN_ALIASES[name])}"
                            for name in missing)
        raise DataError(
            f"{path}:{header_line}: no {' and '.join(missing)} column in the "
            f"header: missing {missing} of the required columns "
            f"{list(required)} (names: {aliases}); found "
            f"{[name.strip() for name in header]}.")
    base_dir = os.path.dirname(os.path.abspath(path))
    rows = []
    for fields in reader:
        line = header_index + reader.line_num
        if not any(field.strip() for field in fields):
            continue
        problem = None
        if len(fields) < len(header) or any(
                field.strip() for field in fields[len(header):]):
            problem = (f"expected {len(header)} fields, found {len(fields)}"
                       + ("" if len(fields) < len(header) else
                          " (quote a value that holds the delimiter)"))
        values = {name: (fields[index].strip() if index < len(fields)
                         else "")
                  for name, index in columns.items()}
        wav = values.get("wav", "")
        rows.append(Row(line, values, os.path.normpath(
            os.path.join(base_dir, wav)) if wav else None, problem))
    return Table(path, header_line, columns, rows)


def read_wav_transcripts(path: str) -> List[Tuple[str, Optional[str]]]:
    """(wav path, transcript or None) per row: the files to predict.

    Needs a wav column; the transcript column is optional (None: none, or
    an empty value). Other columns (label, speaker, ...) are ignored.

    Raises:
        DataError: as `read_table`, or a bad row or one without a wav path
            (naming its line).
    """
    table = read_table(path, required=("wav",))
    items = []
    for row in table.rows:
        if row.problem or row.wav_path is None:
            raise DataError(f"{table.path}:{row.line}: "
                            f"{row.problem or 'empty wav path'}.")
        items.append((row.wav_path, row.fields.get("transcript") or None))
    return items
