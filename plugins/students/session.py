"""One training run of the ``hf`` student trainer, from a TrainJob to a saved Hugging Face folder.

Order matters for failing fast: configuration checks, then tokenizers (a vocabulary mismatch with
the teacher is reported before any model is loaded), then teacher signals, then the student.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stillhouse.kernel.distributed import is_main_process, world_size
from stillhouse.kernel.errors import ConfigError, DataError, Location, ModelError
from stillhouse.kernel.interfaces import TrainJob, TrainOutcome
from stillhouse.plugins.students.config import HfStudentConfig, as_hf_train
from stillhouse.plugins.students.data import EncodeReport, TokenizedSample, encode_pairs
from stillhouse.plugins.students.ensemble_store import ensemble_store, local_teachers
from stillhouse.plugins.students.on_policy_config import OnPolicyConfig
from stillhouse.plugins.students.teacher import SIGNALS, local_teacher_spec

METADATA_FILE = "stillhouse_student.json"


@contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """No transformers tqdm bars (checkpoint writing) while training: the CLI draws its own progress."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def complete_checkpoints(checkpoint_dir: Path) -> tuple[list[Path], list[Path]]:
    """(complete, incomplete) ``checkpoint-N`` folders, oldest first. The Trainer writes
    ``trainer_state.json`` last, so a folder without it was cut short by a kill."""
    if not checkpoint_dir.exists():
        return [], []
    found = sorted(
        (p for p in checkpoint_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    complete = [p for p in found if (p / "trainer_state.json").exists()]
    return complete, [p for p in found if p not in complete]


def unmark_dequantized_gguf(model: Any, spec: str, *, lora: bool) -> None:
    """A GGUF student loads dequantised into ordinary float weights, but transformers keeps its GGUF
    quantizer attached, and the Trainer refuses to train "quantized" models. Drop the marker (and
    the quantization_config that would otherwise be saved with the student) when every weight is a
    plain float tensor; refuse clearly when they really are quantized."""
    import torch

    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is None:
        return
    if str(getattr(quantizer.quantization_config, "quant_method", "")).lower().endswith("gguf") and all(
        type(p) is torch.nn.Parameter and p.is_floating_point() for p in model.parameters()
    ):
        quantizer.remove_quantization_config(model)
        return
    if lora:
        return  # adapters train on top of quantized weights
    raise ModelError(
        f"'{spec}' is loaded with quantized weights, which cannot be fine-tuned directly",
        where=Location(field="student.model"),
        hint="train a LoRA adapter on it ([student.lora]) or start from unquantized weights",
    )


class TrainingSession:
    def __init__(self, config: HfStudentConfig, job: TrainJob) -> None:
        self.config = config
        self.job = job
        self.tc = as_hf_train(job.train_config)
        self.loss = job.loss
        self.summary: dict[str, Any] = {}
        self.is_main = is_main_process()
        self.on_policy: OnPolicyConfig | None = getattr(job.train_config, "on_policy", None)
        self.batcher: Any = None  # the OnPolicyBatcher, once the teacher is loaded
        self.activations: Any = None  # the ActivationStore of hidden/attention losses (teacher_activations = "store")

    # -- checks ------------------------------------------------------------------------------

    def signals_needed(self) -> set[str]:
        requires = set(self.loss.requires)
        unknown = requires - SIGNALS
        if unknown:
            raise ConfigError(
                f"loss '{self.loss.name}' requires {sorted(unknown)}, which the hf trainer cannot provide",
                where=Location(field="train.loss"),
                hint=f"the hf trainer provides {sorted(SIGNALS)}",
            )
        return set(self.loss.signals_needed())

    def check_job(self) -> None:
        tc = self.tc
        if tc.early_stopping_patience and not self.job.validation:
            raise ConfigError(
                "train.early_stopping_patience needs validation samples to watch",
                where=Location(field="train.early_stopping_patience"),
                hint="add data.validation, or remove early_stopping_patience",
            )
        if self.job.validation and tc.eval_steps and tc.save_steps and tc.save_steps % tc.eval_steps:
            raise ConfigError(
                f"train.save_steps ({tc.save_steps}) must be a multiple of train.eval_steps ({tc.eval_steps})",
                where=Location(field="train.save_steps"),
                hint="the best checkpoint is chosen among evaluated ones",
            )
        if "teacher_hidden" in self.signals_needed() and local_teacher_spec(self.job.teacher) is None:
            raise ConfigError(
                f"loss '{self.loss.name}' needs the teacher's hidden states, so the teacher must be a local model",
                where=Location(field="teacher.model"),
                hint='use teacher.model = "hf/<folder or hub id>", or a token-level loss such as forward_kl, or sft',
            )
        if self.on_policy is not None:
            from stillhouse.plugins.students.on_policy_checks import check_on_policy

            check_on_policy(self.on_policy, self.job.teacher, self.loss, self.signals_needed())
        if self.config.init == "teacher-layers" and not self.config.layers:
            from stillhouse.plugins.students.layers import check_layers

            check_layers(self.config.layers, 0, self.source_spec())

    def source_spec(self) -> str:
        """The model the student starts from (for teacher-layers: the teacher when it is local)."""
        if self.config.init == "teacher-layers":
            return local_teacher_spec(self.job.teacher) or self.config.model
        return self.config.model

    # -- steps -------------------------------------------------------------------------------

    def training_args(self) -> Any:
        import torch
        from transformers import TrainingArguments

        tc, cfg = self.tc, self.config
        has_val = bool(self.job.validation)
        eval_steps = tc.eval_steps or (tc.save_steps if has_val else None)
        eval_strategy = "no" if not has_val else ("steps" if eval_steps else "epoch")
        if has_val:
            save_strategy, save_steps = eval_strategy, (tc.save_steps or eval_steps)
        else:
            save_strategy, save_steps = ("steps" if tc.save_steps else "epoch"), tc.save_steps
        use_cpu = cfg.device == "cpu" or not torch.cuda.is_available()
        bf16 = tc.bf16 if isinstance(tc.bf16, bool) else (not use_cpu and torch.cuda.is_bf16_supported())
        distributed = world_size() > 1
        kwargs: dict[str, Any] = {}
        if save_steps:
            kwargs["save_steps"] = save_steps
        if eval_strategy == "steps":
            kwargs["eval_steps"] = eval_steps
        return TrainingArguments(
            output_dir=str(self.job.checkpoint_dir),
            per_device_train_batch_size=tc.batch_size,
            per_device_eval_batch_size=tc.batch_size,
            gradient_accumulation_steps=tc.gradient_accumulation_steps,
            num_train_epochs=tc.num_epochs,
            max_steps=tc.max_steps or -1,
            learning_rate=tc.learning_rate,
            warmup_steps=tc.warmup_ratio,
            weight_decay=tc.weight_decay,
            lr_scheduler_type=tc.lr_scheduler,
            seed=tc.seed,
            logging_strategy="steps",
            logging_steps=tc.logging_steps,
            eval_strategy=eval_strategy,
            save_strategy=save_strategy,
            save_total_limit=cfg.save_total_limit,
            load_best_model_at_end=has_val,
            metric_for_best_model="eval_loss" if has_val else None,
            greater_is_better=False if has_val else None,
            prediction_loss_only=True,
            remove_unused_columns=False,
            label_names=["target_ids"],
            # Length grouping saves padding in padded batches; packed batches pack best from a mix
            # of lengths, so with packing the order stays random.
            train_sampling_strategy="group_by_length" if tc.group_by_length and not tc.packing else "random",
            bf16=bool(bf16),
            use_cpu=use_cpu,
            ddp_backend=cfg.ddp_backend or (("gloo" if use_cpu else "nccl") if distributed else None),
            ddp_find_unused_parameters=False,  # every parameter (incl. a loss projection) gets a gradient
            activation_checkpointing=cfg.gradient_checkpointing,
            report_to="none",
            disable_tqdm=True,
            dataloader_num_workers=0,
            **kwargs,
        )

    def encode(self, tokenizer: Any) -> tuple[list[TokenizedSample], list[TokenizedSample]]:
        train, train_report = encode_pairs(tokenizer, self.job.train, self.config.max_length)
        validation, val_report = encode_pairs(tokenizer, self.job.validation, self.config.max_length)
        self.summary["samples"] = {"train": train_report.as_dict(), "validation": val_report.as_dict()}
        for split, report in (("train", train_report), ("validation", val_report)):
            self._log_encoding(split, report)
        if not train:
            raise DataError(
                f"none of the {len(self.job.train)} training pairs fits student.max_length = {self.config.max_length}",
                where=Location(field="student.max_length"),
                hint=f"dropped: {train_report.dropped}; raise student.max_length or shorten the prompts",
            )
        return train, validation

    def _log_encoding(self, split: str, report: EncodeReport) -> None:
        if report.truncated or report.dropped:
            self._emit_log(
                f"{split}: {report.truncated} answers cut at student.max_length={self.config.max_length}; "
                f"dropped {report.dropped or 'none'}",
                "warning",
            )

    def teacher_store(self, args: Any, samples: list[TokenizedSample], tokenizer: Any) -> Any:
        """Open or build the top-k store (once, on the main process first; the others then read it)."""
        from stillhouse.plugins.students.teacher_store import model_fill, open_store, write_store

        job, k = self.job, self.tc.top_k
        assert job.teacher is not None
        teacher_name = job.teacher.model
        with args.main_process_first(desc="teacher top-k store"):
            cross = getattr(self.loss, "cross_tokenizer", False)
            if cross:  # aligned by characters, not ids: never shared with the same-vocabulary losses
                teacher_name += " (cross-tokenizer)"
            several = [] if cross else local_teachers(job.teachers)
            if len(several) >= 2:  # [[teachers]]: the local teachers' top-k combined by weight
                return ensemble_store(
                    job.run_dir,
                    samples,
                    several,
                    tokenizer,
                    k=k,
                    batch_tokens=self.config.teacher_batch_tokens,
                    log=self._emit_log,
                )
            store = open_store(job.run_dir, samples, teacher=teacher_name, k=k)
            if store is not None:
                self._emit_log(f"teacher top-k store reused: {store.meta.positions} positions, k={k}")
                return store
            if cross:
                from stillhouse.plugins.students.cross_tokenizer import cross_fill

                fill, source = cross_fill(job, tokenizer, k=k, loss=self.loss.name), "cross"
            elif local_teacher_spec(job.teacher) is None:
                from stillhouse.plugins.students.api_logprobs import api_fill

                fill = api_fill(job.run_dir, tokenizer, k=k, loss=self.loss.name, teacher=teacher_name)
                source = "api"
            else:
                from stillhouse.plugins.students.teacher import load_teacher

                self._emit_log(f"computing teacher top-{k} log-probs over {len(samples)} samples (once)")
                model, _ = load_teacher(job.teacher)
                fill = model_fill(
                    model,
                    pad_id=tokenizer.pad_token_id,
                    k=k,
                    vocab_size=len(tokenizer),
                    batch_tokens=self.config.teacher_batch_tokens,
                )
                source = "model"
            store = write_store(
                job.run_dir, samples, fill, teacher=teacher_name, k=k, vocab_size=len(tokenizer), source=source
            )
            if store.meta.coverage == 0:
                raise ModelError(
                    f"the teacher's log-probs map onto none of the student's target tokens (loss '{self.loss.name}')",
                    where=Location(field="train.loss"),
                    hint='use train.loss = "uld" (cross-tokenizer), "sft", or a teacher that shares the student\'s '
                    "tokenizer",
                )
            return store

    def _emit_log(self, message: str, level: str = "info") -> None:
        if self.is_main:  # under torchrun every process runs this session; one reports
            self.job.emit({"type": "log", "level": level, "message": message})

    def load_student(self, tokenizer: Any) -> Any:
        from stillhouse.plugins.hf_models import load_causal_lm

        cfg = self.config
        dtype = "float32" if cfg.dtype == "auto" else cfg.dtype  # mixed precision keeps fp32 master weights
        spec = self.source_spec()
        model, _ = load_causal_lm(spec, dtype=dtype, device="cpu")
        unmark_dequantized_gguf(model, spec, lora=cfg.lora is not None)
        if cfg.init == "teacher-layers":
            from stillhouse.plugins.students.layers import build_from_layers

            model = build_from_layers(model, cfg.layers or [], spec)
        model.set_attn_implementation(cfg.attn_implementation)
        model.config.use_cache = False
        if model.generation_config.pad_token_id is None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id
        return model

    def add_lora(self, model: Any) -> Any:
        from peft import LoraConfig, get_peft_model

        lora = self.config.lora
        assert lora is not None
        peft_config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=lora.target_modules,
            task_type="CAUSAL_LM",
        )
        model = get_peft_model(model, peft_config)
        if self.config.gradient_checkpointing:
            model.enable_input_require_grads()
        return model

    def resume_from(self, is_main: bool) -> str | None:
        complete, incomplete = complete_checkpoints(self.job.checkpoint_dir)
        if not self.job.resume:
            return None
        if is_main:
            for path in incomplete:  # cut short by a kill while saving
                shutil.rmtree(path, ignore_errors=True)
        return str(complete[-1]) if complete else None

    def save_dtype(self, model: Any, *, mixed_bf16: bool) -> str:
        """The dtype the final student is saved in: ``student.save_dtype``, or for auto the dtype it
        was trained in (bf16 mixed precision or a bf16/fp16 load; else the weights' own dtype)."""
        cfg = self.config
        if cfg.save_dtype != "auto":
            return cfg.save_dtype
        if mixed_bf16 or cfg.dtype == "bfloat16":
            return "bfloat16"
        if cfg.dtype == "float16":
            return "float16"
        return str(model.dtype).removeprefix("torch.")

    def export(self, trainer: Any, tokenizer: Any) -> Path:
        """Write the final student (merged LoRA, no training-only modules) in Hugging Face format."""
        out = self.job.output_dir
        model = trainer.accelerator.unwrap_model(trainer.model)
        lora = self.config.lora
        if lora is not None and lora.merge:
            model = model.merge_and_unload()
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        if hasattr(base, "distill_projection"):
            del base.distill_projection
        save_dtype = self.save_dtype(model, mixed_bf16=bool(trainer.args.bf16))
        if trainer.is_world_process_zero():
            import torch

            shutil.rmtree(out, ignore_errors=True)
            out.mkdir(parents=True)
            model.config.use_cache = True
            # training is over: cast in place (save_pretrained writes the config's dtype from the weights)
            model.to(getattr(torch, save_dtype))
            model.save_pretrained(out)
            tokenizer.save_pretrained(out)
            meta = {
                "base_model": self.source_spec(),
                "init": self.config.init,
                "layers": self.config.layers,
                "loss": self.loss.name,
                "loss_options": self.loss.config.model_dump(mode="json"),
                "lora": lora.model_dump() if lora else None,
                "steps": trainer.state.global_step,
                "dtype": save_dtype,
            }
            (out / METADATA_FILE).write_text(json.dumps(meta, indent=2))
        trainer.accelerator.wait_for_everyone()
        return out

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> TrainOutcome:
        from stillhouse.plugins.hf_models import load_tokenizer

        job, tc = self.job, self.tc
        self.check_job()
        args = self.training_args()  # sets up the process group under torchrun / accelerate launch
        tokenizer = load_tokenizer(self.source_spec(), chat_template=self.config.chat_template)
        signals = self.signals_needed()
        teacher_spec = local_teacher_spec(job.teacher)
        cross = getattr(self.loss, "cross_tokenizer", False)
        several = local_teachers(job.teachers)
        if signals and teacher_spec is not None and not cross:
            from stillhouse.plugins.students.teacher import require_shared_vocab

            checked = [t.config for t in several] or ([job.teacher] if job.teacher else [])
            for config in checked:  # with [[teachers]], every local one: their top-k are combined
                require_shared_vocab(
                    tokenizer,
                    load_tokenizer(local_teacher_spec(config) or teacher_spec),
                    loss=self.loss.name,
                    teacher=config.model,
                    student=self.source_spec(),
                )
        elif signals and job.teacher is None:
            raise ConfigError(
                f"loss '{self.loss.name}' needs a teacher",
                where=Location(field="train.loss"),
                hint='use train.loss = "sft"',
            )
        train, validation = self.encode(tokenizer)
        live_topk = (
            "teacher_logprobs" in signals
            and self.config.teacher_signals == "live"
            and teacher_spec is not None
            and not cross
            and len(several) < 2  # several teachers' top-k are combined once, into the store
        )
        store = None
        if "teacher_logprobs" in signals and not live_topk:
            store = self.teacher_store(args, train + validation, tokenizer)
            self.summary["teacher_topk"] = {
                "k": store.k,
                "positions": store.meta.positions,
                "bytes_per_token": round(store.bytes_per_token(), 1),
                "source": store.meta.source,
                "coverage": round(store.meta.coverage, 4),
            }
            if store.meta.source == "ensemble":
                self.summary["teacher_topk"]["teachers"] = {t.name: t.weight for t in several}
        live, teacher_blocks = None, 0
        from transformers import set_seed

        # what is initialised before the Trainer seeds (LoRA adapters, hidden-loss projections,
        # teacher-layer students) is drawn from this seed too, so the same config trains the same
        # student (unseeded, the first run in a process differed from the next: seen in the
        # activation-store test)
        set_seed(tc.seed)
        model = self.load_student(tokenizer)
        if live_topk or "teacher_hidden" in signals:
            from stillhouse.plugins.students.teacher import LiveTeacher, load_teacher

            assert job.teacher is not None
            live = LiveTeacher(  # the only reference to the teacher model: release_teacher can free it
                load_teacher(job.teacher)[0], k=tc.top_k, vocab_size=len(tokenizer), topk=live_topk, hidden="teacher_hidden" in signals
            )
        if self.on_policy is not None:
            from stillhouse.plugins.students.on_policy import OnPolicyBatcher
            from stillhouse.plugins.students.teacher import load_teacher

            assert job.teacher is not None
            scorer, teacher_model = None, None
            if teacher_spec is None:  # a served teacher that scores tokens (checked in check_job)
                from stillhouse.kernel.teaching import HttpTeacherConfig
                from stillhouse.plugins.students.on_policy_served import ServedTeacher

                assert isinstance(job.teacher, HttpTeacherConfig)  # check_job refused teachers without api_base
                scorer = ServedTeacher(job.teacher, k=tc.top_k)
            else:
                teacher_model = live.model if live is not None else load_teacher(job.teacher)[0]
            self.batcher = OnPolicyBatcher(
                self.on_policy,
                teacher_model,
                pad_id=tokenizer.pad_token_id,
                eos_id=tokenizer.eos_token_id,
                k=tc.top_k,
                vocab_size=len(tokenizer),
                scorer=scorer,
            )
        if self.config.lora is not None:
            model = self.add_lora(model)
        if live is not None:
            prepare = getattr(self.loss, "prepare_models", None)  # layer maps checked, hooks installed
            if prepare is not None:
                prepare(model.get_base_model() if hasattr(model, "get_base_model") else model, live.model)
            projection = self.loss.trainable_module(model.config.hidden_size, live.model.config.hidden_size)
            if projection is not None:
                # A submodule of the student: optimiser, DDP, mixed precision and checkpoints include it.
                base = model.get_base_model() if hasattr(model, "get_base_model") else model
                base.add_module("distill_projection", projection)
            if "teacher_hidden" in signals and self.config.teacher_activations == "store":
                self.activations = self.activation_store(args, train + validation, live.model, tokenizer)
            if self.activations is not None:
                live.hidden = False  # the store replaces the per-batch teacher forward
                if not live.topk and self.on_policy is None:
                    live, teacher_blocks = self.release_teacher(live)
        return self.fit(args, model, tokenizer, train, validation, store, live, teacher_blocks)

    def release_teacher(self, live: Any) -> tuple[None, int]:
        """Nothing reads the teacher once the activation store holds what the loss needs (no live top-k,
        no on-policy scoring): drop it before the first step, so training does not hold its weights.
        Returns (no live teacher, the teacher's block count the stored tensors are indexed by)."""
        import gc

        from stillhouse.plugins.losses.hidden import model_blocks

        blocks = model_blocks(live.model)
        capture = getattr(self.loss, "teacher_capture", None)
        if capture is not None:
            capture.remove()
        live.model = None
        gc.collect()
        self._emit_log("teacher released after building the activation store: training runs without it")
        return None, blocks

    def activation_store(self, args: Any, samples: list[TokenizedSample], teacher: Any, tokenizer: Any) -> Any:
        """Open or build the teacher activation store for this loss's layers (main process first)."""
        from stillhouse.plugins.losses.hidden import model_blocks
        from stillhouse.plugins.students.activation_store import (
            estimated_nbytes,
            open_activation_store,
            teacher_tensors,
            write_activation_store,
        )

        assert self.job.teacher is not None
        names = teacher_tensors(self.loss, model_blocks(teacher))
        with args.main_process_first(desc="teacher activation store"):
            found = open_activation_store(self.job.run_dir, samples, teacher=self.job.teacher.model, names=names)
            if found is None:
                size, cap = estimated_nbytes(samples, teacher, names), self.config.teacher_activations_max_gib
                if size > cap * 2**30:
                    self._emit_log(
                        f"the teacher activation store would take {size / 2**30:.1f} GiB (cap "
                        f"student.teacher_activations_max_gib = {cap:g}): not built, the teacher runs on every batch"
                    )
                    self.summary["teacher_activations"] = {"tensors": sorted(names), "bytes": 0, "live": True,
                                                           "estimated_bytes": size}
                    return None
                self._emit_log(f"computing teacher activations ({', '.join(names)}) over {len(samples)} samples (once)")
                found = write_activation_store(
                    self.job.run_dir, samples, teacher, teacher=self.job.teacher.model, names=names,
                    pad_id=tokenizer.pad_token_id, batch_tokens=self.config.teacher_batch_tokens,
                )
        self.summary["teacher_activations"] = {"tensors": sorted(names), "bytes": found.nbytes()}
        return found

    def fit(
        self,
        args: Any,
        model: Any,
        tokenizer: Any,
        train: list[TokenizedSample],
        validation: list[TokenizedSample],
        store: Any,
        live: Any,
        teacher_blocks: int = 0,
    ) -> TrainOutcome:
        """``teacher_blocks``: the teacher's block count when ``live`` was released after the activation store."""
        from transformers import EarlyStoppingCallback, PrinterCallback

        from stillhouse.plugins.losses.hidden import model_blocks
        from stillhouse.plugins.students.batching import Collator
        from stillhouse.plugins.students.hf_trainer import (
            DistillTrainer,
            EventsCallback,
            StopCallback,
            check_finite_weights,
        )

        job, tc = self.job, self.tc

        activations = self.activations

        def items(samples: list[TokenizedSample]) -> list[dict[str, Any]]:
            return [
                {
                    **s.as_item(),
                    "topk_offset": store.offset(s) if store else -1,
                    "prompt_length": s.prompt_length,
                    **({"sample_key": s.key()} if activations is not None else {}),
                }
                for s in samples
            ]

        collator: Any = Collator(
            pad_id=tokenizer.pad_token_id,
            max_length=self.config.max_length,
            packing=tc.packing,
            store=store,
            pad_to_multiple_of=None if args.use_cpu else 8,
            activations=activations,
        )
        trainer_ref: list[Any] = []
        stop = StopCallback(job.should_stop)
        callbacks: list[Any] = [EventsCallback(job.emit, trainer_ref), stop]
        if tc.early_stopping_patience:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=tc.early_stopping_patience))
        trainer_cls: Any = DistillTrainer
        extra: dict[str, Any] = {}
        if self.on_policy is not None:
            from stillhouse.plugins.students.on_policy import OnPolicyTrainer, PromptCollator

            trainer_cls, collator = OnPolicyTrainer, PromptCollator(collator)
            extra = {"on_policy": self.batcher, "emit": job.emit}
        trainer = trainer_cls(
            model=model,
            args=args,
            train_dataset=items(train),
            eval_dataset=items(validation) if validation else None,
            data_collator=collator,
            processing_class=tokenizer,
            callbacks=callbacks,
            distill_loss=self.loss,
            live_teacher=live,
            teacher_blocks=model_blocks(live.model) if live is not None else teacher_blocks,
            **extra,
        )
        trainer_ref.append(trainer)
        trainer.remove_callback(PrinterCallback)  # progress and metrics go to run events, not stdout
        resume = self.resume_from(trainer.is_world_process_zero())
        if resume:
            self._emit_log(f"resuming training from {Path(resume).name}")
        with quiet_progress_bars():
            result = trainer.train(resume_from_checkpoint=resume)
        state = trainer.state
        world = max(args.world_size, 1)
        tokens = trainer.tokens_seen * world
        runtime = result.metrics.get("train_runtime") or 0.0
        waste = 1 - trainer.tokens_seen / trainer.positions_seen if trainer.positions_seen else 0.0
        self.summary.update(
            {
                "epochs": round(state.epoch or 0.0, 3),
                "train_loss": result.training_loss,
                "best_eval_loss": state.best_metric,
                "best_checkpoint": Path(state.best_model_checkpoint).name if state.best_model_checkpoint else None,
                "tokens_trained": tokens,
                "tokens_per_s": round(tokens / runtime, 1) if runtime else None,
                "padding_waste": round(waste, 4),
                "packing": tc.packing,
                "resumed_from": Path(resume).name if resume else None,
                "early_stopped": bool(tc.early_stopping_patience)
                and state.global_step < state.max_steps
                and not stop.stopped,
                "lora": self.config.lora is not None,
                "world_size": world,
            }
        )
        if self.on_policy is not None:
            self.summary["on_policy"] = self.batcher.stats.as_dict()
            self._emit_log(self.batcher.stats.describe())
        if trainer.is_world_process_zero():
            job.emit(
                {
                    "type": "metric",
                    "key": "train/padding_waste",
                    "value": waste,
                    "step": state.global_step,
                    "context": "train",
                }
            )
        if stop.stopped:
            complete, _ = complete_checkpoints(job.checkpoint_dir)
            self.summary["interrupted"] = True
            return TrainOutcome(complete[-1] if complete else job.checkpoint_dir, state.global_step, self.summary)
        trained = trainer.model
        if trained is None:  # transformers types it Optional (for model_init); this trainer was given one
            raise RuntimeError("the trainer has no model after training")
        check_finite_weights(trained)
        with quiet_progress_bars():
            model_dir = self.export(trainer, tokenizer)
        return TrainOutcome(model_dir, state.global_step, self.summary)
