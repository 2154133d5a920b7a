// Package projections builds Vega's read models from the event store and
// keeps them current.
//
// A Runner runs one worker per projection (Names: projects, repositories,
// scans, findings, issues, activity, access). Each reads the global order
// from its checkpoint, filtered by the categories and types it needs, and
// applies every page of events and moves its checkpoint in ONE database
// transaction, so that each event is applied exactly once in effect across
// crashes. Then it follows the store live on wake-up. An event a
// projection cannot apply (it does not decode, it breaks a constraint, it
// contradicts the read model) stops that projection with its name,
// position, event and reason in Status, the vega_projection_failed gauge
// and its state row; it is never skipped, and the other projections go on.
// WaitFor gives the HTTP layer read-your-own-writes.
//
// Within a page, writes that repeat (a scan's findings, the activity feed,
// new issues, a scan's counts) are grouped: rows go in multi-row INSERTs
// (PostgreSQL: one INSERT … SELECT FROM unnest of one array per column)
// and counter increments in one UPDATE per row, each flushed before any
// statement that names its table. A grouped page that fails is applied
// again event by event, so that the failure names the exact event. A
// projection behind reads bigger pages (Config.CatchUpPageSize), and a
// rebuild reads its next page while it applies one.
//
// The read models live in the database of the events (SQLite: through the
// store's one writer; PostgreSQL: database/sql over pgx) and share one set
// of statements through a small Dialect layer. Every read-model table
// exists in generations: the projection writes "<table>_g<N>" and queries
// read the view "<table>", which points at the live generation. Rebuild
// fills generation N+1 from position zero while generation N serves, then
// swaps the views, drops N and moves the checkpoint in one transaction.
// Changing a projection's tables means raising its version: the Runner
// then rebuilds it at start, so read-model schemas are never migrated in
// place. The bookkeeping table projection_state (generation, schema
// version, checkpoint, state, error) is migrated by Migrate, recorded in
// readmodel_migrations.
package projections
