-- What carried each audited call: "grpc", "connect" (the Connect protocol on the HTTP listener)
-- or "http" (the REST read paths). Rows written before this migration came over gRPC or the
-- REST reads; they say "grpc".
ALTER TABLE audit_events ADD COLUMN transport text NOT NULL DEFAULT 'grpc';
