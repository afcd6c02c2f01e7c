"""Text2Cypher across languages: built-in graph (graph.py), schema text (schema.py), question set
(questions.py), read-only check (safety.py), isolated execution (execute.py), metrics (metrics.py),
prompts (prompts.py), public data and Neo4j (public.py), the evaluation loop (evaluate.py)."""

from babelscope.cypher.questions import finetune_pairs, load_questions  # light: standard library only

__all__ = ["finetune_pairs", "load_questions"]
