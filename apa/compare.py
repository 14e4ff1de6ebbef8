"""``python -m apa.compare RUN_DIR...``: compare runs from their folders (see apa.evaluation.comparison)."""

from apa.evaluation.comparison import main

if __name__ == "__main__":
    main()
