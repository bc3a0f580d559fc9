-- 0001: the registry's tables. Every table and column carries a COMMENT: `still sql --schema` and
-- docs/sql.md are generated from these comments, and a test fails on an undocumented column.
-- Timestamps are UTC (TIMESTAMP without time zone). Rows are keyed by run_id; there are no
-- PRIMARY KEY constraints because ingest replaces rows with DELETE + INSERT in one transaction.

CREATE TABLE runs (
    run_id VARCHAR NOT NULL,
    name VARCHAR,
    kind VARCHAR,
    task VARCHAR,
    status VARCHAR,
    teacher_model VARCHAR,
    student_model VARCHAR,
    primary_metric VARCHAR,
    created_at TIMESTAMP,
    finished_at TIMESTAMP,
    updated_at TIMESTAMP,
    error VARCHAR,
    starts INTEGER,
    pid INTEGER,
    run_dir VARCHAR,
    config_json JSON,
    config_hash VARCHAR
);
COMMENT ON TABLE runs IS 'One row per run: identity, models, status and the resolved config.';
COMMENT ON COLUMN runs.run_id IS 'Run id, the name of the run folder (runs/<run_id>/).';
COMMENT ON COLUMN runs.name IS 'Human name from the config (`name`), or NULL.';
COMMENT ON COLUMN runs.kind IS 'pipeline (still run) or eval (standalone still eval of one model).';
COMMENT ON COLUMN runs.task IS 'Task type plugin: nli, qa, math, summarization, conversation, ...';
COMMENT ON COLUMN runs.status IS 'created | running | completed | failed | interrupted (from the last run_started/run_finished event).';
COMMENT ON COLUMN runs.teacher_model IS 'Teacher model string (litellm model or hf/<model>).';
COMMENT ON COLUMN runs.student_model IS 'Student model (hub id, folder or GGUF file).';
COMMENT ON COLUMN runs.primary_metric IS 'The task''s main metric (nli/math: accuracy, qa: f1, summarization: rouge_l, conversation: chrf).';
COMMENT ON COLUMN runs.created_at IS 'When the run first started (UTC).';
COMMENT ON COLUMN runs.finished_at IS 'When the run last finished (UTC); NULL while running or if it was killed.';
COMMENT ON COLUMN runs.updated_at IS 'Time of the newest event ingested for this run (UTC).';
COMMENT ON COLUMN runs.error IS 'Error message of a failed run, else NULL.';
COMMENT ON COLUMN runs.starts IS 'Number of run_started events: 1 plus the number of resumes.';
COMMENT ON COLUMN runs.pid IS 'Process id of the latest invocation that ran this run.';
COMMENT ON COLUMN runs.run_dir IS 'Absolute path of the run folder when it was ingested (NULL for imported runs without a folder).';
COMMENT ON COLUMN runs.config_json IS 'Resolved pipeline config as JSON, secrets redacted.';
COMMENT ON COLUMN runs.config_hash IS 'Hash of the resolved config: equal hashes mean equal configs.';

CREATE TABLE params (
    run_id VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    value VARCHAR,
    value_num DOUBLE,
    type VARCHAR
);
COMMENT ON TABLE params IS 'The resolved config flattened to one row per leaf: train.learning_rate, teacher.model, ...';
COMMENT ON COLUMN params.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN params.key IS 'Dotted path of the config leaf, e.g. train.learning_rate; list items of tables get their index (teacher.deployments.0.model).';
COMMENT ON COLUMN params.value IS 'The value as text: strings as is, numbers and booleans as JSON (true/false), lists of scalars as JSON arrays, NULL for null. Secrets show as ***REDACTED***.';
COMMENT ON COLUMN params.value_num IS 'The value as a number when it is one (booleans are 0/1), else NULL.';
COMMENT ON COLUMN params.type IS 'Type of the value: string, integer, number, boolean, null, list, table (an empty table).';

CREATE TABLE metrics (
    run_id VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    context VARCHAR,
    step BIGINT,
    value DOUBLE,
    ts TIMESTAMP
);
COMMENT ON TABLE metrics IS 'Every metric event (training curves) and every progress event, one row each.';
COMMENT ON COLUMN metrics.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN metrics.key IS 'Metric name: train/loss, train/lr, train/grad_norm, train/tokens_per_s, eval/loss, ...; progress rows are progress/<stage>.';
COMMENT ON COLUMN metrics.context IS 'Where it was measured: train, validation, a stage name, or progress for progress rows.';
COMMENT ON COLUMN metrics.step IS 'Optimizer step for training metrics; items done for progress rows; NULL when the event had none.';
COMMENT ON COLUMN metrics.value IS 'The value; for progress rows the fraction done (done / total).';
COMMENT ON COLUMN metrics.ts IS 'When the event was written (UTC).';

CREATE TABLE stages (
    run_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    status VARCHAR,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    seconds DOUBLE,
    attempts INTEGER,
    error VARCHAR,
    summary_json JSON
);
COMMENT ON TABLE stages IS 'One row per run and stage (generate, filter, train, evaluate, report): its latest attempt.';
COMMENT ON COLUMN stages.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN stages.stage IS 'Stage name.';
COMMENT ON COLUMN stages.status IS 'running | finished | failed (a running stage of a killed run stays running).';
COMMENT ON COLUMN stages.started_at IS 'Start of the latest attempt (UTC).';
COMMENT ON COLUMN stages.finished_at IS 'End of the latest attempt (UTC), NULL while running.';
COMMENT ON COLUMN stages.seconds IS 'Duration of the latest finished attempt, as reported by the stage.';
COMMENT ON COLUMN stages.attempts IS 'How many times the stage was started (resumes and --stage re-runs).';
COMMENT ON COLUMN stages.error IS 'Error of a failed attempt, else NULL.';
COMMENT ON COLUMN stages.summary_json IS 'The stage''s summary from its stage_finished event, as JSON.';

CREATE TABLE teacher_calls (
    run_id VARCHAR NOT NULL,
    sample_id VARCHAR,
    split VARCHAR,
    model VARCHAR,
    cache_key VARCHAR,
    cache_hit BOOLEAN,
    prompt_tokens BIGINT,
    completion_tokens BIGINT,
    cost_usd DOUBLE,
    latency_ms DOUBLE,
    error VARCHAR,
    ts TIMESTAMP
);
COMMENT ON TABLE teacher_calls IS 'One row per teacher request (teacher_call event); a retried request has one row per attempt.';
COMMENT ON COLUMN teacher_calls.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN teacher_calls.sample_id IS 'Id of the example the prompt was built from.';
COMMENT ON COLUMN teacher_calls.split IS 'Data split of the example: train, validation, test.';
COMMENT ON COLUMN teacher_calls.model IS 'Model (or deployment) that answered.';
COMMENT ON COLUMN teacher_calls.cache_key IS 'Content hash of the request in the teacher cache.';
COMMENT ON COLUMN teacher_calls.cache_hit IS 'True when the answer came from the cache (no API call, no cost).';
COMMENT ON COLUMN teacher_calls.prompt_tokens IS 'Prompt tokens billed or counted.';
COMMENT ON COLUMN teacher_calls.completion_tokens IS 'Completion tokens billed or counted.';
COMMENT ON COLUMN teacher_calls.cost_usd IS 'Cost in USD; NULL when the price is unknown.';
COMMENT ON COLUMN teacher_calls.latency_ms IS 'Wall time of the request in milliseconds.';
COMMENT ON COLUMN teacher_calls.error IS 'Error message when the call failed, else NULL.';
COMMENT ON COLUMN teacher_calls.ts IS 'When the result was recorded (UTC).';

CREATE TABLE samples (
    run_id VARCHAR NOT NULL,
    split VARCHAR,
    sample_id VARCHAR,
    accepted BOOLEAN,
    reason VARCHAR,
    confidence DOUBLE,
    prompt JSON,
    teacher_output VARCHAR,
    parsed_answer VARCHAR,
    rationale VARCHAR,
    reference VARCHAR,
    target VARCHAR,
    n_targets INTEGER,
    targets_json JSON,
    source VARCHAR
);
COMMENT ON TABLE samples IS 'The filter stage''s verdict per example (samples.jsonl), replaced whole when the file changes.';
COMMENT ON COLUMN samples.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN samples.split IS 'Data split: train or validation.';
COMMENT ON COLUMN samples.sample_id IS 'Example id.';
COMMENT ON COLUMN samples.accepted IS 'True when the teacher answer passed the task''s verifiers and the filter_sample hooks.';
COMMENT ON COLUMN samples.reason IS 'Why it was accepted or rejected (e.g. wrong_label, unparseable, too_long).';
COMMENT ON COLUMN samples.confidence IS 'Verifier confidence or self-consistency agreement, 0..1, when known.';
COMMENT ON COLUMN samples.prompt IS 'The chat messages sent to the teacher, as a JSON list of {role, content}.';
COMMENT ON COLUMN samples.teacher_output IS 'Text of the teacher''s first completion.';
COMMENT ON COLUMN samples.parsed_answer IS 'The answer parsed from the teacher output (JSON text when not a string).';
COMMENT ON COLUMN samples.rationale IS 'The teacher''s reasoning, when the task separates it from the answer.';
COMMENT ON COLUMN samples.reference IS 'The gold answer from the data (JSON text when not a string).';
COMMENT ON COLUMN samples.target IS 'Text of the first training target built from the answer (NULL when rejected).';
COMMENT ON COLUMN samples.n_targets IS 'Number of training targets (2 with rationale = multitask).';
COMMENT ON COLUMN samples.targets_json IS 'All training targets as JSON: [{messages, target, weight}].';
COMMENT ON COLUMN samples.source IS 'Where the example came from: file:line.';

CREATE TABLE evals (
    run_id VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    value DOUBLE,
    n BIGINT,
    reason VARCHAR,
    model VARCHAR,
    higher_is_better BOOLEAN,
    unit VARCHAR
);
COMMENT ON TABLE evals IS 'Evaluation results: one row per run, evaluated model role and metric (latest value wins).';
COMMENT ON COLUMN evals.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN evals.role IS 'teacher | baseline (untouched student) | student (distilled) | model (standalone `still eval`).';
COMMENT ON COLUMN evals.metric IS 'Metric name: accuracy, f1, rouge_l, chrf, ... (0..1) or a measurement (latency_p50_ms, parameters, cost_usd_total, ...).';
COMMENT ON COLUMN evals.value IS 'The value; NULL when it could not be measured (see reason). Never 0 for unmeasured.';
COMMENT ON COLUMN evals.n IS 'Number of examples (or measurements) behind the value.';
COMMENT ON COLUMN evals.reason IS 'Why value is NULL, or a note on how it was measured.';
COMMENT ON COLUMN evals.model IS 'The model evaluated in this role.';
COMMENT ON COLUMN evals.higher_is_better IS 'True for quality metrics, false for latency/memory/cost, NULL when not stated.';
COMMENT ON COLUMN evals.unit IS 'Unit of the value: empty for 0..1 scores, ms, bytes, usd, tokens/s, ...';

CREATE TABLE eval_samples (
    run_id VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    sample_id VARCHAR,
    model VARCHAR,
    prompt JSON,
    output VARCHAR,
    parsed_answer VARCHAR,
    reference VARCHAR,
    latency_ms DOUBLE,
    error VARCHAR
);
COMMENT ON TABLE eval_samples IS 'Per-example evaluation outputs (eval/<role>.jsonl), replaced whole when a file changes.';
COMMENT ON COLUMN eval_samples.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN eval_samples.role IS 'teacher | baseline | student | model.';
COMMENT ON COLUMN eval_samples.sample_id IS 'Example id in the evaluation split.';
COMMENT ON COLUMN eval_samples.model IS 'The model that produced the output.';
COMMENT ON COLUMN eval_samples.prompt IS 'The chat messages given to the model, as JSON.';
COMMENT ON COLUMN eval_samples.output IS 'The model''s raw output text.';
COMMENT ON COLUMN eval_samples.parsed_answer IS 'The answer parsed from the output (JSON text when not a string).';
COMMENT ON COLUMN eval_samples.reference IS 'The gold answer (JSON text when not a string).';
COMMENT ON COLUMN eval_samples.latency_ms IS 'Generation latency for this example in milliseconds.';
COMMENT ON COLUMN eval_samples.error IS 'Error for this example, else NULL.';

CREATE TABLE artifacts (
    run_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    path VARCHAR,
    bytes BIGINT,
    ts TIMESTAMP
);
COMMENT ON TABLE artifacts IS 'Files a run produced (artifact events): student model, report, checkpoints ...; latest per name.';
COMMENT ON COLUMN artifacts.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN artifacts.name IS 'Artifact name, e.g. student, report_md, checkpoint.';
COMMENT ON COLUMN artifacts.path IS 'Path relative to the run folder.';
COMMENT ON COLUMN artifacts.bytes IS 'Size in bytes (folders: total of their files).';
COMMENT ON COLUMN artifacts.ts IS 'When it was recorded (UTC).';

CREATE TABLE plugins_used (
    run_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    package VARCHAR,
    version VARCHAR
);
COMMENT ON TABLE plugins_used IS 'Which plugins a run used: from run_started.plugins when the pipeline lists them, else from the config.';
COMMENT ON COLUMN plugins_used.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN plugins_used.kind IS 'task | teacher | student | loss | evaluator | reporter.';
COMMENT ON COLUMN plugins_used.name IS 'Plugin name within its kind.';
COMMENT ON COLUMN plugins_used.package IS 'Distribution that provided it, when recorded (NULL when derived from the config).';
COMMENT ON COLUMN plugins_used.version IS 'Its version, when recorded.';

CREATE TABLE logs (
    run_id VARCHAR NOT NULL,
    ts TIMESTAMP,
    level VARCHAR,
    stage VARCHAR,
    message VARCHAR
);
COMMENT ON TABLE logs IS 'log events and stage failures of each run, secrets redacted.';
COMMENT ON COLUMN logs.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN logs.ts IS 'When it was written (UTC).';
COMMENT ON COLUMN logs.level IS 'debug | info | warning | error.';
COMMENT ON COLUMN logs.stage IS 'Stage it belongs to, when known.';
COMMENT ON COLUMN logs.message IS 'The message.';

-- Bookkeeping for incremental ingest (not part of the public interface; not exported).
CREATE TABLE _ingest_state (
    run_id VARCHAR NOT NULL,
    run_dir VARCHAR NOT NULL,
    events_offset BIGINT NOT NULL,
    events_head VARCHAR,
    samples_sig VARCHAR,
    results_sig VARCHAR,
    eval_outputs_sig VARCHAR,
    ingested_at TIMESTAMP
);
COMMENT ON TABLE _ingest_state IS 'Internal: how much of each run folder has been ingested.';
COMMENT ON COLUMN _ingest_state.run_id IS 'Run id.';
COMMENT ON COLUMN _ingest_state.run_dir IS 'Run folder the state refers to.';
COMMENT ON COLUMN _ingest_state.events_offset IS 'Bytes of events.jsonl ingested so far (always at a line end).';
COMMENT ON COLUMN _ingest_state.events_head IS 'Hash of the first line of events.jsonl: a different file under the same name is ingested afresh.';
COMMENT ON COLUMN _ingest_state.samples_sig IS 'Size and mtime of samples.jsonl when last ingested.';
COMMENT ON COLUMN _ingest_state.results_sig IS 'Size and mtime of eval/results.json when last ingested.';
COMMENT ON COLUMN _ingest_state.eval_outputs_sig IS 'Sizes and mtimes of eval/<role>.jsonl when last ingested.';
COMMENT ON COLUMN _ingest_state.ingested_at IS 'When this run was last ingested (UTC).';
