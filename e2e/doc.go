// Package e2e holds Vega's end-to-end tests. They build the real `vega`
// binary once and drive it only through its HTTP API and process signals,
// in both runtime shapes of DESIGN.md:
//
//   - one machine: `vega dev` on a temporary data dir (SQLite, embedded
//     NATS, blobs on disk, in-process runners);
//   - distributed: `vega migrate`, then `vega api` and `vega worker` as
//     separate processes on PostgreSQL (a schema per test), an external
//     NATS JetStream (a stream and subject prefix per test) and S3 (an
//     in-process gofakes3 server), with runners as child processes.
//
// The distributed tests need the shared services of the test machine
// (VEGA_TEST_DATABASE_URL, VEGA_TEST_NATS_URL); when one is unreachable
// they fail with CI=true and skip loudly otherwise.
//
// The package has no API: everything is in its _test.go files.
package e2e
