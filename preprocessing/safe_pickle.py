"""Reading pickles that cannot run code: the toolkit's one way to unpickle.

A pickle is a program: its GLOBAL/REDUCE opcodes import any callable and
call it, so `pickle.loads` on a file from someone else runs their code. Fold
folders (and their `dic.pkl`) are passed between people, so every pickle the
toolkit reads goes through `loads` here, which admits only what a
vocabulary holds: dicts, lists, tuples, str, bytes, int, float, bool and
None. Those are built from opcodes alone in every protocol (0–5; Python 2's
text-mode protocol 0 included), with one exception: Python 3 pickles
`bytes` at protocols 0–2 as a call to `_codecs.encode(text, "latin1")`,
which is admitted for exactly that codec. Anything else that names a class
or function is refused with the name it asked for, before anything is
imported or called.
"""

import codecs
import io
import pickle

# The one global a plain-data pickle may name (Python 3 bytes, protocol <3).
_CODECS_ENCODE = ("_codecs", "encode")


class RefusedPickle(pickle.UnpicklingError):
    """A pickle asked for a class or function outside plain data."""

    def __init__(self, module, name):
        super().__init__(f"{module}.{name}")
        self.module = module
        self.name = name


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    if encoding not in ("latin1", "latin-1") or errors != "strict":
        raise RefusedPickle("_codecs", f"encode(..., {encoding!r})")
    return codecs.encode(text, "latin1")


class _PlainDataUnpickler(pickle.Unpickler):
    """An unpickler whose `find_class` admits nothing but `_codecs.encode`
    with latin-1 (see the module docstring)."""

    def find_class(self, module, name):
        if (module, name) == _CODECS_ENCODE:
            return _latin1_encode
        raise RefusedPickle(module, name)

    def persistent_load(self, pid):
        raise RefusedPickle("persistent_id", repr(pid)[:40])


def loads(data, encoding="ASCII"):
    """Unpickles plain data (dict, list, tuple, str, bytes, numbers, None).

    Args:
        data: bytes. The pickle.
        encoding: str. How Python 2 `str` objects are decoded (as
            `pickle.loads`; "bytes" keeps them as bytes).

    Returns:
        The unpickled object.

    Raises:
        RefusedPickle: the pickle names a class or function (it would run
            code); its `module` and `name` say which.
        Exception: whatever the unpickler raises on a malformed pickle
            (`pickle.UnpicklingError`, `EOFError`, `ValueError`, ...).
    """
    return _PlainDataUnpickler(io.BytesIO(data), encoding=encoding).load()
