// Package bustest is the conformance suite of Vega's bus: every NATS server
// Vega runs on (the embedded one, an external 2.9+ cluster) must pass Run.
// It also holds the helpers bus tests share: connections to an embedded or
// external server, per-test stream names, events, and an in-memory
// DeadLetterStore.
package bustest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/eventstore"
)

// DefaultExternalURL is the external server tests use when
// VEGA_TEST_NATS_URL is unset.
const DefaultExternalURL = "nats://127.0.0.1:4222"

// WaitTimeout bounds every wait of the suite for something to arrive. It is
// a deadline for failure, never a measure of speed.
const WaitTimeout = 20 * time.Second

// ConnectExternal connects to VEGA_TEST_NATS_URL (default
// DefaultExternalURL). When the server is unreachable the test fails if
// CI=true and is skipped, loudly, otherwise. The connection closes at
// cleanup.
func ConnectExternal(t testing.TB) *nats.Conn {
	t.Helper()
	url := os.Getenv("VEGA_TEST_NATS_URL")
	if url == "" {
		url = DefaultExternalURL
	}
	nc, err := nats.Connect(url, nats.Name("vega-test"), nats.Timeout(3*time.Second))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("nats unreachable at %s: %v", url, err)
		}
		t.Skipf("NATS UNREACHABLE at %s (%v): skipping; set CI=true to make this a failure", url, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// StartEmbedded starts an embedded server with its store in a fresh temp
// dir (or cfg.DataDir when set) and stops it at cleanup.
func StartEmbedded(t testing.TB, cfg vnats.Config) *vnats.Server {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	srv, err := vnats.StartServer(context.Background(), cfg, nil)
	if err != nil {
		t.Fatalf("start embedded nats: %v", err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// ConnectEmbedded starts an embedded server (see StartEmbedded) and returns
// an in-process connection to it, closed at cleanup.
func ConnectEmbedded(t testing.TB) *nats.Conn {
	t.Helper()
	srv := StartEmbedded(t, vnats.Config{})
	nc, err := srv.Connect(context.Background())
	if err != nil {
		t.Fatalf("connect to embedded nats: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Config returns a bus configuration whose stream name and subject prefix
// are unique to this test, with small limits, so tests sharing a server
// never collide.
func Config(t testing.TB) vnats.Config {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	return vnats.Config{
		URL:           "nats://unused", // not embedded: no DataDir needed
		StreamName:    "VEGA_TEST_" + strings.ToUpper(suffix),
		SubjectPrefix: "vegatest." + suffix,
		MaxAge:        time.Hour,
		MaxBytes:      64 << 20,
	}
}

// errCodeStreamCreate is JetStream's "error creating store for stream".
const errCodeStreamCreate jetstream.ErrorCode = 10049

// EnsureStream creates the stream of cfg on nc and deletes it at cleanup.
func EnsureStream(t testing.TB, nc *nats.Conn, cfg vnats.Config) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	// nats-server 2.9 may fail a stream create with "error creating store
	// for stream" while another client deletes the account's last stream
	// (it removes the streams directory under the create); retry that.
	for attempt := 1; ; attempt++ {
		_, err := vnats.EnsureStream(ctx, js, cfg)
		if err == nil {
			break
		}
		var apiErr *jetstream.APIError
		if attempt < 5 && errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStreamCreate {
			time.Sleep(time.Duration(attempt) * 20 * time.Millisecond)
			continue
		}
		t.Fatalf("ensure stream: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := js.DeleteStream(ctx, cfg.StreamName); err != nil && !nc.IsClosed() {
			t.Logf("delete stream %s: %v", cfg.StreamName, err)
		}
	})
	return js
}

// Events returns n recorded events of the given stream and type, versions
// 1…n, positions firstSeq…, as a store would return them.
func Events(stream eventstore.StreamID, typ string, firstSeq int64, n int) []eventstore.RecordedEvent {
	out := make([]eventstore.RecordedEvent, n)
	for i := range out {
		out[i] = eventstore.RecordedEvent{
			ID:            ulid.Make().String(),
			StreamID:      stream,
			Version:       int64(i + 1),
			Position:      eventstore.Position{Seq: firstSeq + int64(i)},
			Type:          typ,
			SchemaVersion: 1,
			Data:          []byte(fmt.Sprintf(`{"n":%d}`, i)),
			Metadata:      eventstore.Metadata{CorrelationID: "corr-1", Actor: "tester"},
			RecordedAt:    time.Now().UTC().Truncate(time.Microsecond),
		}
	}
	return out
}

// MemDeadLetters is an in-memory DeadLetterStore: a fake of Vega's own
// dead-letter port, for tests. It is safe for concurrent use.
type MemDeadLetters struct {
	mu    sync.Mutex
	items []vnats.DeadLetter
	parks int
}

var _ vnats.DeadLetterStore = (*MemDeadLetters)(nil)

// Park stores dl unless the same (Consumer, StreamSeq) is parked already.
func (m *MemDeadLetters) Park(_ context.Context, dl vnats.DeadLetter) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.parks++
	if slices.ContainsFunc(m.items, func(x vnats.DeadLetter) bool {
		return x.Consumer == dl.Consumer && x.StreamSeq == dl.StreamSeq
	}) {
		return nil
	}
	m.items = append(m.items, dl)
	return nil
}

// List returns up to limit entries, oldest first.
func (m *MemDeadLetters) List(_ context.Context, limit int) ([]vnats.DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.items[:min(limit, len(m.items))]), nil
}

// Delete removes the entry with the ID, if any.
func (m *MemDeadLetters) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items = slices.DeleteFunc(m.items, func(x vnats.DeadLetter) bool { return x.ID == id })
	return nil
}

// Parks returns how many times Park was called.
func (m *MemDeadLetters) Parks() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.parks
}

// Len returns how many entries are stored.
func (m *MemDeadLetters) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}

// Eventually polls cond until it holds or WaitTimeout passes, then fails
// the test with msg.
func Eventually(t testing.TB, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", WaitTimeout, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
