"""Measure capabilities per language: scoring engine, tasks, metrics, consistency, fertility.

    from babelscope.measure import evaluate, format_table
    result = evaluate("default", "continuation,translation", "eng_Latn,fra_Latn,deu_Latn", limit=50)
    print(format_table(result))

Importing this package does not import torch; the engine loads it when first used.
"""

# the function, not the submodule of the same name (bound after the submodule import)
from babelscope.measure.evaluate import EvalResult, evaluate, format_table, rescore


def __getattr__(name):
    if name == "Engine":
        from babelscope.measure.engine import Engine

        return Engine
    raise AttributeError(name)


__all__ = ["Engine", "EvalResult", "evaluate", "format_table", "rescore"]
