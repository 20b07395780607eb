"""`python search.py ...`: the search binary (apps/search.py)."""

from apps import search

if __name__ == "__main__":
    search.run()
