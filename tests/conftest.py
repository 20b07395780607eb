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


def built_once(tmp_path_factory, name, build):
    """What `build(folder)` returns (JSON data) for a folder it fills, built
    once per test session.

    Under pytest-xdist every worker process would otherwise build its own:
    the workers share one folder under the session's base temp folder; the
    first to ask builds it under a lock (fcntl), the others wait and reuse
    it. Callers must treat the folder as read-only.
    """
    import fcntl
    import json
    import shutil

    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return build(tmp_path_factory.mktemp(name))
    base = tmp_path_factory.getbasetemp().parent
    root, done = base / name, base / f"{name}.json"
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_file():
            return json.loads(done.read_text())
        if root.exists():  # Left by a build that failed in another worker.
            shutil.rmtree(root)
        root.mkdir()
        result = build(root)
        done.write_text(json.dumps(result))
        return result


def _build_demo_fold(root):
    from preprocessing import demo_corpus

    return demo_corpus.generate(str(root / "demo"), num_utterances=320,
                                num_workers=1, log=lambda _: None)


def _build_tiny_demo_run(root):
    from tasks import serving
    from tests import helpers

    demo = helpers.tiny_demo_run(root, num_utterances=48)
    return dict(demo, root=str(root), export_dir=serving.export_run(
        demo["run_dir"], str(root / "export")))


@pytest.fixture(scope="session")
def demo_fold(tmp_path_factory):
    """A 320-utterance demo corpus's fold, shared by the training tests
    (generated once per session, read-only)."""
    from preprocessing import reference_arrays

    return reference_arrays.load_fold(
        built_once(tmp_path_factory, "demo_fold", _build_demo_fold))


@pytest.fixture(scope="session")
def tiny_demo_source(tmp_path_factory):
    """One tiny MDREA run on a 48-utterance demo corpus and its export
    (`export_dir`, outside the run folder), trained once per session.

    Read-only: a test module takes its own `helpers.copy_demo_run` of it
    (a copy costs milliseconds; training and exporting cost ~20 s).
    """
    return built_once(tmp_path_factory, "tiny_demo_source",
                      _build_tiny_demo_run)
