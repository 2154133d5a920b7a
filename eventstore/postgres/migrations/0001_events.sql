-- The event store. One row per event; see DESIGN.md (Event store).
--
-- Global order is (transaction_id, position): position is assigned at insert,
-- so it does not follow commit order; transaction_id lets a reader stop below
-- the oldest transaction still in flight (pg_snapshot_xmin), so it never
-- skips an event that commits late. Appends to different streams never wait
-- for each other: no table lock, no global sequence lock.
CREATE TABLE events (
    position       bigint      GENERATED ALWAYS AS IDENTITY,
    transaction_id xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id       text        NOT NULL,
    stream_id      text        NOT NULL,
    category       text        NOT NULL,
    version        bigint      NOT NULL,
    type           text        NOT NULL,
    schema_version integer     NOT NULL,
    data           jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    recorded_at    timestamptz NOT NULL,
    prev_hash      bytea       NOT NULL,
    hash           bytea       NOT NULL,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_version_positive CHECK (version > 0)
);

CREATE INDEX events_global_order ON events (transaction_id, position);

-- Named positions in the global order (the relay's, each projection's).
CREATE TABLE checkpoints (
    name           text        PRIMARY KEY,
    transaction_id bigint      NOT NULL,
    position       bigint      NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- vega_append writes one Append call in one statement (one round trip):
-- expected-version check, hash chain, insert. It does not look for reused
-- event IDs: the UNIQUE constraint on event_id does, and the application then
-- calls vega_append_repeat to tell an idempotent repeat from a conflict, so
-- the common path pays for no extra lookups.
-- p_expected: -1 any, -2 stream exists, N >= 0 exact (0: no stream).
-- p_content[i] is the content hash the application computed
-- (eventstore.ContentHash); the chain hash is
-- sha256(prev_hash || int8send(version) || content).
-- Errors: SQLSTATE VGCON (message: the actual version) on a version
-- mismatch; 23505 on events_stream_version_key when a concurrent append to
-- the stream won the race, on events_event_id_key when an ID exists.
CREATE FUNCTION vega_append(
    p_stream text, p_category text, p_expected bigint,
    p_ids text[], p_types text[], p_schema_versions integer[],
    p_data jsonb[], p_metadata jsonb[], p_recorded_at timestamptz, p_content bytea[])
RETURNS TABLE (out_version bigint, out_tx xid8, out_position bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_n       integer := cardinality(p_ids);
    v_current bigint;
    v_prev    bytea;
    v_prevs   bytea[] := '{}';
    v_hashes  bytea[] := '{}';
BEGIN
    SELECT e.version, e.hash INTO v_current, v_prev
      FROM events e WHERE e.stream_id = p_stream ORDER BY e.version DESC LIMIT 1;
    IF NOT FOUND THEN
        v_current := 0;
        v_prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
    END IF;
    IF NOT (p_expected = -1 OR (p_expected = -2 AND v_current > 0) OR p_expected = v_current) THEN
        RAISE EXCEPTION USING ERRCODE = 'VGCON', MESSAGE = v_current::text;
    END IF;

    FOR i IN 1 .. v_n LOOP
        v_prevs[i] := v_prev;
        v_prev := sha256(v_prev || int8send(v_current + i) || p_content[i]);
        v_hashes[i] := v_prev;
    END LOOP;

    RETURN QUERY
    INSERT INTO events AS e (event_id, stream_id, category, version, type, schema_version,
                             data, metadata, recorded_at, prev_hash, hash)
    SELECT n.id, p_stream, p_category, v_current + n.ord, n.typ, n.sv, n.dat, n.met,
           p_recorded_at, v_prevs[n.ord], v_hashes[n.ord]
      FROM unnest(p_ids, p_types, p_schema_versions, p_data, p_metadata)
           WITH ORDINALITY AS n(id, typ, sv, dat, met, ord)
     ORDER BY n.ord
    RETURNING e.version, e.transaction_id, e.position;
END;
$$;

-- vega_append_batch runs several appends (of one process's concurrent
-- callers) in one statement and one transaction, so they share a round trip
-- and a commit. Append a covers p_counts[a] events starting after the sum of
-- the earlier counts. A version mismatch does not abort the batch: it
-- answers a row with out_version NULL and out_actual the stream's version,
-- and the other appends go on (appends of one stream run in order, each
-- seeing the ones before it). Any error (a reused event ID, a race with
-- another process) aborts the whole batch; the application then runs its
-- appends one by one through vega_append.
CREATE FUNCTION vega_append_batch(
    p_streams text[], p_categories text[], p_expected bigint[], p_counts integer[],
    p_ids text[], p_types text[], p_schema_versions integer[],
    p_data jsonb[], p_metadata jsonb[], p_recorded_at timestamptz[], p_content bytea[])
RETURNS TABLE (out_append integer, out_version bigint, out_tx xid8, out_position bigint, out_actual bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_off     integer := 0;
    v_n       integer;
    v_current bigint;
    v_prev    bytea;
    v_prevs   bytea[];
    v_hashes  bytea[];
BEGIN
    FOR a IN 1 .. cardinality(p_streams) LOOP
        v_n := p_counts[a];
        SELECT e.version, e.hash INTO v_current, v_prev
          FROM events e WHERE e.stream_id = p_streams[a] ORDER BY e.version DESC LIMIT 1;
        IF NOT FOUND THEN
            v_current := 0;
            v_prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
        END IF;
        IF NOT (p_expected[a] = -1 OR (p_expected[a] = -2 AND v_current > 0) OR p_expected[a] = v_current) THEN
            out_append := a; out_version := NULL; out_tx := NULL; out_position := NULL; out_actual := v_current;
            RETURN NEXT;
        ELSE
            v_prevs := '{}';
            v_hashes := '{}';
            FOR i IN 1 .. v_n LOOP
                v_prevs[i] := v_prev;
                v_prev := sha256(v_prev || int8send(v_current + i) || p_content[v_off + i]);
                v_hashes[i] := v_prev;
            END LOOP;
            RETURN QUERY
            INSERT INTO events AS e (event_id, stream_id, category, version, type, schema_version,
                                     data, metadata, recorded_at, prev_hash, hash)
            SELECT p_ids[v_off + k], p_streams[a], p_categories[a], v_current + k, p_types[v_off + k],
                   p_schema_versions[v_off + k], p_data[v_off + k], p_metadata[v_off + k],
                   p_recorded_at[v_off + k], v_prevs[k], v_hashes[k]
              FROM generate_series(1, v_n) AS k
             ORDER BY k
            RETURNING a, e.version, e.transaction_id, e.position, NULL::bigint;
        END IF;
        v_off := v_off + v_n;
    END LOOP;
END;
$$;

-- vega_append_repeat decides what an append that failed on a version or an
-- event ID really was (KurrentDB's idempotency rules):
--   none of the IDs stored            -> no rows (the conflict stands);
--   all stored in this stream, at consecutive versions in the call's order,
--   with the same type, schema version, data and metadata, and the
--   expectation held for the original write -> those rows (a repeat);
--   the same events but an expected version that does not describe where
--   they are -> VGIDM too (no retry could ever succeed: IDs are unique);
--   any other reuse (other content, stream or order, partial overlap) -> VGIDM
--   (message: the first offending event id; detail: why).
CREATE FUNCTION vega_append_repeat(
    p_stream text, p_expected bigint, p_ids text[], p_types text[], p_schema_versions integer[],
    p_data jsonb[], p_metadata jsonb[])
RETURNS TABLE (out_version bigint, out_tx xid8, out_position bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_n       integer := cardinality(p_ids);
    v_found   integer;
    v_first   bigint;
    v_bad     text;
BEGIN
    SELECT count(*), min(e.version) INTO v_found, v_first
      FROM events e WHERE e.event_id = ANY (p_ids);
    IF v_found = 0 THEN
        RETURN;
    END IF;
    SELECT n.id INTO v_bad
      FROM unnest(p_ids, p_types, p_schema_versions, p_data, p_metadata)
           WITH ORDINALITY AS n(id, typ, sv, dat, met, ord)
      LEFT JOIN events e ON e.event_id = n.id
     WHERE e.event_id IS NULL OR e.stream_id <> p_stream
        OR e.version <> v_first + n.ord - 1 OR e.type <> n.typ
        OR e.schema_version <> n.sv OR e.data <> n.dat OR e.metadata <> n.met
     ORDER BY n.ord LIMIT 1;
    IF v_bad IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = 'VGIDM', MESSAGE = v_bad,
            DETAIL = CASE WHEN v_found < v_n THEN 'partial overlap with an earlier append'
                          ELSE 'written before with other content or at another place' END;
    END IF;
    IF p_expected = -1 OR (p_expected = -2 AND v_first > 1) OR p_expected = v_first - 1 THEN
        RETURN QUERY SELECT e.version, e.transaction_id, e.position
          FROM events e WHERE e.event_id = ANY (p_ids) ORDER BY e.version;
        RETURN;
    END IF;
    RAISE EXCEPTION USING ERRCODE = 'VGIDM', MESSAGE = p_ids[1],
        DETAIL = format('written before at version %s, which expected version %s does not describe', v_first, p_expected);
END;
$$;

-- History is never rewritten through SQL by mistake. (Someone who owns the
-- database can disable these; the hash chain is what detects that.)
CREATE FUNCTION vega_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END;
$$;

CREATE TRIGGER events_no_update BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION vega_events_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION vega_events_append_only();
