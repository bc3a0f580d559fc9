-- 0004: what Optuna recorded for each trial of a `still sweep`. At the end of a trial the sweep
-- appends a sweep_trial event to the trial's run (its objective, direction, value(s), Optuna state
-- and parameters); ingest keeps the latest one per run in sweep_results, and the sweeps view sums
-- them per sweep. Trials that failed before their run existed (a config clash) have no row.

CREATE TABLE sweep_results (
    run_id VARCHAR NOT NULL,
    sweep_id VARCHAR,
    trial INTEGER,
    state VARCHAR,
    objective VARCHAR,
    direction VARCHAR,
    value DOUBLE,
    second_objective VARCHAR,
    second_value DOUBLE,
    n_trials INTEGER,
    pruned_at_step BIGINT,
    params_json JSON,
    error VARCHAR,
    ts TIMESTAMP
);
COMMENT ON TABLE sweep_results IS 'One row per trial run of a `still sweep`: the objective value(s) and state Optuna recorded (its sweep_trial event).';
COMMENT ON COLUMN sweep_results.run_id IS 'The trial''s run (runs.run_id).';
COMMENT ON COLUMN sweep_results.sweep_id IS 'Sweep id (the folder $STILLHOUSE_HOME/sweeps/<sweep_id>/).';
COMMENT ON COLUMN sweep_results.trial IS 'Optuna trial number within the sweep.';
COMMENT ON COLUMN sweep_results.state IS 'How Optuna recorded the trial: complete | pruned | failed | interrupted.';
COMMENT ON COLUMN sweep_results.objective IS 'The objective: a metric of the task on the objective''s split (accuracy, f1, ...) or retention.';
COMMENT ON COLUMN sweep_results.direction IS 'maximize or minimize.';
COMMENT ON COLUMN sweep_results.value IS 'The objective value Optuna was told; NULL unless state is complete (retention in percent).';
COMMENT ON COLUMN sweep_results.second_objective IS 'A second objective (latency or size, minimised) of a multi-objective sweep, else NULL.';
COMMENT ON COLUMN sweep_results.second_value IS 'Its value (latency_p50_ms or weights_bytes), NULL without one.';
COMMENT ON COLUMN sweep_results.n_trials IS 'Trials the sweep was asked to finish (sweep.n_trials or --trials of the worker that ran this trial).';
COMMENT ON COLUMN sweep_results.pruned_at_step IS 'Training step of the last intermediate value of a pruned trial, else NULL.';
COMMENT ON COLUMN sweep_results.params_json IS 'The trial''s search-space values as a JSON object ({"train.learning_rate": 0.0003, ...}).';
COMMENT ON COLUMN sweep_results.error IS 'Why a failed trial failed, else NULL.';
COMMENT ON COLUMN sweep_results.ts IS 'When the sweep recorded the trial (UTC).';

CREATE VIEW sweeps AS
WITH
ranked AS (
    SELECT
        r.*,
        row_number() OVER (
            PARTITION BY r.sweep_id
            ORDER BY CASE WHEN r.direction = 'minimize' THEN r.value ELSE -r.value END NULLS LAST, r.trial
        ) AS rank
    FROM sweep_results r
    WHERE r.state = 'complete'
)
SELECT
    r.sweep_id,
    any_value(r.objective) AS objective,
    any_value(r.direction) AS direction,
    any_value(r.second_objective) AS second_objective,
    max(r.n_trials) AS n_trials,
    count(*) AS trials,
    count(*) FILTER (WHERE r.state = 'complete') AS complete,
    count(*) FILTER (WHERE r.state = 'pruned') AS pruned,
    count(*) FILTER (WHERE r.state NOT IN ('complete', 'pruned')) AS failed,
    any_value(b.value) AS best_value,
    any_value(b.trial) AS best_trial,
    any_value(b.run_id) AS best_run_id,
    min(u.created_at) AS started_at,
    max(r.ts) AS last_trial_at
FROM sweep_results r
LEFT JOIN ranked b ON b.sweep_id = r.sweep_id AND b.rank = 1
LEFT JOIN runs u ON u.run_id = r.run_id
GROUP BY r.sweep_id;
COMMENT ON VIEW sweeps IS 'One row per `still sweep` with recorded trials: objective, trial counts by state and the best complete trial (for a multi-objective sweep: best on the first objective; `still sweep show` gives the Pareto front).';
COMMENT ON COLUMN sweeps.sweep_id IS 'Sweep id.';
COMMENT ON COLUMN sweeps.objective IS 'The objective (first objective of a multi-objective sweep).';
COMMENT ON COLUMN sweeps.direction IS 'maximize or minimize.';
COMMENT ON COLUMN sweeps.second_objective IS 'latency or size for a multi-objective sweep, else NULL.';
COMMENT ON COLUMN sweeps.n_trials IS 'Trials asked for (the largest target any worker was given).';
COMMENT ON COLUMN sweeps.trials IS 'Trials recorded (runs with a sweep_trial event).';
COMMENT ON COLUMN sweeps.complete IS 'Of those, complete: they have an objective value.';
COMMENT ON COLUMN sweeps.pruned IS 'Of those, pruned early.';
COMMENT ON COLUMN sweeps.failed IS 'Of those, failed or interrupted.';
COMMENT ON COLUMN sweeps.best_value IS 'The best objective value of a complete trial.';
COMMENT ON COLUMN sweeps.best_trial IS 'Its trial number.';
COMMENT ON COLUMN sweeps.best_run_id IS 'Its run (runs.run_id).';
COMMENT ON COLUMN sweeps.started_at IS 'When the first recorded trial''s run started (UTC).';
COMMENT ON COLUMN sweeps.last_trial_at IS 'When the latest trial was recorded (UTC).';
