// Package nats is Vega's bus adapter: NATS JetStream, either embedded in the
// process (nats-server as a library, for `vega dev`) or external (a cluster,
// for the distributed shape). The code that talks to the embedded server is
// the code that talks to a cluster.
//
// What it provides:
//
//   - Connect and StartServer: a connected *nats.Conn, to an embedded server
//     (file store under <DataDir>/nats, no TCP port unless Config.Listen is
//     set) or to Config.URL.
//   - EnsureStream: the one stream (default VEGA_EVENTS) that holds every
//     event under <SubjectPrefix>.>.
//   - Publisher and Relay: the relay tails the event store in global order,
//     under the store's leader lock, and publishes each event to
//     <prefix>.<category>.<stream_id>.<type> with Nats-Msg-Id = event ID, so a
//     page published twice (a relay killed between publish and checkpoint,
//     a retry after NATS came back) is stored once when the repeat falls
//     within the stream's duplicate window.
//   - Consumer: a durable pull consumer that acks explicitly, keeps long
//     handlers alive with in-progress acks, and parks a message that failed
//     MaxDeliver times in DeadLetters before it terminates it.
//   - Subscribe: an ordered (ephemeral) consumer for live fan-out.
//   - DeadLetterQueue: lists and replays parked messages.
//
// Server versions. The embedded server is current; the external one may be
// as old as 2.9. Everything here works on 2.9: one filter subject per
// consumer, Msg-Id deduplication, durable and ordered consumers, Nak with
// delay. Features of newer servers are used only after ServerVersion says
// the connected server has them (stream compression and metadata need 2.10);
// see EnsureStream.
package nats
