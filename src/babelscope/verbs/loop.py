"""``babelscope loop``: measure -> interpret -> improve -> measure again, in one command.

Each step is a normal run folder of its verb (the verb's ``run`` called with a config object), nested in
the loop's own folder and listed in its ``loop.json`` (step, verb, run folder, status, seconds)::

    baseline (eval) -> heads -> neurons -> layers -> ablate_heads (eval, specific heads zeroed)
      -> deactivate_neurons (eval, specific neurons zeroed) -> finetune | mask | finetune + merge
      -> after (eval of the improved model on the same held-out items) -> [heads_after, neurons_after]

then results.json (the agreement of heads, neurons and layers; the effect matrix of every intervention
against the baseline, paired over item ids) and report.html. A step is finished when its run folder
has results.json; rerunning the same command finds the unfinished loop folder (same fingerprint) and
starts at the first unfinished step (an interrupted finetune resumes from its checkpoint)::

    import babelscope as bs
    r = bs.loop(languages="eng_Latn,fra_Latn", improve="finetune")
    r.results["effects"]   # rows: intervention, task, language, metric, before, after, delta, low, high, n, verdict
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from babelscope.errors import UsageError
from babelscope.interpret.agreement import across_models, across_rows, as_rows
from babelscope.languages import REFERENCE
from babelscope.measure import effects as fx
from babelscope.models.load import EMBEDDED
from babelscope.report import write_report
from babelscope.runs import RunFolder, atomic_write_text, sanitize
from babelscope.verbs import VerbSpec, spec
from babelscope.verbs import agree as agree_verb
from babelscope.verbs.common import finish, reopen_run, start_run
from babelscope.verbs.config import SOURCE_HELP, LanguageOptions, ModelOptions, OutputOptions, option
from babelscope.verbs.identity import check_same_run, difference, fingerprint
from babelscope.verbs.loop_steps import STEP_VERBS, build_step, check_plan, deactivated_eval, plan

IMPROVE = ("finetune", "mask", "merge")
LOOP_TASKS = "continuation,bpc"  # accuracy and consistency (multiple choice) and held-out bits per character
LOOP_LANGUAGES = "eng_Latn,fra_Latn,deu_Latn,hin_Deva"  # four scripts and families within 30 minutes on 2 cores
LOOP_LIMIT = 16  # held-out items per task and language, the same in every evaluation (docs/loop.md: time)
INTERVENTIONS = {"ablate_heads": "head ablation", "deactivate_neurons": "neuron deactivation",
                 "after_finetune": "finetune"}  # eval step -> intervention; "after" is the chosen improvement


@dataclass
class LoopConfig(OutputOptions, LanguageOptions, ModelOptions):
    languages: str = option(LOOP_LANGUAGES, "comma-separated codes (FLORES-200 like deu_Latn, or de / deu / German); "
                            "every step runs on them (the interpretation steps add English)", short="-l")
    improve: str = option("finetune", "the improvement: finetune (PLAST: train the recommended layers on parallel "
                          "data), mask (a soft mask on the top LAHIS heads) or merge (finetune, then average the "
                          "fine-tuned model with the base: a linear merge)", choices=IMPROVE)
    tasks: str = option(LOOP_TASKS, "tasks of the baseline and every re-measurement (same held-out items)",
                        short="-t")
    source: str = option("builtin", SOURCE_HELP)
    limit: int = option(LOOP_LIMIT, "held-out items per task and language", short="-L", minimum=1)
    ablate: bool = option(True, "also evaluate with every language's specific heads zeroed, and with every "
                          "language's specific neurons zeroed (two more evaluations; rows of the effect matrix)")
    reinterpret: bool = option(False, "run heads and neurons again on the improved model and compare the "
                               "agreement before/after")
    n_boot: int = option(fx.N_BOOT, "bootstrap resamples for every interval", minimum=10)
    steps: dict | None = option(None, "a YAML plan's per-step options, e.g. {heads: {num_items: 32}, finetune: "
                                "{max_steps: 100}, eval: {batch_size: 4}} (eval: every evaluation); step names: "
                                + ", ".join(STEP_VERBS), cli=False)
    resume: str | None = option(None, "continue this loop folder (default: the newest unfinished loop of the same "
                                "settings is found and continued)", metavar="RUN")

    def validate(self) -> None:
        super().validate()
        if not isinstance(self.steps or {}, dict):
            raise UsageError(f"steps must be a mapping {{step: {{option: value}}}}, not {self.steps!r}.")
        check_plan(self.steps or {})
        name = self.model_name
        if self.improve == "merge" and name not in EMBEDDED and not Path(name).expanduser().is_dir():
            raise UsageError(f"--improve merge reads the base weights from a local folder; --model {name!r} is not "
                             "one (pass a model folder or an embedded name).")

    def reference(self, languages: list[str]) -> str:
        return REFERENCE if REFERENCE in languages else languages[0]


# the loop folder and its steps ---------------------------------------------------------------------


def open_loop(config: LoopConfig) -> RunFolder:
    """The loop folder: --resume, --run_name, the newest unfinished loop with the same fingerprint, or a new one."""
    if config.resume:
        return reopen_run(config.resume, config, "loop")
    if config.run_name:
        return start_run(config, "loop")
    new = fingerprint(config, "loop")
    root = Path(config.output_path) / sanitize(config.model_name)
    for folder in sorted(root.glob("loop-*"), reverse=True):
        if (folder / "fingerprint.json").is_file() and not (folder / "results.json").is_file():
            if not difference(RunFolder.open(folder).read_json("fingerprint.json"), new):
                return reopen_run(folder, config, "loop", how="loop")
    return start_run(config, "loop")


def finished_step(loop: RunFolder, name: str) -> Path | None:
    """The run folder of step ``name`` when it has results.json."""
    found = sorted(p.parent for p in loop.path.glob(f"*/{name}/results.json"))
    return found[0] if found else None


def write_state(loop: RunFolder, state: list[dict], status: str) -> None:
    loop.write_json("loop.json", {"status": status, "steps": state})


def run_step(loop: RunFolder, state: list[dict], name: str, done: dict, config: LoopConfig) -> None:
    """Run step ``name`` (or reuse its finished run folder); record it in loop.json and ``done``."""
    verb, sub = build_step(name, config, loop.path, done)
    entry = {"step": name, "verb": verb, "run": None, "status": "skipped", "seconds": 0.0, "cpu_seconds": 0.0}
    state.append(entry)
    if sub is None:
        write_state(loop, state, "running")
        return
    previous = finished_step(loop, name)
    if previous is not None:
        check_same_run(RunFolder.open(previous), fingerprint(sub, verb), f"loop step {name}:")
        entry.update(run=str(previous.relative_to(loop.path)), status="reused")
        done[name] = previous
        write_state(loop, state, "running")
        return
    entry["status"] = "running"
    write_state(loop, state, "running")
    print(f"babelscope: loop step {name} ({verb})", file=sys.stderr, flush=True)
    t0, c0 = time.time(), time.process_time()
    result = deactivated_eval(sub, done["neurons"]) if name == "deactivate_neurons" else spec(verb).run(sub)
    done[name] = result.path
    entry.update(run=str(result.path.relative_to(loop.path)), status="done", seconds=round(time.time() - t0, 3),
                 cpu_seconds=round(time.process_time() - c0, 3))  # CPU time of all threads: a busy machine's wall
    write_state(loop, state, "running")


# effects ----------------------------------------------------------------------------------------------


def read_samples(run_path: Path) -> dict:
    """``{task: {language: [record]}}`` of an eval run folder."""
    run = RunFolder.open(run_path)
    results = run.read_json("results.json")
    return {task: {lang: run.read_samples(task, lang) for lang in per} for task, per in results["tasks"].items()}


def effect_matrix(config: LoopConfig, done: dict, reference: str) -> dict:
    """``{intervention: {task: {language: {metric: change}}}}`` against the baseline, paired over item ids."""
    baseline = read_samples(done["baseline"])
    names = {**INTERVENTIONS, "after": config.improve}
    return {names[step]: fx.effect_table(baseline, read_samples(done[step]), reference, config.n_boot, config.seed)
            for step in names if done.get(step)}


def agreements(done: dict, n_boot: int, seed: int) -> dict:
    """The agreement of heads, neurons and layers on the base model, and after the improvement when re-run
    (as rows: ``interpret.agreement.as_rows``)."""
    before = agree_verb.agreement_of(done["heads"], done["neurons"], done["layers"], n_boot, seed)
    if not (done.get("heads_after") and done.get("neurons_after")):
        return {"before": as_rows(before)}
    after = agree_verb.agreement_of(done["heads_after"], done["neurons_after"], None, n_boot, seed)
    return {"before": as_rows(before), "after": as_rows(after),
            "across": across_rows(across_models(before, after, n_boot, seed))}


# the verb ---------------------------------------------------------------------------------------------


def run(config: LoopConfig):
    languages = config.language_list()
    loop = open_loop(config)
    loop.languages = languages
    started = time.time()
    state: list[dict] = []
    done: dict = {}
    write_state(loop, state, "running")
    for name in plan(config):
        run_step(loop, state, name, done, config)
    bind_baseline_model(loop, done["baseline"])
    reference = config.reference(languages)
    effects = fx.as_rows(effect_matrix(config, done, reference))
    payload = {"improve": config.improve, "reference": reference, "steps": state,
               "agreement": agreements(done, config.n_boot, config.seed), "effects": effects,
               "effects_summary": fx.summarise(effects)}
    write_state(loop, state, "finished")
    loop.write_results(payload)
    steps = [loop.path, *(loop.path / s["run"] for s in state if s["run"])]  # after-steps sit under <loop>/model/
    report = write_report(steps, loop.path / "report.html", title=f"babelscope loop: {config.model_name}")
    atomic_write_text(loop.path / "README.md", readme(config, payload, report))
    summary = (f"{summary_text(payload)}\nbabelscope: loop finished in {time.time() - started:.1f} s; run folder "
               f"{loop.path}\nbabelscope: report {report}")
    return finish("loop", loop, summary, report=report)


def bind_baseline_model(loop: RunFolder, baseline: Path) -> None:
    """The loop's model, device and dtype: the baseline evaluation's (no model is loaded for the loop itself)."""
    results = RunFolder.open(baseline).read_json("results.json")
    loop.model, env = results["model"], results["environment"]
    loop.device, loop.dtype = env.get("device"), env.get("dtype")


def summary_text(payload: dict) -> str:
    """Steps, and per intervention the languages that clearly gained or lost."""
    lines = [f"  {s['step']:<20} {s['verb']:<9} {s['status']:<8} {s['seconds']:>8.1f} s" for s in payload["steps"]]
    for name, summary in payload["effects_summary"].items():
        gained = ", ".join(f"{g['language']} {g['task']}/{g['metric']}" for g in summary["gained"]) or "none"
        lost = ", ".join(f"{g['language']} {g['task']}/{g['metric']}" for g in summary["lost"]) or "none"
        lines.append(f"{name}: gained {gained}; lost {lost}")
        for c in summary["consistency"]:
            lines.append(f"  {c['task']} consistency with the reference {c['before']:.3f} -> {c['after']:.3f} "
                         f"[{c['low']:+.3f}, {c['high']:+.3f}] ({c['verdict']})")
    return "\n".join(lines)


def readme(config: LoopConfig, payload: dict, report) -> str:
    steps = "\n".join(f"| {s['step']} | {s['verb']} | {s['status']} | {s['run'] or '-'} | {s['seconds']:.1f} |"
                      for s in payload["steps"])
    return (f"# babelscope loop: {config.model_name}\n\nImprovement: {config.improve}; languages "
            f"{config.languages}; tasks {config.tasks} on {config.limit} held-out items per language.\n\n"
            f"| step | verb | status | run folder | seconds |\n|---|---|---|---|---|\n{steps}\n\n"
            f"Report: {Path(report).name}. Effects and agreement: results.json.\n\n{summary_text(payload)}\n")


def rows(results: dict) -> list[dict]:
    """intervention, task, language, metric, before, after, delta, low, high, n, verdict."""
    return results["effects"]


SPEC = VerbSpec(
    "loop", "improve", "measure -> interpret -> improve -> measure again, one report with agreement and effects",
    LoopConfig, run,
    description="Runs eval (baseline), heads, neurons, layers, head ablation and neuron deactivation evaluations, "
    "the chosen improvement (finetune on the recommended layers, a soft mask on the top LAHIS heads, or finetune "
    "then a linear merge with the base) and the same eval on the same held-out items, each as a normal run folder "
    "inside the loop's folder; then the agreement of heads, neurons and layers and the effect matrix (paired "
    "bootstrap over item ids), and one report. Rerunning the same command resumes at the first unfinished step. "
    "Example: babelscope loop --languages eng_Latn,fra_Latn,deu_Latn,hin_Deva --improve finetune",
)
