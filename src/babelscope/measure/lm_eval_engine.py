"""``--engine lm_eval``: the same babelscope tasks, scored by lm-eval's ``HFLM`` on the live model.

Useful to cross-check babelscope's engine or to reproduce lm-eval numbers exactly; the records,
tables, consistency and report data are babelscope's either way. ``rolling_loglikelihood``
follows lm-eval's rolling windows (its token list includes a BOS the tokenizer adds).
"""

from __future__ import annotations

from babelscope.errors import require


class LMEvalScorer:
    """The Engine interface (loglikelihood, rolling_loglikelihood, generate_until) over HFLM."""

    def __init__(self, loaded, batch_size: int = 8, progress: bool = True):
        require("lm_eval", extra="lm_eval", feature="--engine lm_eval")
        from lm_eval.models.huggingface import HFLM

        from babelscope.measure.engine import Engine

        max_length = loaded.extras.get("max_length")  # max_length= in --model_args
        self.lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size,
                       max_length=max_length)
        self.progress = progress
        self._tokens = Engine(loaded, batch_size=batch_size, progress=False, max_length=max_length)  # for token counts

    def encode_pair(self, context: str, continuation: str):
        return self._tokens.encode_pair(context, continuation)

    @staticmethod
    def _instances(kind: str, args: list[tuple]) -> list:
        from lm_eval.api.instance import Instance

        return [Instance(request_type=kind, doc={}, arguments=a, idx=i) for i, a in enumerate(args)]

    def loglikelihood(self, requests: list[tuple[str, str]], desc: str = "") -> list[tuple[float, bool]]:
        out = self.lm.loglikelihood(self._instances("loglikelihood", requests), disable_tqdm=not self.progress)
        return [(float(lp), bool(g)) for lp, g in out]

    def rolling_loglikelihood(self, texts: list[str], desc: str = "") -> list[tuple[float, int]]:
        sums = self.lm.loglikelihood_rolling(
            self._instances("loglikelihood_rolling", [(t,) for t in texts]), disable_tqdm=not self.progress
        )
        return [(float(s), len(self.lm.tok_encode(t))) for s, t in zip(sums, texts, strict=True)]

    def generate_until(self, requests: list[tuple[str, dict]], desc: str = "") -> list[str]:
        reqs = [(ctx, dict(kw)) for ctx, kw in requests]
        return list(self.lm.generate_until(self._instances("generate_until", reqs), disable_tqdm=not self.progress))


def lm_eval_task_yaml(name: str, jsonl: str) -> str:
    """A local lm-eval multiple-choice task over a JSONL of {context, choices, gold} (choices keep their spaces)."""
    import json

    return "\n".join(
        [
            f"task: {name}",
            "dataset_path: json",
            "dataset_kwargs:",
            "  data_files:",
            f"    test: {json.dumps(jsonl)}",
            "test_split: test",
            "output_type: multiple_choice",
            'doc_to_text: "{{context}}"',
            'doc_to_choice: "{{choices}}"',
            'doc_to_target: "{{gold}}"',
            'target_delimiter: ""',
            "metric_list:",
            "  - metric: acc",
            "    aggregation: mean",
            "    higher_is_better: true",
            "  - metric: acc_norm",
            "    aggregation: mean",
            "    higher_is_better: true",
            "metadata:",
            "  version: 1.0",
            "",
        ]
    )


def lm_eval_multiple_choice(loaded, items: list, workdir, batch_size: int = 8, name: str = "babelscope_mc") -> dict:
    """Run MCItems through lm-eval's own task pipeline (``simple_evaluate``, local YAML over JSONL).

    Returns ``{"logprobs": [[per choice] per item], "acc": ..., "acc_norm": ...}`` in item order.
    """
    import json
    from pathlib import Path

    require("lm_eval", extra="lm_eval", feature="lm-eval's task pipeline")
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / f"{name}.jsonl"
    data.write_text(
        "".join(
            json.dumps({"context": it.context, "choices": it.choices, "gold": it.gold}, ensure_ascii=False) + "\n"
            for it in items
        ),
        encoding="utf-8",
    )
    (workdir / f"{name}.yaml").write_text(lm_eval_task_yaml(name, str(data)), encoding="utf-8")
    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=batch_size)
    out = simple_evaluate(
        model=lm,
        tasks=[name],
        task_manager=TaskManager(include_path=str(workdir), include_defaults=False),
        log_samples=True,
        bootstrap_iters=0,
    )
    samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
    logprobs = [[float(r[0][0]) for r in s["resps"]] for s in samples]
    res = out["results"][name]
    return {"logprobs": logprobs, "acc": res["acc,none"], "acc_norm": res["acc_norm,none"]}
