"""The ``initlab`` command line.

Each sub-command lives in its own module ``initlab.cli.<name>_cmd`` exposing
``add_parser(subparsers)`` (which registers the sub-parser and sets
``func=run``) and ``run(args) -> int``. Bad input raises
:class:`initlab.errors.InitlabError`; :func:`main` prints its one line and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from initlab.errors import InitlabError

COMMANDS = ("schemes", "run", "summary", "report", "export", "probe", "check", "coordcheck", "paper",
            "recommend")


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="initlab", description="Study, check and choose weight initialization.")
    from initlab import __version__

    parser.add_argument("--version", action="version", version=f"initlab {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f"initlab.cli.{name}_cmd")
        module.add_parser(sub)
    for command in sub.choices.values():  # every command loads users' schemes the same way
        command.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                             help="load a Python file that registers schemes (initlab.register_scheme); "
                                  "repeatable")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        if args.command is None:  # bare `initlab` runs the main job
            args = parser.parse_args(["run", *(argv or [])])
        else:
            parser.print_help()
            return 2
    try:
        from initlab.plugins import load_plugin

        for path in getattr(args, "plugin", []):
            load_plugin(path)
        return int(args.func(args) or 0)
    except InitlabError as exc:
        print(f"initlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("initlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`initlab summary RUN --json | head`): not an error of ours;
        # point stdout at /dev/null so that the interpreter's final flush stays quiet
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (AttributeError, OSError, ValueError):  # stdout is not a file
            pass
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
