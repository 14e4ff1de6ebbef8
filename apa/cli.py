"""The ``apa`` command (a console script): ``apa score ...``, ``apa compare ...`` and ``apa data ...``,
each the same as ``python -m apa.score`` / ``apa.compare`` / ``apa.download``."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

COMMANDS = {
    "score": ("apa.score", "score the pronunciation of recordings (sentence, word and phone level)"),
    "compare": ("apa.compare", "compare run folders: metrics with intervals, paired bootstrap"),
    "data": ("apa.download", "get speechocean762: download, verify, unpack and check it"),
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="apa",
        description="apa: automatic pronunciation assessment with speech LLMs.",
        epilog="\n".join(f"  apa {name:8} {summary}" for name, (_, summary) in COMMANDS.items())
        + "\n\n`apa COMMAND --help` tells more.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=COMMANDS, help="what to do")
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help="the command's own arguments")
    args = parser.parse_args(argv)
    importlib.import_module(COMMANDS[args.command][0]).main(args.arguments)
