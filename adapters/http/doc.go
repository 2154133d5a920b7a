// Package httpapi is Vega's HTTP adapter: the JSON API of /work/shared/API.md
// on a chi router, its authentication and project-scoped authorization,
// read-your-own-writes, the live SSE feeds fed by one in-process Hub, audit
// replay and hash-chain verification, health, readiness, Prometheus metrics
// and the OpenAPI 3.1 document.
//
// The package is named httpapi so that it does not shadow net/http.
//
// Shape:
//
//   - New builds a Server from Deps (the command handlers, the query
//     service, the event store, the projections' progress, the bus check,
//     the live Feed) and Config (limits and intervals, every one with a
//     named default). Handler serves every route; Serve also runs the Hub
//     and shuts down gracefully when its context ends.
//   - Errors are mapped to statuses and the body
//     {"error": {"code", "message"}} in one place (writeError), from the
//     domain's typed errors and this package's sentinels; only internal
//     errors are logged, and their text never reaches the client.
//   - Every command waits, bounded by Config.ConsistencyTimeout, for the
//     read models to reach its position, then answers with the object read
//     back through the query service.
//   - Uploads stream: a snapshot archive goes from the request body to
//     the snapshot service (Deps.Snapshots), which spools it to a temporary
//     file and refuses more than Config.MaxSnapshotBytes; a SARIF document
//     goes to the SARIF uploader (Deps.SARIF), at most MaxSARIFBytes. Both
//     routes run under Config.UploadTimeout instead of RequestTimeout.
//   - Scan diffs and SARIF exports are computed from the event store by
//     the classification reader (Deps.Classifications), so they never lag
//     behind the classifier; a scan not classified yet is a 409.
//   - SSE: one Feed (a JetStream ordered consumer) per process feeds the
//     Hub, which fans each event out to the connections of its scan or of
//     the activity feed. A connection subscribes first, replays from the
//     event store, then drains what the Hub buffered meanwhile, skipping
//     what the replay sent: no loss, no duplicates.
//   - Stream tokens (POST /api/v1/stream-tokens) are stateless: an
//     HMAC-SHA-256 signed, expiring grant of one principal to one scan's
//     feed or to the activity feed, accepted as ?access_token= on the SSE
//     routes only. Any API process configured with the same
//     Config.StreamTokenKey accepts them; with no key, each process makes a
//     random one and its tokens are valid on that process only.
package httpapi
