"""Write files and folders so that a crash never leaves a partial output.

Everything is written under a temporary name in the target's own folder
(same file system) and renamed into place at the end.
"""

import contextlib
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_directory(target, overwrite=False):
    """Yields a temporary folder that replaces `target` on success.

    Args:
        target: str. The folder to create.
        overwrite: bool. Replace an existing `target`; otherwise it is an
            error if it exists.

    Raises:
        FileExistsError: `target` exists and `overwrite` is False.
    """
    target = os.path.normpath(target)
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(f"{target}: already exists (pass overwrite to "
                              "replace it).")
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    tmp_dir = tempfile.mkdtemp(prefix=f".tmp-{os.path.basename(target)}-",
                               dir=parent)
    try:
        yield tmp_dir
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(tmp_dir, target)
    except OSError as error:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise named(error, target) from None
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise


def atomic_write(path, write, binary=False):
    """Calls `write(file)` on a temporary file, then renames it to `path`."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    descriptor, tmp_path = tempfile.mkstemp(
        prefix=f".tmp-{os.path.basename(path)}-", dir=directory)
    try:
        with os.fdopen(descriptor, "wb" if binary else "w") as f:
            write(f)
        os.replace(tmp_path, path)
    except OSError as error:
        os.unlink(tmp_path)
        raise named(error, path) from None
    except BaseException:
        os.unlink(tmp_path)
        raise


def named(error, path):
    """`error` with `path` as its file name when it names none (a failed
    write on an open file, e.g. a full disk, says only "No space left")."""
    if error.filename is not None:
        return error
    # OSError(errno, ...) picks the subclass (FileNotFoundError, ...).
    return OSError(error.errno, error.strerror or str(error), path)
