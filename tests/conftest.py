"""Shared pytest setup: quiet TensorFlow, the opt-in `slow` marker, fixtures."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402


def pytest_addoption(parser):
    parser.addoption("--run_slow", action="store_true", default=False,
                     help="Run tests marked slow (long, or needing the "
                          "network).")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: slow or network tests; run with --run_slow.")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run_slow"):
        return
    skip = pytest.mark.skip(reason="slow; run with --run_slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def demo_fold(tmp_path_factory):
    """A 320-utterance demo corpus's fold, shared by the training tests."""
    from preprocessing import demo_corpus
    from preprocessing import reference_arrays

    root = tmp_path_factory.mktemp("demo")
    fold_dir = demo_corpus.generate(str(root / "demo"), num_utterances=320,
                                    num_workers=1, log=lambda _: None)
    return reference_arrays.load_fold(fold_dir)


@pytest.fixture(scope="session")
def tiny_demo_source(tmp_path_factory):
    """One tiny MDREA run on a 48-utterance demo corpus and its export
    (`export_dir`, outside the run folder), trained once per test process.

    Read-only: a test module takes its own `helpers.copy_demo_run` of it
    (a copy costs milliseconds; training and exporting cost ~20 s).
    """
    import inference
    from tests import helpers

    root = tmp_path_factory.mktemp("tiny_demo_source")
    demo = helpers.tiny_demo_run(root, num_utterances=48)
    return dict(demo, export_dir=inference.export_run(
        demo["run_dir"], str(root / "export")))
