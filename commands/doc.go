// Package commands is Vega's write side: one handler per command, each of
// which loads the aggregates it needs from the event store, asks the domain
// to decide, and appends the decided events at the version it loaded.
//
// The pieces:
//
//   - NewRegistry registers the whole domain event catalogue with an
//     eventstore codec registry; EncodeEvent and DecodeEvents translate
//     between domain events and stored events.
//   - WithRequest puts the request's identity (actor, correlation and
//     causation IDs) in the context; every appended event carries it as
//     eventstore.Metadata. A command without an actor is refused.
//   - Repository loads a stream page by page, decodes it and folds it with
//     the domain's Fold function (the same code path audit replay uses), and
//     appends decisions at eventstore.Exact(version) with fresh ULID event IDs.
//   - Handlers, built by New, holds one Handler per command, each wrapped
//     in the same decorators: WithLogging (log line, Prometheus counter and
//     histogram) and WithRetry (re-runs the whole handler, fresh load
//     included, on eventstore.ErrConcurrency).
//
// Authorization is not checked here: the HTTP layer decides who may issue a
// command; handlers only validate input against the domain. Errors carry the
// domain's kinds (domain.ErrInvalidArgument, ErrNotFound, ErrConflict and
// their typed forms), so errors.Is maps them to HTTP statuses in one place.
//
// Every command result carries the global eventstore.Position of its append
// (zero when the command decided nothing), so that a caller can wait for the
// read models to reach it before answering: read-your-own-writes.
package commands
