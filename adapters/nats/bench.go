package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/eventstore"
)

// BenchStore is what the benchmarks need of an event store.
type BenchStore interface {
	RelayStore
	eventstore.Appender
}

// RelayFigures are the relay throughput figures of one BenchRelay run.
type RelayFigures struct {
	// Events is how many events were relayed.
	Events int
	// RelayPerSec is events per second from the store to the stream, acks
	// and checkpoints included.
	RelayPerSec float64
	// RawPerSec is the ceiling: the same message bodies and headers
	// published with raw JetStream async publishes (all in flight, one wait
	// at the end) to a stream of its own, in the same run.
	RawPerSec float64
}

// benchDataSize is the data of each benchmark event: a typical progress
// event.
const benchDataSize = 200

// BenchRelay appends n events to the store (not timed), then times a fresh
// relay publishing them all to a temporary stream, and times raw JetStream
// publishes of the same messages to a second temporary stream. Both streams
// are named after cfg.StreamName with a random suffix and deleted at the
// end; the relay's checkpoint name is random too. The store should be a
// fresh one: the relay publishes everything in it.
func BenchRelay(ctx context.Context, store BenchStore, nc *nats.Conn, cfg Config, n int) (RelayFigures, error) {
	fig := RelayFigures{Events: n}
	js, err := jetstream.New(nc)
	if err != nil {
		return fig, err
	}
	relayCfg, rawCfg, cleanup, err := benchStreams(ctx, js, cfg)
	if err != nil {
		return fig, err
	}
	defer cleanup()
	last, err := benchAppend(ctx, store, n)
	if err != nil {
		return fig, err
	}
	name := "bench-relay-" + strings.ToLower(ulid.Make().String())
	relay, err := NewRelay(store, nc, relayCfg, RelayOptions{Name: name})
	if err != nil {
		return fig, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- relay.Run(rctx) }()
	for {
		cp, err := store.LoadCheckpoint(ctx, name)
		if err != nil {
			cancel()
			<-done
			return fig, err
		}
		if !cp.Less(last) {
			break
		}
		if !sleep(ctx, time.Millisecond) {
			cancel()
			<-done
			return fig, ctx.Err()
		}
	}
	fig.RelayPerSec = float64(n) / time.Since(start).Seconds()
	cancel()
	<-done

	// Ceiling: the same messages, raw.
	var msgs []*nats.Msg
	after := eventstore.Position{}
	for len(msgs) < n {
		page, next, err := store.ReadAll(ctx, eventstore.Query{After: after, Limit: eventstore.DefaultReadLimit})
		if err != nil {
			return fig, err
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			m, err := newMsg(rawCfg.SubjectPrefix, e, nc.MaxPayload())
			if err != nil {
				return fig, err
			}
			msgs = append(msgs, m)
		}
		after = next
	}
	rawJS, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(len(msgs)+1))
	if err != nil {
		return fig, err
	}
	start = time.Now()
	futs := make([]jetstream.PubAckFuture, 0, len(msgs))
	for _, m := range msgs {
		f, err := rawJS.PublishMsgAsync(m)
		if err != nil {
			return fig, fmt.Errorf("raw publish: %w", err)
		}
		futs = append(futs, f)
	}
	for _, f := range futs {
		if _, err := awaitAck(ctx, f); err != nil {
			return fig, fmt.Errorf("raw publish: %w", err)
		}
	}
	fig.RawPerSec = float64(len(msgs)) / time.Since(start).Seconds()
	return fig, nil
}

// LatencyFigures are the append-to-consumer latencies of one BenchLatency run.
type LatencyFigures struct {
	Samples  int
	P50, P99 time.Duration
}

// BenchLatency runs a relay and a durable Consumer on a temporary stream,
// then appends n events one at a time and measures, for each, the time
// from the start of the Append call to the handler seeing the event.
func BenchLatency(ctx context.Context, store BenchStore, nc *nats.Conn, cfg Config, n int) (LatencyFigures, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return LatencyFigures{}, err
	}
	relayCfg, _, cleanup, err := benchStreams(ctx, js, cfg)
	if err != nil {
		return LatencyFigures{}, err
	}
	defer cleanup()
	head, err := store.Head(ctx)
	if err != nil {
		return LatencyFigures{}, err
	}
	name := "bench-latency-" + strings.ToLower(ulid.Make().String())
	// Start the relay at the head: only the measured events are published.
	if err := store.SaveCheckpoint(ctx, name, head); err != nil {
		return LatencyFigures{}, err
	}
	relay, err := NewRelay(store, nc, relayCfg, RelayOptions{Name: name})
	if err != nil {
		return LatencyFigures{}, err
	}
	seen := make(chan string, 1)
	cons, err := NewConsumer(ctx, js, relayCfg.StreamName, ConsumerConfig{Name: "bench", DeadLetters: discardDeadLetters{}},
		func(_ context.Context, env Envelope) error {
			seen <- env.EventID
			return nil
		})
	if err != nil {
		return LatencyFigures{}, err
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = relay.Run(rctx) }()
	go func() { _ = cons.Run(rctx) }()
	stream := eventstore.NewStreamIDULID("bench")
	data := benchData()
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		id := ulid.Make().String()
		start := time.Now()
		if _, err := store.Append(ctx, stream, eventstore.Any, eventstore.NewEvent{ID: id, Type: "BenchEvent", SchemaVersion: 1, Data: data}); err != nil {
			return LatencyFigures{}, err
		}
		select {
		case got := <-seen:
			if got != id {
				return LatencyFigures{}, fmt.Errorf("bench latency: consumer saw %s, want %s", got, id)
			}
		case <-time.After(30 * time.Second):
			return LatencyFigures{}, errors.New("bench latency: event not consumed within 30s")
		case <-ctx.Done():
			return LatencyFigures{}, ctx.Err()
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	return LatencyFigures{Samples: n, P50: lat[n*50/100], P99: lat[min(n-1, n*99/100)]}, nil
}

type discardDeadLetters struct{}

func (discardDeadLetters) Park(context.Context, DeadLetter) error { return nil }

// benchStreams creates two temporary streams (relay and raw ceiling) and
// returns their configurations and a cleanup that deletes them.
func benchStreams(ctx context.Context, js jetstream.JetStream, cfg Config) (relayCfg, rawCfg Config, cleanup func(), err error) {
	cfg, err = cfg.Validate()
	if err != nil {
		return cfg, cfg, nil, err
	}
	suffix := strings.ToLower(ulid.Make().String())
	relayCfg, rawCfg = cfg, cfg
	relayCfg.StreamName = cfg.StreamName + "_BENCH_" + strings.ToUpper(suffix)
	relayCfg.SubjectPrefix = cfg.SubjectPrefix + ".bench" + suffix
	rawCfg.StreamName = cfg.StreamName + "_BENCHRAW_" + strings.ToUpper(suffix)
	rawCfg.SubjectPrefix = cfg.SubjectPrefix + ".benchraw" + suffix
	relayCfg.MaxBytes, rawCfg.MaxBytes = 1<<30, 1<<30
	cleanup = func() {
		// A fresh context: the caller's may have ended, the streams must go.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = js.DeleteStream(dctx, relayCfg.StreamName)
		_ = js.DeleteStream(dctx, rawCfg.StreamName)
	}
	for _, c := range []Config{relayCfg, rawCfg} {
		if _, err := EnsureStream(ctx, js, c); err != nil {
			cleanup()
			return cfg, cfg, nil, err
		}
	}
	return relayCfg, rawCfg, cleanup, nil
}

func benchData() json.RawMessage {
	pad := strings.Repeat("x", benchDataSize-len(`{"phase":"engines","pad":""}`))
	return json.RawMessage(`{"phase":"engines","pad":"` + pad + `"}`)
}

// benchAppend appends n events in calls of 100, over 10 streams, and
// returns the last one's position.
func benchAppend(ctx context.Context, store eventstore.Appender, n int) (eventstore.Position, error) {
	var last eventstore.Position
	data := benchData()
	streams := make([]eventstore.StreamID, 10)
	for i := range streams {
		streams[i] = eventstore.NewStreamIDULID("bench")
	}
	for i := 0; i < n; {
		k := min(100, n-i)
		evs := make([]eventstore.NewEvent, k)
		for j := range evs {
			evs[j] = eventstore.NewEvent{ID: ulid.Make().String(), Type: "BenchEvent", SchemaVersion: 1, Data: data}
		}
		res, err := store.Append(ctx, streams[(i/100)%len(streams)], eventstore.Any, evs...)
		if err != nil {
			return last, fmt.Errorf("bench append: %w", err)
		}
		last = res.Position
		i += k
	}
	return last, nil
}
