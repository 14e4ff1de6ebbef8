"""``python -m apa COMMAND ...``: the ``apa`` command (see apa.cli)."""

from apa.cli import main

if __name__ == "__main__":
    main()
