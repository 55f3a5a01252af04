-- tradecore audit mirror in PostgreSQL, schema version 1 (docs/audit-postgres.md).
-- Run by Migrate as the owner role, in one transaction. The owner owns every
-- object; the application role gets its grants from Migrate afterwards.

CREATE SCHEMA audit;
REVOKE ALL ON SCHEMA audit FROM PUBLIC;

-- Refuses any change to an append-only table. Row-level for UPDATE and
-- DELETE (PostgreSQL clones row triggers to every partition), statement-level
-- for TRUNCATE (not cloned: ensure_partitions adds it to each partition).
CREATE FUNCTION audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RAISE EXCEPTION 'audit: % on %.% refused: audit tables are append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING ERRCODE = 'TC010',
          HINT = 'old partitions leave only through tradecore audit retention drop, after export';
END $$;

CREATE TABLE audit.schema_version (
  version    int         PRIMARY KEY,
  applied_at timestamptz NOT NULL DEFAULT now(),
  applied_by name        NOT NULL DEFAULT session_user
);

-- One row per leaf of the local log. ts is the record's time in nanoseconds
-- since the Unix epoch (UTC); partitions are UTC days of ts. leaf is the
-- record's canonical JSON, byte for byte.
CREATE TABLE audit.leaves (
  idx  bigint NOT NULL CONSTRAINT leaves_idx_ok  CHECK (idx >= 0),
  ts   bigint NOT NULL CONSTRAINT leaves_ts_ok   CHECK (ts >= 0),
  type text   NOT NULL CONSTRAINT leaves_type_ok CHECK (type <> '' AND octet_length(type) <= 128),
  leaf bytea  NOT NULL CONSTRAINT leaves_leaf_ok CHECK (octet_length(leaf) > 0)
) PARTITION BY RANGE (ts);
-- Rows arrive in index (and nearly in time) order, so a BRIN index finds an
-- index or a time within a partition for almost no write cost; uniqueness
-- is audit.batches' job (below), across partitions.
CREATE INDEX leaves_brin ON audit.leaves USING brin (idx, ts);

-- One row per committed copy: the run of indexes [lower, upper) it brought.
-- The exclusion constraint is the unique key over indexes that a partitioned
-- table cannot have: no index is ever stored twice, across all partitions.
-- The after-insert trigger on leaves writes these rows; nobody else can.
CREATE TABLE audit.batches (
  idxs             int8range   NOT NULL,
  first_ts         bigint      NOT NULL,
  last_ts          bigint      NOT NULL,
  last_leaf_sha256 bytea       NOT NULL,
  copied_at        timestamptz NOT NULL DEFAULT now(),
  copied_by        name        NOT NULL DEFAULT session_user,
  CONSTRAINT batches_idxs_ok CHECK (NOT isempty(idxs) AND NOT lower_inf(idxs) AND NOT upper_inf(idxs) AND lower(idxs) >= 0),
  CONSTRAINT batches_no_overlap EXCLUDE USING gist (idxs WITH &&)
);
CREATE UNIQUE INDEX batches_upper ON audit.batches ((upper(idxs)));

-- Exports made by tradecore audit retention export, and partitions dropped by
-- tradecore audit retention drop. audit_index is the leaf index of the audit
-- record that recorded the action in the local log.
CREATE TABLE audit.exports (
  partition    name        NOT NULL,
  day          date        NOT NULL,
  rows         bigint      NOT NULL,
  first_idx    bigint,
  last_idx     bigint,
  jsonl_sha256 bytea       NOT NULL,
  audit_index  bigint      NOT NULL,
  exported_at  timestamptz NOT NULL DEFAULT now(),
  exported_by  name        NOT NULL DEFAULT session_user
);
CREATE TABLE audit.retired (
  partition    name        NOT NULL PRIMARY KEY,
  day          date        NOT NULL,
  rows         bigint      NOT NULL,
  jsonl_sha256 bytea       NOT NULL,
  audit_index  bigint      NOT NULL,
  dropped_at   timestamptz NOT NULL DEFAULT now(),
  dropped_by   name        NOT NULL DEFAULT session_user
);

-- Checks every insert statement into leaves (COPY included) as a whole: its
-- rows are distinct consecutive indexes starting exactly at the next index
-- to copy, and records them in batches. SECURITY DEFINER so the application
-- role needs no privilege on batches.
CREATE FUNCTION audit.leaves_check_batch() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n bigint; nd bigint; lo bigint; hi bigint; fts bigint; lts bigint; nxt bigint; h bytea;
BEGIN
  SELECT count(*), count(DISTINCT idx), min(idx), max(idx), min(ts), max(ts)
    INTO n, nd, lo, hi, fts, lts FROM new_rows;
  IF n = 0 THEN
    RETURN NULL;
  END IF;
  IF nd <> n OR hi - lo + 1 <> n THEN
    RAISE EXCEPTION 'audit: the % rows of one insert are not distinct consecutive indexes (% to %)', n, lo, hi
      USING ERRCODE = 'TC001', HINT = 'copy entries in index order, without gaps or repeats';
  END IF;
  SELECT coalesce(max(upper(idxs)), 0) INTO nxt FROM audit.batches;
  IF lo <> nxt THEN
    RAISE EXCEPTION 'audit: insert starts at index %, but the next index to copy is %', lo, nxt
      USING ERRCODE = 'TC002', HINT = 'read the next index from audit.batches and resume there';
  END IF;
  SELECT sha256(leaf) INTO h FROM new_rows WHERE idx = hi;
  -- A concurrent insert that read the same nxt collides here on
  -- batches_no_overlap and fails: of two racing copies one commits.
  INSERT INTO audit.batches (idxs, first_ts, last_ts, last_leaf_sha256)
    VALUES (int8range(lo, hi + 1), fts, lts, h);
  RETURN NULL;
END $$;

CREATE TRIGGER leaves_check_batch AFTER INSERT ON audit.leaves
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit.leaves_check_batch();
-- Statement triggers fire only for the table a statement names, so every
-- partition gets the same check (ensure_partitions adds it): an insert
-- straight into a partition is held to the same rule.
CREATE TRIGGER leaves_append_only BEFORE UPDATE OR DELETE ON audit.leaves
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER leaves_no_truncate BEFORE TRUNCATE ON audit.leaves
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

CREATE TRIGGER batches_append_only BEFORE UPDATE OR DELETE ON audit.batches
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER batches_no_truncate BEFORE TRUNCATE ON audit.batches
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER exports_append_only BEFORE UPDATE OR DELETE ON audit.exports
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER exports_no_truncate BEFORE TRUNCATE ON audit.exports
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER retired_append_only BEFORE UPDATE OR DELETE ON audit.retired
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER retired_no_truncate BEFORE TRUNCATE ON audit.retired
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER schema_version_append_only BEFORE UPDATE OR DELETE ON audit.schema_version
  FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER schema_version_no_truncate BEFORE TRUNCATE ON audit.schema_version
  FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

-- Creates the missing daily partitions from_day..to_day (UTC), each with its
-- TRUNCATE trigger and its own insert check. The application role may call it for at most 63 days at
-- a time and at most 31 days past today; the owner for any range. Returns how
-- many partitions it made.
CREATE FUNCTION audit.ensure_partitions(from_day date, to_day date) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  d date; made int := 0; part text; lo bigint; owner name;
BEGIN
  IF from_day IS NULL OR to_day IS NULL OR to_day < from_day OR from_day < date '1970-01-01' THEN
    RAISE EXCEPTION 'audit: bad partition range % to %', from_day, to_day
      USING ERRCODE = 'TC020', HINT = 'give two UTC days from 1970-01-01 on, the first not after the second';
  END IF;
  SELECT c.relowner::regrole::name INTO owner FROM pg_class c WHERE c.oid = 'audit.leaves'::regclass;
  IF session_user <> owner AND to_day - from_day > 62 THEN
    RAISE EXCEPTION 'audit: % days of partitions asked for at once; at most 63', to_day - from_day + 1
      USING ERRCODE = 'TC020', HINT = 'ask for fewer days per call';
  END IF;
  d := from_day;
  WHILE d <= to_day LOOP
    part := 'leaves_' || to_char(d, 'YYYYMMDD');
    IF EXISTS (SELECT 1 FROM audit.retired r WHERE r.partition = part) THEN
      RAISE EXCEPTION 'audit: partition % was retired and is not made again', part
        USING ERRCODE = 'TC022', HINT = 'a record dated that day is arriving now: check the engine clock';
    END IF;
    IF to_regclass(format('audit.%I', part)) IS NULL THEN
      IF session_user <> owner AND d > (now() AT TIME ZONE 'UTC')::date + 31 THEN
        RAISE EXCEPTION 'audit: partition for % is more than 31 days ahead of the database clock', d
          USING ERRCODE = 'TC021', HINT = 'check the clocks of the engine and the database; the owner can make it with tradecore audit pg migrate --through';
      END IF;
      lo := (d - date '1970-01-01')::bigint * 86400000000000;
      BEGIN
        EXECUTE format('CREATE TABLE audit.%I PARTITION OF audit.leaves FOR VALUES FROM (%s) TO (%s)',
                       part, lo, lo + 86400000000000);
        EXECUTE format('CREATE TRIGGER no_truncate BEFORE TRUNCATE ON audit.%I FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()', part);
        EXECUTE format('CREATE TRIGGER check_batch AFTER INSERT ON audit.%I REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION audit.leaves_check_batch()', part);
        EXECUTE format('REVOKE ALL ON audit.%I FROM PUBLIC', part);
        made := made + 1;
      EXCEPTION WHEN duplicate_table THEN
        NULL; -- made by a concurrent call
      END;
    END IF;
    d := d + 1;
  END LOOP;
  RETURN made;
END $$;

REVOKE ALL ON FUNCTION audit.refuse_change() FROM PUBLIC;
REVOKE ALL ON FUNCTION audit.leaves_check_batch() FROM PUBLIC;
REVOKE ALL ON FUNCTION audit.ensure_partitions(date, date) FROM PUBLIC;

INSERT INTO audit.schema_version (version) VALUES (1);
