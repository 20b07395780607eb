"""The binaries' code: each `apps/<name>.py` defines its flags, `main(argv)`
(flags → config → one `tasks` call) and `run()`, the console-script entry
with the one error path (`apps.cli`). The top-level `evaluate.py`,
`predict.py`, ... are shims calling `run()`. Nothing in `common`, `models`,
`preprocessing` or `tasks` imports this package.

Flags are defined by `run()` (not at import), so that every binary can be
imported together (by the tests) without duplicate flag definitions.
"""

import os

# Before any module below imports TensorFlow: quiet its C++ start-up lines.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
