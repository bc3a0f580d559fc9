-- 0002: the views, the registry's user-facing SQL API. Later migrations change them with
-- CREATE OR REPLACE VIEW and re-state their comments.

CREATE VIEW metrics_latest AS
SELECT
    run_id,
    key,
    context,
    arg_max(value, ts) AS value,
    arg_max(step, ts) AS step,
    max(ts) AS ts,
    min(value) AS min_value,
    max(value) AS max_value,
    count(*) AS points
FROM metrics
GROUP BY run_id, key, context;
COMMENT ON VIEW metrics_latest IS 'The newest value of every metric of every run, with its range and number of points.';
COMMENT ON COLUMN metrics_latest.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN metrics_latest.key IS 'Metric name (metrics.key).';
COMMENT ON COLUMN metrics_latest.context IS 'Where it was measured (metrics.context).';
COMMENT ON COLUMN metrics_latest.value IS 'The most recently written value.';
COMMENT ON COLUMN metrics_latest.step IS 'The step of that value.';
COMMENT ON COLUMN metrics_latest.ts IS 'When that value was written (UTC).';
COMMENT ON COLUMN metrics_latest.min_value IS 'Smallest value over all points.';
COMMENT ON COLUMN metrics_latest.max_value IS 'Largest value over all points.';
COMMENT ON COLUMN metrics_latest.points IS 'Number of points.';

CREATE VIEW comparison AS
SELECT
    *,
    100.0 * student / nullif(teacher, 0) AS student_vs_teacher_pct,
    student - baseline AS student_minus_baseline
FROM (
    SELECT
        e.run_id,
        any_value(r.task) AS task,
        e.metric,
        coalesce(e.metric = any_value(r.primary_metric), false) AS is_primary,
        max(e.value) FILTER (WHERE e.role = 'teacher') AS teacher,
        max(e.value) FILTER (WHERE e.role = 'baseline') AS baseline,
        max(e.value) FILTER (WHERE e.role = 'student') AS student,
        max(e.value) FILTER (WHERE e.role = 'model') AS model,
        bool_or(e.higher_is_better) AS higher_is_better,
        max(e.unit) AS unit
    FROM evals e
    LEFT JOIN runs r ON r.run_id = e.run_id
    GROUP BY e.run_id, e.metric
);
COMMENT ON VIEW comparison IS 'Teacher, baseline and distilled student side by side: one row per run and metric.';
COMMENT ON COLUMN comparison.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN comparison.task IS 'Task of the run.';
COMMENT ON COLUMN comparison.metric IS 'Metric name (evals.metric).';
COMMENT ON COLUMN comparison.is_primary IS 'True for the task''s primary metric (runs.primary_metric).';
COMMENT ON COLUMN comparison.teacher IS 'Value for the teacher.';
COMMENT ON COLUMN comparison.baseline IS 'Value for the untouched student (before distillation).';
COMMENT ON COLUMN comparison.student IS 'Value for the distilled student.';
COMMENT ON COLUMN comparison.model IS 'Value for a standalone `still eval` model.';
COMMENT ON COLUMN comparison.higher_is_better IS 'Direction of the metric, when recorded (evals.higher_is_better).';
COMMENT ON COLUMN comparison.unit IS 'Unit of the values (evals.unit).';
COMMENT ON COLUMN comparison.student_vs_teacher_pct IS 'student / teacher * 100: retention for quality metrics, relative size/latency for measurements.';
COMMENT ON COLUMN comparison.student_minus_baseline IS 'student - baseline: what distillation changed.';

CREATE VIEW run_summary AS
WITH
sample_counts AS (
    SELECT
        run_id,
        count(*) AS samples,
        count(*) FILTER (WHERE accepted) AS samples_accepted,
        count(*) FILTER (WHERE NOT accepted) AS samples_rejected
    FROM samples
    GROUP BY run_id
),
call_stats AS (
    SELECT
        run_id,
        count(*) AS teacher_calls,
        count(*) FILTER (WHERE cache_hit) AS cache_hits,
        count(*) FILTER (WHERE error IS NOT NULL) AS call_errors,
        sum(prompt_tokens) AS prompt_tokens,
        sum(completion_tokens) AS completion_tokens,
        sum(cost_usd) AS cost_usd
    FROM teacher_calls
    GROUP BY run_id
),
scores AS (
    SELECT
        e.run_id,
        max(e.value) FILTER (WHERE e.role = 'teacher') AS teacher_score,
        max(e.value) FILTER (WHERE e.role = 'baseline') AS baseline_score,
        max(e.value) FILTER (WHERE e.role = 'student') AS student_score,
        max(e.value) FILTER (WHERE e.role = 'model') AS model_score
    FROM evals e
    JOIN runs r ON r.run_id = e.run_id AND e.metric = r.primary_metric
    GROUP BY e.run_id
),
losses AS (
    SELECT
        run_id,
        arg_max(value, ts) FILTER (WHERE key = 'train/loss') AS final_train_loss,
        arg_max(value, ts) FILTER (WHERE key = 'eval/loss') AS final_eval_loss,
        max(step) FILTER (WHERE key = 'train/loss') AS train_steps
    FROM metrics
    WHERE key IN ('train/loss', 'eval/loss')
    GROUP BY run_id
)
SELECT
    r.run_id,
    r.name,
    r.kind,
    r.task,
    r.status,
    r.teacher_model,
    r.student_model,
    r.primary_metric,
    coalesce(s.samples, 0) AS samples,
    coalesce(s.samples_accepted, 0) AS samples_accepted,
    coalesce(s.samples_rejected, 0) AS samples_rejected,
    s.samples_accepted / nullif(s.samples, 0) AS acceptance_rate,
    coalesce(c.teacher_calls, 0) AS teacher_calls,
    coalesce(c.cache_hits, 0) AS cache_hits,
    c.cache_hits / nullif(c.teacher_calls, 0) AS cache_hit_rate,
    coalesce(c.call_errors, 0) AS call_errors,
    coalesce(c.prompt_tokens, 0) AS prompt_tokens,
    coalesce(c.completion_tokens, 0) AS completion_tokens,
    c.cost_usd,
    sc.teacher_score,
    sc.baseline_score,
    sc.student_score,
    sc.model_score,
    -- Retention: must agree with kernel.comparison.retention (tests/registry/test_retention.py).
    100.0 * sc.student_score / nullif(sc.teacher_score, 0) AS retention_pct,
    sc.student_score - sc.baseline_score AS gain_over_baseline,
    l.final_train_loss,
    l.final_eval_loss,
    l.train_steps,
    r.created_at AS started_at,
    r.finished_at,
    epoch(coalesce(r.finished_at, r.updated_at) - r.created_at) AS duration_s,
    r.config_hash
FROM runs r
LEFT JOIN sample_counts s ON s.run_id = r.run_id
LEFT JOIN call_stats c ON c.run_id = r.run_id
LEFT JOIN scores sc ON sc.run_id = r.run_id
LEFT JOIN losses l ON l.run_id = r.run_id;
COMMENT ON VIEW run_summary IS 'One row per run: what it is, how far it got, what it cost and how good the student is.';
COMMENT ON COLUMN run_summary.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN run_summary.name IS 'Human name of the run.';
COMMENT ON COLUMN run_summary.kind IS 'pipeline or eval.';
COMMENT ON COLUMN run_summary.task IS 'Task type.';
COMMENT ON COLUMN run_summary.status IS 'created | running | completed | failed | interrupted.';
COMMENT ON COLUMN run_summary.teacher_model IS 'Teacher model.';
COMMENT ON COLUMN run_summary.student_model IS 'Student model.';
COMMENT ON COLUMN run_summary.primary_metric IS 'The metric the *_score columns report.';
COMMENT ON COLUMN run_summary.samples IS 'Examples judged by the filter stage.';
COMMENT ON COLUMN run_summary.samples_accepted IS 'Examples whose teacher answer was accepted.';
COMMENT ON COLUMN run_summary.samples_rejected IS 'Examples whose teacher answer was rejected.';
COMMENT ON COLUMN run_summary.acceptance_rate IS 'samples_accepted / samples (NULL before the filter stage).';
COMMENT ON COLUMN run_summary.teacher_calls IS 'Teacher requests, cache hits and retries included.';
COMMENT ON COLUMN run_summary.cache_hits IS 'Requests answered from the teacher cache.';
COMMENT ON COLUMN run_summary.cache_hit_rate IS 'cache_hits / teacher_calls (NULL without calls).';
COMMENT ON COLUMN run_summary.call_errors IS 'Teacher requests that failed.';
COMMENT ON COLUMN run_summary.prompt_tokens IS 'Prompt tokens over all teacher calls.';
COMMENT ON COLUMN run_summary.completion_tokens IS 'Completion tokens over all teacher calls.';
COMMENT ON COLUMN run_summary.cost_usd IS 'Teacher cost in USD (NULL when no call had a known price).';
COMMENT ON COLUMN run_summary.teacher_score IS 'Primary metric of the teacher.';
COMMENT ON COLUMN run_summary.baseline_score IS 'Primary metric of the untouched student.';
COMMENT ON COLUMN run_summary.student_score IS 'Primary metric of the distilled student.';
COMMENT ON COLUMN run_summary.model_score IS 'Primary metric of a standalone `still eval` model.';
COMMENT ON COLUMN run_summary.retention_pct IS 'student_score / teacher_score * 100: how much of the teacher''s quality the student kept.';
COMMENT ON COLUMN run_summary.gain_over_baseline IS 'student_score - baseline_score: what distillation added.';
COMMENT ON COLUMN run_summary.final_train_loss IS 'Last train/loss value.';
COMMENT ON COLUMN run_summary.final_eval_loss IS 'Last eval/loss (validation) value.';
COMMENT ON COLUMN run_summary.train_steps IS 'Highest step with a train/loss value.';
COMMENT ON COLUMN run_summary.started_at IS 'When the run first started (UTC).';
COMMENT ON COLUMN run_summary.finished_at IS 'When it finished (UTC), NULL if it has not.';
COMMENT ON COLUMN run_summary.duration_s IS 'Seconds from start to finish (or to the newest event while running).';
COMMENT ON COLUMN run_summary.config_hash IS 'Config hash: equal for runs of the same config.';
