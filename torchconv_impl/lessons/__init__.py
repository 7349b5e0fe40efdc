"""Lessons: the lecture notes' derivations run step by step on small examples, each step
printed with its formula, every result checked against torch autograd of the torch.nn twin,
and one figure drawn.

    python -m torchconv_impl.lessons                       # the list
    python -m torchconv_impl.lessons NAME [--out DIR] [--seed S] [lesson options]

A lesson is a module of this package (its name the lesson's): its docstring's first line is
its summary, ``ORDER`` its place in the list (the notes' order), ``add_arguments(parser)``
adds its options, and ``run(args, lesson)`` computes, prints and checks through ``lesson`` (a
``_common.Lesson``) and returns the figure.
"""
import importlib
import pkgutil


def lessons() -> dict:
    """{name: module} of every lesson, in the notes' order."""
    modules = [importlib.import_module(f"{__name__}.{info.name}") for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")]
    return {module.__name__.rsplit(".", 1)[1]: module for module in sorted(modules, key=lambda m: m.ORDER)}
