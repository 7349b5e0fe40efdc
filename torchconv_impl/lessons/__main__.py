"""python -m torchconv_impl.lessons [NAME [--out DIR] [--seed S] [lesson options]]"""
from __future__ import annotations

import argparse
import sys
import textwrap

import torch

from . import lessons
from ._common import WIDTH, Lesson, common_arguments


def main(argv=None, printer=print):
    """Lists the lessons, or runs one; returns the figure's path (None when listing)."""
    argv = sys.argv[1:] if argv is None else argv
    available = lessons()
    if not argv or argv[0] in ("-h", "--help", "list"):
        printer("Lessons (python -m torchconv_impl.lessons NAME --help for a lesson's options):")
        for name, module in available.items():
            summary = module.__doc__.strip().splitlines()[0]
            printer(textwrap.fill(summary, WIDTH, initial_indent=f"  {name:24s} ", subsequent_indent=" " * 27))
        return None
    name = argv[0]
    if name not in available:
        raise SystemExit(f"lessons: unknown lesson {name!r}; the lessons are: {', '.join(available)}")
    module = available[name]
    parser = argparse.ArgumentParser(prog=f"python -m torchconv_impl.lessons {name}", description=module.__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    common_arguments(parser)
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    torch.manual_seed(args.seed)
    lesson = Lesson(name, args.out, printer)
    return lesson.finish(module.run(args, lesson))


if __name__ == "__main__":
    main()
