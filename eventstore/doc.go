// Package eventstore defines Vega's append-only event store: stream IDs,
// expected versions, new and recorded events, the Store ports, the codec
// registry with read-time upcasters, and the per-stream SHA-256 hash chain.
//
// Implementations live in the sub-packages postgres and sqlite; both pass the
// conformance suite in storetest. The contract every implementation keeps:
//
//   - Append is atomic (all events of a call or none) and checks the expected
//     version; a mismatch is a *ConcurrencyError (errors.Is ErrConcurrency)
//     that carries the actual version, never a driver error.
//   - Re-sending the same event IDs at the same expected version succeeds and
//     writes nothing; the same IDs with other content, or a partial overlap, is
//     an *IdempotencyError (errors.Is ErrDuplicateEvent).
//   - Versions within a stream are 1, 2, 3 … with no gaps.
//   - A reader that follows the global order (ReadAll from a Position, then
//     Wait) receives every committed event exactly once, in an order that all
//     readers share, even when transactions commit out of order.
//   - Every event carries prev_hash and hash; VerifyChain names the first
//     version whose hash does not match its content.
package eventstore
