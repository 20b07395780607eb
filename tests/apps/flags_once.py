"""One binary's flags at a time in absl's global FLAGS, for in-process tests
of `apps/<name>.py` (pytest runs many test files in one process).

The binaries cannot all be defined at once: they share flag names with
different definitions (`--split` is a train/dev/test enum in evaluate.py
and a split policy in build_arrays; `--output_dir` defaults to "runs" in
train.py and to None elsewhere; `--text` repeats in predict.py, not in
explain.py; `--batch_size`, `--seed`, `--asr` and `--min_count` differ in
their defaults). So each binary's flags are defined once per process (its
`define_flags()`), kept aside, and put into FLAGS only while its tests run
(`binary_flags(app_module)`), with the key-flag registrations `--help`
reads. Values cannot leak between tests: `binary_flags` and `main` restore
every flag (absl's own, e.g. --verbosity, too) with `flagsaver`.

Not collected as a test module.
"""

import contextlib
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import pytest
from absl import flags
from absl.testing import flagsaver

FLAGS = flags.FLAGS
# Module name of the binary -> (its flags, {module: names it registered
# as key flags}).
_DEFINED: Dict[str, Tuple[flags.FlagValues, Dict[str, List[str]]]] = {}
_ACTIVE: List[str] = []


def _define(app_module) -> Tuple[flags.FlagValues, Dict[str, List[str]]]:
    """Runs `app_module.define_flags()` once, then takes its flags out of
    FLAGS again (into a FlagValues of their own)."""
    before = set(FLAGS)
    app_module.define_flags()
    holder = flags.FlagValues()
    for name in FLAGS:
        if name not in before and FLAGS[name].name == name:
            holder[name] = FLAGS[name]
    modules = set(FLAGS.flags_by_module_dict()) | set(
        FLAGS.key_flags_by_module_dict())
    keys = {}
    for module in modules:
        names = [flag.name for flag in FLAGS.get_key_flags_for_module(module)
                 if flag.name in holder and holder[flag.name] is flag]
        if names:
            keys[module] = names
    FLAGS.remove_flag_values(holder)
    return holder, keys


@contextlib.contextmanager
def binary_flags(app_module) -> Iterator[flags.FlagValues]:
    """FLAGS holding exactly `app_module`'s flags (besides absl's own),
    parsed, for the duration of the block; restored after it."""
    name = app_module.__name__
    if _ACTIVE:
        raise RuntimeError(f"the flags of {_ACTIVE[-1]} are in FLAGS "
                           f"already; {name} cannot join them")
    if name not in _DEFINED:
        _DEFINED[name] = _define(app_module)
    holder, keys = _DEFINED[name]
    FLAGS.append_flag_values(holder)
    for module, names in keys.items():
        for flag_name in names:
            FLAGS.register_key_flag_for_module(module, holder[flag_name])
    _ACTIVE.append(name)
    try:
        FLAGS.mark_as_parsed()
        with flagsaver.flagsaver():
            yield FLAGS
    finally:
        _ACTIVE.pop()
        FLAGS.remove_flag_values(holder)


def use(app_module):
    """A module-scoped autouse fixture putting `app_module`'s flags in
    FLAGS for every test of the test module:

        binary = flags_once.use(evaluate_app)
    """

    @pytest.fixture(scope="module", autouse=True)
    def fixture():
        with binary_flags(app_module):
            yield

    return fixture


def main(app_module, *arguments: str, **values: Any) -> Any:
    """`app_module.main([program, *arguments])` with the flags set to
    `values` (restored afterwards); returns what main returns."""
    program = app_module.__name__.rsplit(".", 1)[-1] + ".py"
    with flagsaver.flagsaver(**values):
        return app_module.main([program, *arguments])


def command(app_module, *arguments: str) -> Any:
    """`app_module.main` after absl parses `arguments` as the command line
    (flags and positional arguments, as a user types them); the flags are
    restored afterwards. Raises what parsing raises (e.g.
    `flags.IllegalFlagValueError`), which absl reports as a usage error."""
    program = app_module.__name__.rsplit(".", 1)[-1] + ".py"
    with flagsaver.flagsaver():
        return app_module.main(FLAGS([program, *arguments]))


def user_error_line(capsys, app_module, program: str,
                    user_errors: Sequence[type] = (), *arguments: str,
                    **values: Any) -> str:
    """The one stderr line of a user error as the binary reports it
    (`apps.cli.guard`, as in `run()`): exit status 1, no traceback."""
    from apps import cli

    capsys.readouterr()
    guarded = cli.guard(app_module.main, program, tuple(user_errors))
    with flagsaver.flagsaver(**values):
        with pytest.raises(SystemExit) as done:
            guarded([program, *arguments])
    assert done.value.code == 1
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"{program}: "), lines[0]
    return lines[0]

