package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/eventstore"
	"github.com/vega-sec/vega/eventstore/sqlite"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestDevRelaysEvents: an event appended to vega dev's store (here by a
// second store on the same file, as a child runner would) reaches the
// embedded JetStream stream with its event ID as Nats-Msg-Id.
func TestDevRelaysEvents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := freePort(t)
	startDev(t, map[string]string{"VEGA_DATA_DIR": dir, "VEGA_NATS_LISTEN": addr})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "vega.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id := ulid.Make().String()
	if _, err := s.Append(ctx, "scan-relaytest", eventstore.NoStream,
		eventstore.NewEvent{ID: id, Type: "ScanRequested", SchemaVersion: 1, Data: json.RawMessage(`{"n":1}`)}); err != nil {
		t.Fatal(err)
	}

	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, "VEGA_EVENTS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"vega.events.scan.>"}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(25 * time.Second))
	if err != nil {
		t.Fatalf("no event reached JetStream: %v", err)
	}
	if got := msg.Headers().Get("Nats-Msg-Id"); got != id {
		t.Errorf("Nats-Msg-Id %q, want %q", got, id)
	}
	if !strings.HasPrefix(msg.Subject(), "vega.events.scan.scan-relaytest.ScanRequested") {
		t.Errorf("subject %q", msg.Subject())
	}
}

func TestDeadLettersListEmpty(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(context.Background(), []string{"deadletters", "list"}, env(map[string]string{"VEGA_DATA_DIR": t.TempDir(), "VEGA_LOG_LEVEL": "warn"}), &out, io.Discard)
	if err != nil || !strings.Contains(out.String(), "no dead letters") {
		t.Errorf("deadletters list: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"deadletters", "bogus"}, env(nil), io.Discard, io.Discard); exitCode(err) != 2 {
		t.Errorf("bad verb: %v", err)
	}
}
