"""build_arrays (apps/build_arrays.py) in-process: flags -> BuildConfig ->
fold folders and the printed sizes; a rerun builds nothing; user errors.
(The binary as a user runs it: tests/preprocessing/test_build_arrays.py.)"""

import json
import os

import pytest
from absl import app
from absl import flags
from absl.testing import flagsaver

from apps import build_arrays as build_arrays_app
from preprocessing import asr
from preprocessing import reference_arrays
from tests.apps import flags_once
from tests.corpus_fixtures import make_manifest_corpus

build_arrays_flags = flags_once.use(build_arrays_app)
QUIET = dict(num_workers=1, progress=False, embedding_dim=4)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_manifest_corpus(str(tmp_path_factory.mktemp("corpus")),
                                num=12, num_speakers=4)


def test_flags_build_the_folds_and_print_their_sizes(manifest, tmp_path,
                                                     capsys):
    output = str(tmp_path / "out")
    flags_once.main(build_arrays_app, corpus="manifest", manifest=manifest,
                    output_dir=output, split="speaker", num_folds=2,
                    label_map="angry:0,happy:1,sad:2,neutral:3",
                    vocabulary_json=True, **QUIET)
    sizes = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert sorted(sizes) == ["speaker_fold01", "speaker_fold02"]
    for name, fold_sizes in sizes.items():
        fold = reference_arrays.load_fold(os.path.join(output, name))
        assert fold.manifest["sizes"] == fold_sizes
        assert fold.manifest["split"]["policy"] == "speaker"
        assert sum(fold_sizes.values()) == 12
        assert os.path.isfile(os.path.join(output, name, "dic.json"))
    # The same flags again: up to date, nothing built, nothing printed.
    flags_once.main(build_arrays_app, corpus="manifest", manifest=manifest,
                    output_dir=output, split="speaker", num_folds=2,
                    label_map="angry:0,happy:1,sad:2,neutral:3",
                    vocabulary_json=True, **QUIET)
    captured = capsys.readouterr()
    assert captured.out == "" and "up to date" in captured.err


def test_config_from_flags(manifest, tmp_path):
    with flagsaver.flagsaver(
            corpus="iemocap", corpus_dir=str(tmp_path), sessions=["1", "3"],
            output_dir=str(tmp_path / "o"), label_names=["a", "b"],
            label_map="x:0,y:1,z:-1"):
        config = build_arrays_app.config_from_flags(flags.FLAGS)
    assert config.sessions == (1, 3) and config.label_names == ("a", "b")
    assert config.label_map == {"x": 0, "y": 1, "z": -1}
    # Defaults, not the values above (flags do not leak between tests).
    with flagsaver.flagsaver(corpus="manifest",
                             output_dir=str(tmp_path / "o")):
        config = build_arrays_app.config_from_flags(flags.FLAGS)
    assert config.sessions is None and config.label_map is None
    assert config.split == "random5" and config.min_count == 1


def test_user_errors(manifest, tmp_path, capsys):
    output = str(tmp_path / "out")
    # Inconsistent flags: a usage error.
    with pytest.raises(app.UsageError, match="corpus_dir"):
        flags_once.main(build_arrays_app, corpus="iemocap",
                        output_dir=output, **QUIET)
    # More folds than speakers: the data cannot be split so.
    with pytest.raises(reference_arrays.DataError, match="num_folds=5"):
        flags_once.main(build_arrays_app, corpus="manifest",
                        manifest=manifest, output_dir=output,
                        split="speaker", num_folds=5, **QUIET)
    # A recogniser that cannot be loaded: one line before any work.
    line = flags_once.user_error_line(
        capsys, build_arrays_app, "build_arrays", (asr.AsrError,),
        corpus="manifest", manifest=manifest, output_dir=output,
        split="speaker", num_folds=2, transcripts="asr",
        asr=f"ctc:{tmp_path / 'no_model'}", **QUIET)
    assert line.startswith("build_arrays: --asr=ctc:")
    assert "no_model" in line and "saved_model.pb" in line
    assert not os.path.exists(output)
