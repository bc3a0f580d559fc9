"""The orchestrator: runs generate -> filter -> train -> evaluate -> report by calling plugins.

It holds no task-, model- or provider-specific code. Each stage reads what earlier stages left in
the run folder and writes its own outputs there, so any stage can be resumed or re-run alone. A
finished stage is skipped on resume; a stage that runs invalidates the stages after it.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stillhouse.kernel.config import LoadedConfig, to_toml
from stillhouse.kernel.curation import (
    balance_summary,
    balance_training,
    curate_splits,
    curation_counts,
    describe,
    require_training_rows,
)
from stillhouse.kernel.data import LoadedSplit, load_split
from stillhouse.kernel.distributed import is_main_process, world_size
from stillhouse.kernel.errors import ConfigError, StageError, StillhouseError
from stillhouse.kernel.events import teacher_call_fields
from stillhouse.kernel.interfaces import (
    Example,
    Loss,
    Metric,
    Parsed,
    Reporter,
    ReportInput,
    StudentTrainer,
    TaskType,
    Teacher,
    TeacherRequest,
    TeacherResult,
    TrainJob,
    TrainPair,
)
from stillhouse.kernel.lifecycle import EventSink, RunLifecycle, StopRequested
from stillhouse.kernel.plugins import PluginHost
from stillhouse.kernel.run_folder import SampleRecord
from stillhouse.kernel.runs import (
    STAGES,
    Run,
    RunLock,
    config_hash,
    stillhouse_home,
)
from stillhouse.kernel.secrets import remember_env
from stillhouse.kernel.teaching.config import CallTeacherConfig
from stillhouse.kernel.tracking import run_trackers

if TYPE_CHECKING:  # pragma: no cover - typing only
    from stillhouse.kernel.teacher_ensemble import JudgeSpec

REASON_CODE = re.compile(r"[a-z][a-z0-9_]{1,40}")
# Below this share of accepted training samples the filter stage warns: the student learns from little.
LOW_ACCEPTANCE = 0.2
# Reject reasons that mean "no answer could be read", as opposed to "the answer failed a check".
PARSE_REASONS = frozenset({"unparseable", "empty", "ambiguous_label", "no_number", "no_final_answer"})


class Pipeline:
    """One invocation of a run: a fresh one, or a resumed one."""

    _run_lock: RunLock | None = None  # held between _lock_run and _unlock_run

    def __init__(self, loaded: LoadedConfig, host: PluginHost, run: Run, *, on_event: EventSink | None = None) -> None:
        self.loaded = loaded
        self.cfg = loaded.pipeline
        self.host = host
        self.run = run
        self.on_event = on_event
        self.life = RunLifecycle(run, host, on_event=on_event)
        self._task: TaskType | None = None
        self._splits: dict[str, LoadedSplit] = {}
        self._curation: list[dict[str, Any]] | None = None  # the reports of curate_splits, once loaded
        # True once an earlier stage ran in this invocation: later stages then start afresh
        # instead of reusing partial outputs computed from the old inputs.
        self.upstream_changed = False

    # -- plumbing ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls, loaded: LoadedConfig, host: PluginHost, *, home: Path | None = None, on_event: EventSink | None = None
    ) -> Pipeline:
        config = loaded.to_dict()
        for split in ("train", "validation", "test"):
            path = loaded.data_path(split)
            if path is not None:  # absolute, so a resume needs no config file or working folder
                config["data"][split] = str(path)
        run = Run.create(config.get("name") or loaded.pipeline.task, config, home)
        run.folder.write_config(config, to_toml(config))
        return cls(loaded, host, run, on_event=on_event)

    def emit(self, type_: str, **payload: Any) -> None:
        self.life.emit(type_, **payload)

    def stop(self) -> None:
        """Ask the run to stop at the next safe point (thread-safe)."""
        self.life.stop()

    def should_stop(self) -> bool:
        return self.life.should_stop()

    @property
    def incomplete(self) -> dict[str, str]:
        """Stages of this invocation that finished with work left, and why."""
        return self.life.incomplete

    @property
    def task(self) -> TaskType:
        if self._task is None:
            self._task = self.host.get(TaskType, self.cfg.task)(self.cfg.task_options)
        return self._task

    def split(self, name: str) -> LoadedSplit | None:
        """A data split as Examples, curated (kernel.curation): all splits are loaded together, once
        per invocation, since dedup, the contamination check and a carved validation compare them."""
        if self._curation is None:
            loaded = {n: s for n in ("train", "validation", "test") if (s := self._load_split(n)) is not None}
            self._curation = curate_splits(self.task, self.cfg, loaded, seed=self.cfg.train.seed)
            self._splits = loaded
        return self._splits.get(name)

    def _load_split(self, name: str) -> LoadedSplit | None:
        path = self.loaded.data_path(name)
        if path is None:
            return None
        data = self.cfg.data
        return load_split(
            self.task,
            path,
            name,
            limit=data.limit,
            mapping=data.fields,
            on_bad_rows=data.on_bad_rows,
            for_evaluation=name == self._eval_split_name(),
            keep_columns=[data.balance_by] if data.balance_by else (),
        )

    def _eval_split_name(self) -> str | None:
        """The split the evaluate stage scores (the first of evaluate.split, test, validation that exists)."""
        names = (self.cfg.evaluate.split, "test", "validation")
        return next((n for n in names if n in ("test", "validation") and self.loaded.data_path(n) is not None), None)

    # -- running ----------------------------------------------------------------------------

    def execute(self, stages: list[str] | None = None, *, resume: bool = False, dry_run: bool = False) -> str:
        """Run the requested stages (default all) and return the final status."""
        wanted = list(stages or STAGES)
        unknown = [s for s in wanted if s not in STAGES]
        if unknown:
            raise ConfigError(f"unknown stage '{unknown[0]}'", hint=f"stages are {', '.join(STAGES)}")
        if dry_run:
            self.dry_run()
            return "dry-run"
        if world_size() > 1 and (wanted != ["train"] or not resume):
            raise ConfigError(
                f"under torchrun / accelerate launch ({world_size()} processes) only the train stage of an existing run can run",
                hint="run generate and filter first, then: torchrun --nproc_per_node N -m stillhouse.kernel.cli "
                "run --resume RUN_ID --stage train",
            )
        self._lock_run()
        cfg = self.run.config or self.loaded.to_dict()
        # The keys this run uses are read now, so everything it writes or prints can hide them.
        remember_env(self.loaded.to_dict())
        try:
            with self.life.start(
                name=self.cfg.name,
                task=self.cfg.task,
                teacher_model=self.cfg.teacher.model,
                student_model=self.cfg.student.model,
                primary_metric=self.task.primary_metric,
                config=cfg,
                config_hash=config_hash(cfg),
                resumed=resume,
                stages=wanted,
                plugins=self.plugins_used(),
            ):
                self._run_stages(wanted, resume)
        except (KeyboardInterrupt, StopRequested):
            pass  # recorded "interrupted"; `still run --resume` continues it
        finally:
            self._unlock_run()
        assert self.life.ending is not None  # set when the run's block exits
        return self.life.ending.status

    def _run_stages(self, wanted: list[str], resume: bool) -> None:
        finished = self.run.finished_stages() if resume else {}
        rerun_after = False
        for stage in STAGES:
            if stage not in wanted:
                continue
            summary = finished.get(stage)
            if summary is not None and not summary.get("incomplete") and not rerun_after:
                self.emit("log", level="info", message=f"stage {stage} already finished; skipped")
                continue
            self.upstream_changed = rerun_after
            with self.life.stage(stage) as record:
                record.summary = getattr(self, f"stage_{stage}")()
            rerun_after = True

    def _lock_run(self) -> None:
        """Hold the run folder's lock while this process works on it: a second `still run --resume`
        of the same run is refused at once, naming this pid. (Ranks of one torchrun share rank 0's.)"""
        if is_main_process() and self._run_lock is None:
            self._run_lock = RunLock(self.run.dir).acquire()

    def _unlock_run(self) -> None:
        lock = self._run_lock
        if lock is not None:
            lock.release()
            self._run_lock = None

    def plugins_used(self) -> list[dict[str, Any]]:
        """Which plugin (and package version) serves each role of this run, for the registry."""
        cfg = self.cfg
        chosen = [
            ("task", cfg.task),
            ("teacher", cfg.teacher.backend),
            ("student", cfg.student.trainer),
            ("loss", cfg.train.loss),
        ]
        chosen += [("evaluator", name) for name in cfg.evaluate.evaluators]
        chosen += [("reporter", name) for name in [*cfg.report.reporters, *cfg.report.trackers]]
        used = []
        for kind, name in chosen:
            source = self.host.sources.get(self.host.source_of(kind, name))
            used.append(
                {
                    "kind": kind,
                    "name": name,
                    "package": source.package if source else None,
                    "version": source.version if source else None,
                }
            )
        return used

    # -- stage: generate --------------------------------------------------------------------

    def _teacher(self, **overrides: Any) -> Teacher:
        teacher_cfg = self.cfg.teacher.model_copy(update=overrides) if overrides else self.cfg.teacher
        return self.host.get(Teacher, self.cfg.teacher.backend)(teacher_cfg)

    def _generation_requests(self) -> tuple[list[TeacherRequest], dict[str, str], LoadedSplit]:
        train = self.split("train")
        assert train is not None  # data.train is required by the config model
        few_shot: list[Example] = []
        if self.task.config.few_shot:
            few_shot = [e for e in train.examples if e.reference is not None][: self.task.config.few_shot]
        shot_ids = {e.id for e in few_shot}
        requests, split_of = [], {}
        if (scored := self._eval_split_name()) is not None:
            self.split(scored)  # a test file without references fails now, not after training
        for name in ("train", "validation"):
            loaded = self.split(name)
            if loaded is None:
                continue
            for example in loaded.examples:
                if example.id in shot_ids:
                    continue  # its gold answer is in every prompt: training on it would leak
                requests.append(TeacherRequest(example.id, self.task.teacher_messages(example, few_shot)))
                split_of[example.id] = name
        return requests, split_of, train

    def dry_run(self) -> dict[str, Any]:
        requests, _, train = self._generation_requests()
        require_training_rows(train, self._curation or [])
        teacher = self._teacher()
        warnings = []
        try:
            teacher.check()
        except StillhouseError as exc:  # a dry run estimates offline: a missing key is a warning here
            warnings.append(exc.what + (f" ({exc.hint})" if exc.hint else ""))
        done = self._answered_ids()
        pending = [r for r in requests if r.sample_id not in done]
        if self.loaded.teachers:  # every teacher of the list, summed
            from stillhouse.kernel import teacher_ensemble

            estimate = teacher_ensemble.estimate(self, pending)
        else:
            estimate = teacher.estimate(pending, self.cache_dir)
        summary = {
            "requests": len(requests),
            "already_answered": len(requests) - len(pending),
            **asdict(estimate),
            "warnings": warnings,
            "curation": [describe(report) for report in self._curation or []],
        }
        if self.on_event:
            self.on_event({"type": "dry_run", **summary})
        return summary

    @property
    def cache_dir(self) -> Path:
        return stillhouse_home() / "cache" / "teacher"

    def _answered_ids(self) -> set[str]:
        return {sid for sid, r in self.run.folder.latest_teacher_results().items() if r.ok}

    def stage_generate(self) -> dict[str, Any]:
        requests, split_of, train = self._generation_requests()
        for report in self._curation or []:
            self.emit("curation", **report)
        if self.loaded.teachers:  # [[teachers]]: each through its own engine, combined by the filter
            from stillhouse.kernel import teacher_ensemble

            require_training_rows(train, self._curation or [])
            summary = teacher_ensemble.generate(self, requests, split_of)
            return {**summary, "curation": curation_counts(self._curation or [])}
        budget = self.cfg.teacher.budget_usd if isinstance(self.cfg.teacher, CallTeacherConfig) else None
        if budget is not None:  # a resumed run may spend only what earlier attempts left
            spent = sum(r.cost_usd or 0.0 for r in self.run.folder.teacher_results() if not r.cache_hit)
            teacher = self._teacher(budget_usd=max(0.0, budget - spent))
        else:
            teacher = self._teacher()
        teacher.check()
        require_training_rows(train, self._curation or [])
        done = self._answered_ids()
        pending = [r for r in requests if r.sample_id not in done]
        total, counts = len(requests), Counter[str]()
        tokens = Counter[str]()
        cost = 0.0
        progress_every = max(1, total // 100)

        def on_result(result: TeacherResult) -> None:
            nonlocal cost
            split = split_of.get(result.sample_id, "")
            self.run.folder.append_teacher_result(result, split)
            self.emit("teacher_call", **teacher_call_fields(result, split))
            counts["ok" if result.ok else "failed"] += 1
            counts["cache_hits"] += int(result.cache_hit)
            tokens["prompt"] += result.prompt_tokens
            tokens["completion"] += result.completion_tokens
            cost += result.cost_usd or 0.0
            finished = len(done) + counts["ok"] + counts["failed"]
            if finished % progress_every == 0 or finished == total:
                self.emit("progress", stage="generate", done=finished, total=total)

        try:
            if pending:
                teacher.generate(pending, on_result, cache_dir=self.cache_dir, should_stop=self.should_stop)
        finally:
            teacher.close()
        failed = total - len(self._answered_ids() & {r.sample_id for r in requests})
        summary = {
            "requests": total,
            "answered": total - failed,
            "failed": failed,
            "reused_from_earlier_attempts": len(done),
            "calls": counts["ok"] + counts["failed"],
            "cache_hits": counts["cache_hits"],
            "prompt_tokens": tokens["prompt"],
            "completion_tokens": tokens["completion"],
            "cost_usd": round(cost, 6),
            # failed samples are retried when the run is resumed
            "incomplete": failed > 0,
            "curation": curation_counts(self._curation or []),
        }
        return summary

    # -- stage: filter ----------------------------------------------------------------------

    def stage_filter(self) -> dict[str, Any]:
        from stillhouse.kernel import teacher_ensemble

        results = self.run.folder.latest_teacher_results()
        combiner = teacher_ensemble.Combiner(self) if self.loaded.teachers else None
        if not (combiner.has_results() if combiner else results):
            raise StageError("no teacher outputs to filter", hint="run the generate stage first")
        task = self.task
        records: list[SampleRecord] = []
        min_agreement = task.config.min_agreement
        examples = {n: loaded.examples for n in ("train", "validation") if (loaded := self.split(n)) is not None}
        if combiner is not None:
            combiner.prepare([e for split in examples.values() for e in split])
        for example in (e for split in examples.values() for e in split):
            if combiner is not None:
                combined = combiner.record(example)
                if combined is not None:  # None: a few-shot example, never sent to the teachers
                    records.append(combined)
            elif (result := results.get(example.id)) is not None:
                records.append(self._judge(task, example, result, min_agreement))
        judged = None
        if self.loaded.judge is not None:  # judge = {...}: score each accepted answer, apply the threshold
            by_id = {e.id: e for split in examples.values() for e in split}
            judged = teacher_ensemble.Judge(self).apply(records, by_id)
            judged["mode"] = self.loaded.judge.options.mode
            judged["self_preference"] = self._warn_self_preference(self.loaded.judge)
        self.run.folder.write_samples(records)
        accepted = sum(1 for r in records if r["accepted"])
        reasons = Counter(r["reason"] for r in records)
        by_split: dict[str, Counter] = {}
        for r in records:
            by_split.setdefault(r["split"], Counter())["accepted" if r["accepted"] else "rejected"] += 1
        summary = {
            "total": len(records),
            "accepted": accepted,
            "rejected": len(records) - accepted,
            "reasons": dict(reasons.most_common()),
            "by_split": {k: dict(v) for k, v in by_split.items()},
        }
        if combiner is not None:
            summary["teachers"] = teacher_ensemble.acceptance_by_teacher(records)
        if judged is not None:
            summary["judge"] = judged
        self._check_acceptance([r for r in records if r["split"] == "train"])
        return summary

    def _warn_self_preference(self, judge: JudgeSpec) -> list[str]:
        """The teachers whose model is the judge's, said as a warning (terminal and event): a model
        tends to score its own answers higher."""
        from stillhouse.kernel import teacher_ensemble

        named = [(t.name, t.config) for t in self.loaded.teachers]
        if not named and self.cfg.teacher is not None:
            named = [("teacher", self.cfg.teacher)]
        same = teacher_ensemble.self_preference(judge, named)
        if same:
            self.emit(
                "log",
                level="warning",
                message=f"the judge's model {judge.config.model} is also the model of teacher {', '.join(same)}: "
                "a model tends to prefer its own answers (self-preference bias); use a judge of another model where one "
                "is available",
            )
        return same

    def _check_acceptance(self, train_records: list[SampleRecord]) -> None:
        """Stop here when no training sample survived (training would fail minutes later with
        less to go on); warn when few did. Both name the top reasons, an example of each and what
        to change."""
        total = len(train_records)
        accepted = sum(1 for r in train_records if r["accepted"])
        if total == 0 or accepted / total >= LOW_ACCEPTANCE:
            return
        rejected = [r for r in train_records if not r["accepted"]]
        top = Counter(r["reason"] for r in rejected).most_common(3)
        details = []
        for reason, count in top:
            example = next(r for r in rejected if r["reason"] == reason)
            text = " ".join(str(example.get("teacher_output") or example.get("detail") or "").split())
            text = text if len(text) <= 160 else text[:160] + "..."
            measured = f" ({example['detail']})" if example.get("detail") not in (None, reason) and example.get("teacher_output") else ""
            details.append(f'{reason} ({count} of {total}), e.g. {example["sample_id"]}{measured}: "{text}"')
        fixes = list(dict.fromkeys(self._fix_for(reason) for reason, _ in top))
        if accepted == 0:
            raise StageError(
                f"the filter accepted no training samples (0 of {total}), so there is nothing to train on",
                details=[*details, *(f"try: {fix}" for fix in fixes)],
                hint=f"all samples and reasons are in {self.run.folder.samples_path}; after a change to task_options or a "
                "filter plugin, `still run CONFIG --resume RUN_ID` filters again; a teacher change needs a new run "
                "(unchanged prompts come from the cache)",
            )
        self.emit(
            "log",
            level="warning",
            message=f"low acceptance: the filter accepted {accepted} of {total} training samples "
            f"({accepted / total:.0%}); top reasons: " + "; ".join(details) + ". Try: " + " | ".join(fixes),
        )

    def _fix_for(self, reason: str) -> str:
        """What a user can change against a reject reason."""
        teacher, options = self.cfg.teacher, self.task.config
        if reason == "truncated":
            fix = f"raise teacher.max_tokens (now {teacher.max_tokens})"
            return fix + (
                " or set task_options.ask_rationale = false (shorter answers)" if options.ask_rationale else ""
            )
        if reason == "teacher_error":
            return "check teacher.model, api_base and the key; failed calls are retried by --resume"
        if reason == "low_agreement":
            return f"lower task_options.min_agreement (now {options.min_agreement}) or raise teacher.samples"
        if reason == "teachers_disagree":
            return f"lower ensemble.min_agreement (now {self.loaded.ensemble.min_agreement}) or drop the weakest teacher"
        if reason.startswith("judge_"):
            judge = self.loaded.judge
            return f"lower judge.threshold (now {judge.options.threshold if judge else None}) or check judge.rubric"
        if "mismatch" in reason:
            return "the teacher's answers disagree with the references: use a stronger teacher or task_options.few_shot = 3"
        if reason == "missing_rationale":
            return 'set task_options.rationale = "drop" (train on the answer alone) or raise teacher.max_tokens'
        if reason not in PARSE_REASONS:
            return f"the teacher's answers fail the task's check ({reason}): use a stronger teacher or few_shot demos"
        parts = ["the teacher does not answer in the format the task parses:"]
        if options.ask_rationale:
            parts.append("set task_options.ask_rationale = false,")
        parts.append(
            f"add worked examples (task_options.few_shot = 3, now {options.few_shot}) or use a stronger teacher"
        )
        return " ".join(parts)

    def _judge(self, task: TaskType, example: Example, result: TeacherResult, min_agreement: float) -> SampleRecord:
        completions = result.completions
        texts = [c.text for c in completions]
        parsed: Parsed | None = None
        confidence = None
        checked: str | None = None  # the verdict's measured-vs-limit detail
        if result.error or not completions:
            reason = "teacher_error"
            accepted = False
        else:
            parsed_all = [task.parse(t) for t in texts]
            parsed, confidence = task.aggregate(parsed_all)
            if not parsed.ok:
                accepted = False
                truncated = all(c.finish_reason == "length" for c in completions)
                # a task's short reason code (no_number, ambiguous_label ...) says more than "unparseable"
                code = parsed.error if parsed.error and REASON_CODE.fullmatch(parsed.error) else None
                reason = "truncated" if truncated else (code or "unparseable")
            elif len(parsed_all) > 1 and confidence < min_agreement:
                accepted, reason = False, "low_agreement"
            else:
                verdict = task.verify(example, parsed)
                override = self.host.hook.filter_sample(example=example, parsed=parsed, verdict=verdict, task=task)
                verdict = override or verdict
                accepted, reason, checked = verdict.accepted, verdict.reason, verdict.detail
                confidence = verdict.confidence if verdict.confidence is not None else confidence
        targets = task.student_targets(example, parsed) if accepted and parsed is not None else []
        return {
            "sample_id": example.id,
            "split": example.split,
            "accepted": accepted,
            "reason": reason if not accepted else "ok",
            "detail": result.error
            if reason == "teacher_error"
            else (parsed.error if parsed and not parsed.ok else checked),
            "finish_reason": completions[0].finish_reason if completions else None,
            "confidence": confidence,
            "prompt": task.student_messages(example),
            "teacher_output": texts[0] if texts else None,
            "parsed_answer": parsed.answer if parsed else None,
            "rationale": parsed.rationale if parsed else None,
            "reference": example.reference,
            "targets": [asdict(t) for t in targets],
            "source": example.source,
        }

    # -- stage: train -----------------------------------------------------------------------

    def _pairs(self, split: str) -> list[TrainPair]:
        pairs: list[TrainPair] = []
        for record in self.run.folder.samples():
            if record.get("split") == split and record.get("accepted"):
                pairs.extend(TrainPair(**t) for t in record.get("targets", []))
        return pairs

    def stage_train(self) -> dict[str, Any]:
        if not self.run.folder.samples_path.exists():
            raise StageError("no filtered samples to train on", hint="run the filter stage first")
        train_pairs, balance = balance_training(
            self._pairs("train"), self.cfg.data, self.task, self.run.folder.samples(), self.split("train"), seed=self.cfg.train.seed
        )
        if balance is not None:
            self.emit("curation", **balance)
        if not train_pairs:
            raise StageError(
                "the filter accepted no training samples, so there is nothing to train on",
                hint="see the filter stage's reasons (still runs show RUN_ID), loosen the task options or use a stronger teacher",
            )
        loss_cls = self.host.get(Loss, self.cfg.train.loss)
        loss = loss_cls(loss_cls.Config.model_validate(self.cfg.train.loss_options))
        trainer = self.host.get(StudentTrainer, self.cfg.student.trainer)(self.cfg.student)
        job = TrainJob(
            run_dir=self.run.dir,
            output_dir=self.run.folder.student,
            checkpoint_dir=self.run.folder.checkpoints,
            train=train_pairs,
            validation=self._pairs("validation"),
            student=self.cfg.student,
            train_config=self.cfg.train,
            loss=loss,
            teacher=self.cfg.teacher,
            emit=self._emit_from_plugin,
            resume=self.run.folder.checkpoints.exists() and not self.upstream_changed,
            should_stop=self.should_stop,
            teachers=list(self.loaded.teachers),
        )
        if not job.resume and job.checkpoint_dir.exists():
            shutil.rmtree(job.checkpoint_dir)  # checkpoints of a training on older samples
        outcome = trainer.train(job)
        if self.should_stop():
            raise StopRequested
        self._artifact("student", outcome.model_dir)
        self._drop_resume_state(job.checkpoint_dir)
        summary = {
            "steps": outcome.steps,
            "train_pairs": len(train_pairs),
            "validation_pairs": len(job.validation),
            **outcome.summary,
        }
        if balance is not None:
            summary["balance"] = balance_summary(balance)
        return summary

    def _drop_resume_state(self, checkpoint_dir: Path) -> None:
        """Training finished: nothing will resume it, so its optimizer state only fills the disk."""
        from stillhouse.kernel.housekeeping import drop_resume_state, human_bytes

        if is_main_process() and (freed := drop_resume_state(checkpoint_dir)):
            self.emit(
                "log",
                level="info",
                message=f"removed {human_bytes(freed)} of optimizer state from checkpoints (training finished)",
            )

    def _emit_from_plugin(self, event: dict[str, Any]) -> None:
        payload = dict(event)
        type_ = payload.pop("type", "log")
        self.emit(type_, **payload)

    def _artifact(self, name: str, path: Path) -> None:
        path = Path(path)
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
        try:
            rel = str(path.relative_to(self.run.dir))
        except ValueError:
            rel = str(path)
        self.emit("artifact", name=name, path=rel, bytes=size)

    # -- stage: evaluate --------------------------------------------------------------------

    def eval_split(self) -> LoadedSplit:
        wanted = self.cfg.evaluate.split
        for name in (wanted, "test", "validation"):
            if name in ("test", "validation") and self.loaded.data_path(name) is not None:
                loaded = self.split(name)
                assert loaded is not None
                return loaded
        raise StageError(
            "no evaluation split: the config has neither data.test nor data.validation",
            hint="add data.test (held-out rows); metrics are never computed on training samples",
        )

    def eval_examples(self) -> list[Example]:
        """The rows the evaluate stage scores: the evaluation split, up to ``evaluate.limit``."""
        split = self.eval_split()
        examples = split.examples[: self.cfg.evaluate.limit] if self.cfg.evaluate.limit else split.examples
        if not examples:
            raise StageError(f"the {split.split} split has no rows to evaluate")
        return examples

    def stage_evaluate(self) -> dict[str, Any]:
        from stillhouse.kernel.evaluation import evaluate_role, time_roles
        from stillhouse.kernel.timing import TIMING_METRICS

        split = self.eval_split()
        examples = self.eval_examples()
        folder = self.run.folder
        out_dir = folder.eval_dir
        reuse = folder.results_path.exists() and not self.upstream_changed
        results = folder.read_results() if reuse else {}
        summary: dict[str, Any] = {"split": split.split, "n": len(examples), "roles": {}}
        timing = self.cfg.evaluate.timing
        kept: dict[str, Any] = {}  # role -> ChatModel, kept loaded for the interleaved timing phase
        try:
            # Quality pass: each role answers greedily and is scored by the evaluators.
            for role in self.cfg.evaluate.roles:
                if role in results:  # resumed: this role was measured before the interruption
                    summary["roles"][role] = "reused"
                    continue
                if self.should_stop():
                    raise StopRequested
                model, name, info = self._eval_model(role)
                try:
                    metrics = evaluate_role(
                        role,
                        name,
                        model,
                        self.task,
                        examples,
                        self.cfg.evaluate,
                        self.host,
                        out_dir,
                        info=info,
                        emit=self.emit,
                    )
                finally:
                    if timing.enabled and role != "teacher":
                        kept[role] = model
                    else:
                        model.close()
                results[role] = {"model": name, "info": info, "metrics": [asdict(m) for m in metrics]}
                folder.write_results(results)
                summary["roles"][role] = {m.name: m.value for m in metrics if m.name == self.task.primary_metric}
            # Timing phase: all roles loaded at once, timed interleaved (kernel.timing).
            untimed = [
                r
                for r in self.cfg.evaluate.roles
                if "decode_ms_per_token" not in {m["name"] for m in results[r]["metrics"]}
            ]
            if timing.enabled and untimed:
                if self.should_stop():
                    raise StopRequested
                api_teacher = not self.cfg.teacher.model.startswith("hf/")
                roles = [r for r in self.cfg.evaluate.roles if r != "teacher" or not api_teacher or timing.api]
                for role in roles:
                    if role not in kept:
                        kept[role] = self._timing_model(role)
                prompts = [self.task.student_messages(e) for e in examples[: timing.prompts]]
                timed = time_roles({r: kept[r] for r in roles}, prompts, timing, emit=self.emit)
                if "teacher" in self.cfg.evaluate.roles and "teacher" not in roles:
                    why = "not timed: API teacher (set evaluate.timing.api = true to pay for timed calls)"
                    timed["teacher"] = [Metric(n, None, reason=why, higher_is_better=False) for n in TIMING_METRICS]
                for timed_role, metrics in timed.items():
                    names = {m.name for m in metrics}
                    kept_metrics = [m for m in results[timed_role]["metrics"] if m["name"] not in names]
                    results[timed_role]["metrics"] = kept_metrics + [asdict(m) for m in metrics]
                folder.write_results(results)
        finally:
            for model in kept.values():
                model.close()
        return summary

    def _eval_model(self, role: str) -> tuple[Any, str, dict[str, Any]]:
        """(ChatModel, name, info) of an evaluation role."""
        from stillhouse.kernel.evaluation import student_model, teacher_model

        if role == "teacher":
            evaluated = self._teacher(temperature=0.0, samples=1, max_tokens=self.cfg.evaluate.max_new_tokens)
            return teacher_model(evaluated)
        if role == "baseline":
            return student_model(self.host, self.cfg.student, None)
        if role == "student":
            student_dir = self.run.folder.student
            if not student_dir.exists():
                raise StageError("no trained student to evaluate", hint="run the train stage first")
            return student_model(self.host, self.cfg.student, student_dir)
        raise ConfigError(f"unknown evaluation role '{role}'", hint="roles are teacher, baseline, student")

    def _timing_model(self, role: str) -> Any:
        """The ChatModel to time: a local ``hf/`` teacher loaded in-process like a student (so its
        length can be forced and its first token seen), else the role's evaluation model."""
        from stillhouse.kernel.evaluation import chat_model_for

        if role == "teacher" and self.cfg.teacher.model.startswith("hf/"):
            return chat_model_for(self.host, self.cfg.teacher.model)[0]
        return self._eval_model(role)[0]

    # -- stage: report ----------------------------------------------------------------------

    def stage_report(self) -> dict[str, Any]:
        state = self.run.state()
        finished = state.finished_stages()
        report = ReportInput(
            run_id=self.run.id,
            run_dir=self.run.dir,
            config=self.loaded.to_dict(),
            results=self.run.folder.read_metrics(),
            primary_metric=self.task.primary_metric,
            training_curve=[(p.step or 0, p.value) for p in state.metrics.get("train/loss", [])],
            filter_summary=finished.get("filter", {}),
            teacher_summary=finished.get("generate", {}),
        )
        written = []
        for name in self.cfg.report.reporters:
            reporter = self.host.get(Reporter, name)()
            for path in reporter.write(report):
                self._artifact(f"report:{Path(path).name}", Path(path))
                written.append(str(path))
        written += map(
            str,
            run_trackers(
                self.host, self.cfg.report, report, lambda msg: self.emit("log", level="warning", message=msg)
            ),
        )
        return {"files": written}
