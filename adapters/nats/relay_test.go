package nats_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/adapters/nats/bustest"
	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/eventstore/postgres"
	"github.com/vega-sec/vega/eventstore/sqlite"
	"github.com/vega-sec/vega/internal/pgtest"
)

// relayStore is an event store as these tests use it.
type relayStore interface {
	vnats.RelayStore
	eventstore.Appender
}

type storeFactory struct {
	name string
	open func(t testing.TB) relayStore
}

var stores = []storeFactory{
	{"sqlite", openSQLite},
	{"postgres", openPostgres},
}

func openSQLite(t testing.TB) relayStore {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func openPostgres(t testing.TB) relayStore {
	t.Helper()
	url := pgtest.Schema(t)
	ctx := context.Background()
	pool, err := postgres.NewPool(ctx, url, 2)
	if err != nil {
		t.Fatalf("pool: %v", err)
	}
	if _, err := postgres.Migrate(ctx, pool); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	pool.Close()
	s, err := postgres.Open(ctx, url, postgres.Options{})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// appendEvents appends n events, spread over a few streams (one with '.'
// and ':' in its ID), in calls of up to 10, and returns their IDs in
// append order. It records the last position in *last when last is not nil.
func appendEvents(t testing.TB, s eventstore.Appender, n int, last ...*eventstore.Position) []string {
	t.Helper()
	streams := []eventstore.StreamID{
		eventstore.NewStreamIDULID("scan"),
		eventstore.NewStreamIDULID("project"),
		"repository-acme.corp:web-" + eventstore.StreamID(ulid.Make().String()),
	}
	var ids []string
	for i := 0; i < n; {
		k := min(10, n-i)
		evs := make([]eventstore.NewEvent, k)
		for j := range evs {
			evs[j] = eventstore.NewEvent{ID: ulid.Make().String(), Type: "ThingHappened", SchemaVersion: 1, Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i+j))}
			ids = append(ids, evs[j].ID)
		}
		res, err := s.Append(context.Background(), streams[(i/10)%len(streams)], eventstore.Any, evs...)
		if err != nil {
			t.Fatalf("append: %v", err)
		}
		for _, l := range last {
			*l = res.Position
		}
		i += k
	}
	return ids
}

// streamIDs returns the Nats-Msg-Id of every message in the stream, in
// stream order, and fails if the sequence has holes.
func streamIDs(t testing.TB, js jetstream.JetStream, name string) []string {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("get msg %d: %v", seq, err)
		}
		ids = append(ids, m.Header.Get(vnats.HeaderMsgID))
	}
	return ids
}

// checkExactlyOnce fails unless the stream holds each of want once, in order.
func checkExactlyOnce(t testing.TB, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("stream holds %d messages, want %d", len(got), len(want))
	}
	seen := map[string]bool{}
	for i := range got {
		if seen[got[i]] {
			t.Fatalf("event %s stored twice", got[i])
		}
		seen[got[i]] = true
		if got[i] != want[i] {
			t.Fatalf("message %d is event %s, want %s (store order)", i+1, got[i], want[i])
		}
	}
}

type relayRun struct {
	relay  *vnats.Relay
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// startRelay runs a relay until stop (or cleanup).
func startRelay(t testing.TB, s vnats.RelayStore, nc *nats.Conn, cfg vnats.Config, opts vnats.RelayOptions) *relayRun {
	t.Helper()
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	if opts.PageSize == 0 {
		opts.PageSize = 50
	}
	if opts.RetryBase == 0 {
		opts.RetryBase, opts.RetryMax = 20*time.Millisecond, 200*time.Millisecond
	}
	r, err := vnats.NewRelay(s, nc, cfg, opts)
	if err != nil {
		t.Fatalf("new relay: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &relayRun{relay: r, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { run.done <- r.Run(ctx) }()
	t.Cleanup(func() { run.stop(t) })
	return run
}

func (r *relayRun) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("relay run: %v", err)
	}
	r.done <- nil // later stops return at once
}

func metric(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.Metric) == 1 {
			m := mf.Metric[0]
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

// waitCaughtUp waits until the relay's checkpoint covers last. (Not the
// store's Head: on PostgreSQL it may lag behind a commit while another
// transaction on the server is open.)
func waitCaughtUp(t testing.TB, s vnats.RelayStore, name string, last eventstore.Position) {
	t.Helper()
	bustest.Eventually(t, "relay checkpoint reaches "+last.String(), func() bool {
		cp, err := s.LoadCheckpoint(context.Background(), name)
		return err == nil && !cp.Less(last)
	})
}

func TestRelay(t *testing.T) {
	t.Parallel()
	buses := []struct {
		name    string
		connect func(t *testing.T) *nats.Conn
	}{
		{"embedded", func(t *testing.T) *nats.Conn { return bustest.ConnectEmbedded(t) }},
		{"external", func(t *testing.T) *nats.Conn { return bustest.ConnectExternal(t) }},
	}
	for _, st := range stores {
		for _, bus := range buses {
			t.Run(st.name+"/"+bus.name, func(t *testing.T) {
				t.Parallel()
				s := st.open(t)
				nc := bus.connect(t)
				cfg := bustest.Config(t)
				js := bustest.EnsureStream(t, nc, cfg)

				var last eventstore.Position
				before := appendEvents(t, s, 230, &last) // several pages before the relay starts
				run := startRelay(t, s, nc, cfg, vnats.RelayOptions{})
				waitCaughtUp(t, s, vnats.DefaultRelayName, last)
				after := appendEvents(t, s, 35, &last) // live, after it caught up
				waitCaughtUp(t, s, vnats.DefaultRelayName, last)
				checkExactlyOnce(t, streamIDs(t, js, cfg.StreamName), append(before, after...))

				// Headers carry the store position and the envelope decodes
				// to the stored event.
				stored, _, err := s.ReadAll(context.Background(), eventstore.Query{Limit: 1})
				if err != nil {
					t.Fatal(err)
				}
				str, _ := js.Stream(context.Background(), cfg.StreamName)
				m, err := str.GetMsg(context.Background(), 1)
				if err != nil {
					t.Fatal(err)
				}
				if got := m.Header.Get(vnats.HeaderPosition); got != stored[0].Position.String() {
					t.Errorf("position header %q, want %q", got, stored[0].Position)
				}
				env, err := vnats.DecodeEnvelope(m.Data)
				if err != nil {
					t.Fatal(err)
				}
				if env.EventID != stored[0].ID || env.StreamID != stored[0].StreamID || env.Version != stored[0].Version ||
					!env.RecordedAt.Equal(stored[0].RecordedAt) || compact(t, env.Data) != compact(t, stored[0].Data) {
					t.Errorf("envelope %+v does not match stored event %+v", env, stored[0])
				}
				if got := metric(t, run.reg, "vega_relay_published_total"); got != 265 {
					t.Errorf("published_total %v, want 265", got)
				}
				if got := metric(t, run.reg, "vega_relay_lag_events"); got != 0 {
					t.Errorf("lag_events %v after catching up, want 0", got)
				}
			})
		}
	}
}

// compact returns JSON without insignificant space (jsonb adds some; the
// envelope's encoder removes it).
func compact(t testing.TB, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compact %s: %v", b, err)
	}
	return buf.String()
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// ownedServer is a NATS server only this test uses, on TCP, so that it can
// be stopped and started again on the same port and store.
type ownedServer struct {
	cfg vnats.Config
	srv *vnats.Server
}

func startOwned(t *testing.T) *ownedServer {
	t.Helper()
	o := &ownedServer{cfg: vnats.Config{DataDir: t.TempDir(), Listen: freeAddr(t)}}
	o.start(t)
	t.Cleanup(func() { _ = o.srv.Close() })
	return o
}

func (o *ownedServer) start(t *testing.T) {
	t.Helper()
	srv, err := vnats.StartServer(context.Background(), o.cfg, nil)
	if err != nil {
		t.Fatalf("start owned nats: %v", err)
	}
	o.srv = srv
}

func (o *ownedServer) stop(t *testing.T) {
	t.Helper()
	if err := o.srv.Close(); err != nil {
		t.Fatalf("stop owned nats: %v", err)
	}
}

// connect dials the owned server as an external client would: reconnecting
// for ever.
func (o *ownedServer) connect(t *testing.T) *nats.Conn {
	t.Helper()
	nc, closer, err := vnats.Connect(context.Background(), vnats.Config{URL: "nats://" + o.cfg.Listen}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = closer() })
	return nc
}

// Fault (a): NATS stops while commands append; appends succeed; when the
// server returns on the same store, every event is in the stream once.
func TestRelayFaultNATSDown(t *testing.T) {
	t.Parallel()
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			s := st.open(t)
			o := startOwned(t)
			nc := o.connect(t)
			cfg := bustest.Config(t)
			cfg.AckTimeout = 300 * time.Millisecond // fail fast while the server is away
			js := bustest.EnsureStream(t, nc, cfg)
			run := startRelay(t, s, nc, cfg, vnats.RelayOptions{})

			var last eventstore.Position
			ids := appendEvents(t, s, 60, &last)
			waitCaughtUp(t, s, vnats.DefaultRelayName, last)

			o.stop(t)
			ids = append(ids, appendEvents(t, s, 140, &last)...) // appends succeed with NATS away
			bustest.Eventually(t, "relay reports publish errors", func() bool {
				return metric(t, run.reg, "vega_relay_publish_errors_total") > 0
			})
			if cp, _ := s.LoadCheckpoint(context.Background(), vnats.DefaultRelayName); !cp.Less(last) {
				t.Fatalf("checkpoint %s covers the last append %s while NATS was down", cp, last)
			}

			o.start(t) // same port, same store dir
			waitCaughtUp(t, s, vnats.DefaultRelayName, last)
			checkExactlyOnce(t, streamIDs(t, js, cfg.StreamName), ids)
		})
	}
}

// cpKiller is a store whose SaveCheckpoint, once armed, kills the relay
// instead of saving: the relay dies between publish and checkpoint.
type cpKiller struct {
	vnats.RelayStore
	kill  context.CancelFunc
	armed atomic.Bool
	mu    sync.Mutex
	hits  int
}

func (k *cpKiller) SaveCheckpoint(ctx context.Context, name string, pos eventstore.Position) error {
	if k.armed.Load() {
		k.mu.Lock()
		k.hits++
		k.mu.Unlock()
		k.kill()
		return errors.New("killed before the checkpoint")
	}
	return k.RelayStore.SaveCheckpoint(ctx, name, pos)
}

// Fault (b): the relay is killed between publish and checkpoint; after a
// restart nothing is lost and the repeat is absorbed by Nats-Msg-Id.
func TestRelayFaultKilledBeforeCheckpoint(t *testing.T) {
	t.Parallel()
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			t.Parallel()
			s := st.open(t)
			nc := bustest.ConnectEmbedded(t)
			cfg := bustest.Config(t)
			js := bustest.EnsureStream(t, nc, cfg)

			first := appendEvents(t, s, 70) // one page of 50, then 20
			ctx, cancel := context.WithCancel(context.Background())
			killer := &cpKiller{RelayStore: s, kill: cancel}
			killer.armed.Store(true)
			dying, err := vnats.NewRelay(killer, nc, cfg, vnats.RelayOptions{PageSize: 50})
			if err != nil {
				t.Fatal(err)
			}
			if err := dying.Run(ctx); err != nil {
				t.Fatalf("killed relay returned %v", err)
			}
			// The first page: 50 events, or fewer when PostgreSQL's
			// visibility horizon lagged behind the last commits.
			page := streamIDs(t, js, cfg.StreamName)
			if len(page) == 0 || len(page) > 50 || !slices.Equal(page, first[:len(page)]) {
				t.Fatalf("after the kill the stream holds %d messages, want the first page (1 to 50, in order)", len(page))
			}
			if cp, _ := s.LoadCheckpoint(context.Background(), vnats.DefaultRelayName); !cp.IsZero() {
				t.Fatalf("checkpoint %s saved by a killed relay", cp)
			}

			var last eventstore.Position
			second := appendEvents(t, s, 30, &last)
			run := startRelay(t, s, nc, cfg, vnats.RelayOptions{PageSize: 50})
			waitCaughtUp(t, s, vnats.DefaultRelayName, last)
			checkExactlyOnce(t, streamIDs(t, js, cfg.StreamName), append(first, second...))
			if got := metric(t, run.reg, "vega_relay_duplicates_total"); got != float64(len(page)) {
				t.Errorf("duplicates_total %v, want %d (the republished first page)", got, len(page))
			}
		})
	}
}

// Fault (c), end to end: store → relay → consumer with a handler that keeps
// failing on one event type: redelivered, parked once, others unaffected.
func TestRelayToConsumerParksPoison(t *testing.T) {
	t.Parallel()
	s := openSQLite(t)
	nc := bustest.ConnectEmbedded(t)
	cfg := bustest.Config(t)
	js := bustest.EnsureStream(t, nc, cfg)
	startRelay(t, s, nc, cfg, vnats.RelayOptions{})

	var mu sync.Mutex
	handled := map[string]int{}
	dls := &bustest.MemDeadLetters{}
	c, err := vnats.NewConsumer(context.Background(), js, cfg.StreamName, vnats.ConsumerConfig{
		Name: "e2e", DeadLetters: dls, MaxDeliver: 3, NakDelay: 5 * time.Millisecond, AckWait: 5 * time.Second,
		FilterSubject: vnats.CategorySubject(cfg.SubjectPrefix, "scan"),
	}, func(_ context.Context, env vnats.Envelope) error {
		mu.Lock()
		handled[env.EventID]++
		mu.Unlock()
		if env.Type == "Poison" {
			return errors.New("always fails")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()

	stream := eventstore.NewStreamIDULID("scan")
	var ids []string
	for i := 0; i < 5; i++ {
		typ := "ScanProgressed"
		if i == 2 {
			typ = "Poison"
		}
		e := eventstore.NewEvent{ID: ulid.Make().String(), Type: typ, SchemaVersion: 1, Data: json.RawMessage(`{}`)}
		if _, err := s.Append(context.Background(), stream, eventstore.Any, e); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	bustest.Eventually(t, "poison parked", func() bool { return dls.Len() == 1 })
	bustest.Eventually(t, "others handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 5
	})
	mu.Lock()
	defer mu.Unlock()
	for i, id := range ids {
		want := 1
		if i == 2 {
			want = 3
		}
		if handled[id] != want {
			t.Errorf("event %d handled %d times, want %d", i, handled[id], want)
		}
	}
}
