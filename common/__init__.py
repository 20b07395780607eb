"""The bottom layer: facts and file helpers that `models/`, `preprocessing/`
and `tasks/` all share. It imports nothing of the project, so every package
may import it without forming a circle."""
