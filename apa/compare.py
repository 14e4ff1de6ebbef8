"""``python -m apa.compare RUN_DIR...``: compare runs from their folders (see apa.evaluation.compare)."""

from apa.evaluation.compare import main

if __name__ == "__main__":
    main()
