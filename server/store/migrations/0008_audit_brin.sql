-- audit_events only grows, in time order: a BRIN index on time (a few pages for millions of rows,
-- nothing to update for most inserts) serves retention deletes and `since` as well as the B-tree
-- did, which every audited call paid for with one more index insertion.
DROP INDEX audit_events_time;
CREATE INDEX audit_events_time ON audit_events USING brin (time);
