"""Pickles that would run code are refused before anything runs."""

import os
import pickle

import pytest

from preprocessing import safe_pickle


class _Payload:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_round_trips_at_every_protocol(protocol):
    data = {"_PAD_": 0, "word": 2, b"raw": 3, "t": (1, 2.5, None, [True])}
    assert safe_pickle.loads(pickle.dumps(data, protocol)) == data


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_reduce_payload_is_refused_with_its_name(protocol, tmp_path):
    marker = tmp_path / "made_by_the_pickle"
    data = pickle.dumps({"w": _Payload(str(marker))}, protocol)
    assert pickle.loads(data) and marker.is_dir()  # it does run code
    marker.rmdir()
    with pytest.raises(safe_pickle.RefusedPickle) as error:
        safe_pickle.loads(data)
    assert error.value.module in ("posix", "os", "nt")
    assert error.value.name == "mkdir"
    assert not marker.exists()


def test_codecs_encode_admitted_only_for_latin1():
    # Python 3 bytes at protocol 2: _codecs.encode('ab', 'latin1').
    assert safe_pickle.loads(pickle.dumps(b"ab", 2)) == b"ab"
    data = b"c_codecs\nencode\n(Vab\nVrot_13\ntR."
    with pytest.raises(safe_pickle.RefusedPickle, match="rot_13"):
        safe_pickle.loads(data)


def test_builtins_that_are_not_data_are_refused():
    for text in (b"cbuiltins\neval\n(S'1'\ntR.", b"c__builtin__\nset\n)R."):
        with pytest.raises(safe_pickle.RefusedPickle):
            safe_pickle.loads(text)
