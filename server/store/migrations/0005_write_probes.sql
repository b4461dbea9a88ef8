-- A replica whose commits stopped being confirmed (a synchronous standby away, a primary that
-- hangs) reports NOT_SERVING, and probes with a one-row write of its own until a commit is
-- confirmed again. One row per replica; rows of replicas gone for a day are removed by the
-- probes themselves.
CREATE TABLE write_probes (
    replica text PRIMARY KEY,
    at timestamptz NOT NULL
);
