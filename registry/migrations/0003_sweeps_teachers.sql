-- 0003: sweeps and several teachers. Two ingested columns (which teacher made a call or a sample's
-- target, and the judge's score) and two views. Runs ingested before this migration keep NULL in
-- the new columns until `still registry ingest --rebuild` reads their folders again.

ALTER TABLE teacher_calls ADD COLUMN teacher VARCHAR;
COMMENT ON COLUMN teacher_calls.teacher IS 'With [[teachers]]: the name of the teacher that was asked, or judge for the judge''s calls; NULL with one [teacher].';

ALTER TABLE samples ADD COLUMN teacher VARCHAR;
COMMENT ON COLUMN samples.teacher IS 'With [[teachers]]: the teacher whose answer became the target; NULL with one [teacher].';
ALTER TABLE samples ADD COLUMN judge_score DOUBLE;
COMMENT ON COLUMN samples.judge_score IS 'With a judge: its score of the answer (on its scale), else NULL.';

CREATE VIEW sweep_trials AS
WITH
trials AS (
    SELECT
        run_id,
        max(value) FILTER (WHERE key = 'tags.sweep') AS sweep_id,
        max(value) FILTER (WHERE key = 'tags.trial') AS trial
    FROM params
    WHERE key IN ('tags.sweep', 'tags.trial')
    GROUP BY run_id
    HAVING max(value) FILTER (WHERE key = 'tags.sweep') IS NOT NULL
),
sizes AS (
    SELECT sweep_id, count(*) AS trials FROM trials GROUP BY sweep_id
),
varying AS (
    -- Config leaves that differ between the trials of a sweep (or that some trials lack).
    SELECT t.sweep_id, p.key
    FROM params p
    JOIN trials t USING (run_id)
    JOIN sizes z USING (sweep_id)
    WHERE p.key <> 'name' AND p.key NOT LIKE 'tags.%'
    GROUP BY t.sweep_id, p.key
    HAVING count(DISTINCT coalesce(p.value, '\0null')) > 1 OR count(*) < any_value(z.trials)
),
changed AS (
    SELECT
        p.run_id,
        json_group_object(
            p.key,
            CASE WHEN p.value IS NULL THEN 'null'::JSON WHEN p.type = 'string' THEN to_json(p.value) ELSE p.value::JSON END
        ) AS params_changed
    FROM params p
    JOIN trials t USING (run_id)
    JOIN varying v ON v.sweep_id = t.sweep_id AND v.key = p.key
    GROUP BY p.run_id
),
pruned AS (
    SELECT DISTINCT run_id FROM logs WHERE message LIKE 'sweep % pruned at step %'
)
SELECT
    t.sweep_id,
    TRY_CAST(t.trial AS INTEGER) AS trial,
    s.run_id,
    s.name,
    s.status,
    pr.run_id IS NOT NULL AS pruned,
    s.primary_metric,
    s.student_score,
    s.teacher_score,
    s.retention_pct,
    s.final_eval_loss,
    s.teacher_calls,
    s.cache_hits,
    s.cost_usd,
    s.duration_s,
    s.started_at,
    s.finished_at,
    coalesce(c.params_changed, '{}'::JSON) AS params_changed
FROM trials t
JOIN run_summary s USING (run_id)
LEFT JOIN changed c USING (run_id)
LEFT JOIN pruned pr USING (run_id);
COMMENT ON VIEW sweep_trials IS 'One row per trial of a `still sweep` (runs whose config has tags.sweep): its run, outcome and the parameters it changed. The objective values Optuna saw are in the sweep''s journal (`still sweep show`).';
COMMENT ON COLUMN sweep_trials.sweep_id IS 'Sweep id (config tags.sweep).';
COMMENT ON COLUMN sweep_trials.trial IS 'Trial number within the sweep (config tags.trial).';
COMMENT ON COLUMN sweep_trials.run_id IS 'The trial''s run (runs.run_id).';
COMMENT ON COLUMN sweep_trials.name IS 'Run name: the config''s name with -t<trial>.';
COMMENT ON COLUMN sweep_trials.status IS 'Run status: completed, failed, interrupted (pruned trials end interrupted), running, dead.';
COMMENT ON COLUMN sweep_trials.pruned IS 'True when the sweep pruned the trial (its "pruned at step" log event).';
COMMENT ON COLUMN sweep_trials.primary_metric IS 'The task''s main metric, the one student_score reports.';
COMMENT ON COLUMN sweep_trials.student_score IS 'Primary metric of the trained student on the objective''s split: the objective when the sweep optimises the primary metric.';
COMMENT ON COLUMN sweep_trials.teacher_score IS 'Primary metric of the teacher (measured only when the objective is retention).';
COMMENT ON COLUMN sweep_trials.retention_pct IS 'student_score / teacher_score * 100: the objective of a retention sweep.';
COMMENT ON COLUMN sweep_trials.final_eval_loss IS 'Last validation loss: what the pruner was fed.';
COMMENT ON COLUMN sweep_trials.teacher_calls IS 'Teacher requests of the trial (cache hits included).';
COMMENT ON COLUMN sweep_trials.cache_hits IS 'Requests answered from the teacher cache (every one, after the first trial, when the sweep leaves the teacher alone).';
COMMENT ON COLUMN sweep_trials.cost_usd IS 'Teacher cost of the trial in USD.';
COMMENT ON COLUMN sweep_trials.duration_s IS 'Seconds from the trial''s start to its end.';
COMMENT ON COLUMN sweep_trials.started_at IS 'When the trial started (UTC).';
COMMENT ON COLUMN sweep_trials.finished_at IS 'When it finished (UTC), NULL if it has not.';
COMMENT ON COLUMN sweep_trials.params_changed IS 'The config leaves that differ between this sweep''s trials, with this trial''s values, as a JSON object ({"train.learning_rate": 0.0003, ...}); {} for a sweep of one trial.';

CREATE VIEW teacher_stats AS
WITH
calls AS (
    SELECT
        run_id,
        teacher,
        string_agg(DISTINCT model, ', ' ORDER BY model) AS model,
        count(*) AS calls,
        count(*) FILTER (WHERE cache_hit) AS cache_hits,
        count(*) FILTER (WHERE error IS NOT NULL) AS call_errors,
        sum(prompt_tokens) AS prompt_tokens,
        sum(completion_tokens) AS completion_tokens,
        sum(cost_usd) AS cost_usd
    FROM teacher_calls
    WHERE teacher IS NOT NULL
    GROUP BY run_id, teacher
),
generated AS (
    SELECT s.run_id, e.key AS teacher, e.value AS tally
    FROM stages s, json_each(s.summary_json -> 'teachers') e
    WHERE s.stage = 'generate' AND json_type(s.summary_json -> 'teachers') = 'OBJECT'
),
filtered AS (
    SELECT s.run_id, e.key AS teacher, e.value AS tally
    FROM stages s, json_each(s.summary_json -> 'teachers') e
    WHERE s.stage = 'filter' AND json_type(s.summary_json -> 'teachers') = 'OBJECT'
),
judged AS (
    SELECT run_id, teacher, avg(judge_score) AS mean_judge_score
    FROM samples
    WHERE teacher IS NOT NULL AND judge_score IS NOT NULL
    GROUP BY run_id, teacher
),
names AS (
    SELECT run_id, teacher FROM calls
    UNION SELECT run_id, teacher FROM generated
    UNION SELECT run_id, teacher FROM filtered
)
SELECT
    n.run_id,
    n.teacher,
    coalesce(g.tally ->> 'model', c.model) AS model,
    TRY_CAST(g.tally ->> 'weight' AS DOUBLE) AS weight,
    TRY_CAST(g.tally ->> 'asked' AS BIGINT) AS rows_asked,
    coalesce(c.calls, 0) AS calls,
    coalesce(c.cache_hits, 0) AS cache_hits,
    coalesce(c.call_errors, 0) AS call_errors,
    coalesce(c.prompt_tokens, 0) AS prompt_tokens,
    coalesce(c.completion_tokens, 0) AS completion_tokens,
    c.cost_usd,
    TRY_CAST(g.tally ->> 'list_cost_usd' AS DOUBLE) AS list_cost_usd,
    TRY_CAST(f.tally ->> 'answered' AS BIGINT) AS answered,
    TRY_CAST(f.tally ->> 'chosen' AS BIGINT) AS chosen,
    TRY_CAST(f.tally ->> 'accepted' AS BIGINT) AS accepted,
    TRY_CAST(f.tally ->> 'accepted' AS DOUBLE) / nullif(TRY_CAST(f.tally ->> 'answered' AS DOUBLE), 0) AS acceptance_rate,
    TRY_CAST(f.tally ->> 'agreement_with_combined' AS DOUBLE) AS agreement,
    j.mean_judge_score
FROM names n
LEFT JOIN calls c ON c.run_id = n.run_id AND c.teacher = n.teacher
LEFT JOIN generated g ON g.run_id = n.run_id AND g.teacher = n.teacher
LEFT JOIN filtered f ON f.run_id = n.run_id AND f.teacher = n.teacher
LEFT JOIN judged j ON j.run_id = n.run_id AND j.teacher = n.teacher;
COMMENT ON VIEW teacher_stats IS 'One row per run and named teacher ([[teachers]], and judge for a judge''s calls): calls, tokens, cost, acceptance and agreement. One-teacher runs are in run_summary.';
COMMENT ON COLUMN teacher_stats.run_id IS 'Run id (runs.run_id).';
COMMENT ON COLUMN teacher_stats.teacher IS 'The teacher''s name from [[teachers]]; judge for the judge.';
COMMENT ON COLUMN teacher_stats.model IS 'Its model (from the generate summary, else the models its calls name).';
COMMENT ON COLUMN teacher_stats.weight IS 'Its vote weight ([[teachers]] weight); NULL for the judge.';
COMMENT ON COLUMN teacher_stats.rows_asked IS 'Rows the generate stage asked it about (in a cascade, only the rows earlier teachers failed).';
COMMENT ON COLUMN teacher_stats.calls IS 'Its teacher_call events: requests, cache hits and retries included.';
COMMENT ON COLUMN teacher_stats.cache_hits IS 'Of those, answered from the teacher cache.';
COMMENT ON COLUMN teacher_stats.call_errors IS 'Of those, failed.';
COMMENT ON COLUMN teacher_stats.prompt_tokens IS 'Prompt tokens over its calls.';
COMMENT ON COLUMN teacher_stats.completion_tokens IS 'Completion tokens over its calls.';
COMMENT ON COLUMN teacher_stats.cost_usd IS 'Its cost in USD over its calls (NULL when no call had a known price).';
COMMENT ON COLUMN teacher_stats.list_cost_usd IS 'What its answers would cost at its price, cached ones included (generate summary).';
COMMENT ON COLUMN teacher_stats.answered IS 'Filtered samples it gave an answer for (filter summary).';
COMMENT ON COLUMN teacher_stats.chosen IS 'Samples whose combined answer (the target) came from it.';
COMMENT ON COLUMN teacher_stats.accepted IS 'Of the chosen, the accepted ones.';
COMMENT ON COLUMN teacher_stats.acceptance_rate IS 'accepted / answered: the share of the samples it answered that trained the student with its answer.';
COMMENT ON COLUMN teacher_stats.agreement IS 'Share of its answered samples where its first answer equals the combined one (filter summary agreement_with_combined).';
COMMENT ON COLUMN teacher_stats.mean_judge_score IS 'Mean judge score of the samples whose target came from it (NULL without a judge).';
