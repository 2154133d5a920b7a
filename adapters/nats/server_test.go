package nats_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/adapters/nats/bustest"
)

func TestConnectEmbedded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nc, closer, err := vnats.Connect(context.Background(), vnats.Config{DataDir: dir}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if !vnats.ServerAtLeast(nc, 2, 10) {
		t.Errorf("embedded server version %q, want 2.10 or later", nc.ConnectedServerVersion())
	}
	js, _ := jetstream.New(nc)
	cfg := vnats.Config{DataDir: dir}
	s, err := vnats.EnsureStream(context.Background(), js, cfg)
	if err != nil {
		t.Fatalf("ensure stream: %v", err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.Name != vnats.DefaultStreamName || len(c.Subjects) != 1 || c.Subjects[0] != vnats.DefaultSubjectPrefix+".>" ||
		c.Storage != jetstream.FileStorage || c.Retention != jetstream.LimitsPolicy || c.MaxAge != vnats.DefaultMaxAge ||
		c.MaxBytes != vnats.DefaultMaxBytes || c.Duplicates != vnats.DefaultDuplicateWindow || c.Compression != jetstream.S2Compression {
		t.Errorf("stream config %+v does not match the documented defaults", c)
	}
	// EnsureStream is idempotent.
	if _, err := vnats.EnsureStream(context.Background(), js, cfg); err != nil {
		t.Fatalf("ensure stream again: %v", err)
	}
	if err := closer(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if !nc.IsClosed() {
		t.Errorf("connection open after close")
	}
	if err := closer(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestEmbeddedDoesNotListenUnlessAsked(t *testing.T) {
	t.Parallel()
	srv := bustest.StartEmbedded(t, vnats.Config{})
	if u := srv.ClientURL(); u != "" {
		t.Errorf("ClientURL %q, want none without Listen", u)
	}
	addr := freeAddr(t)
	listening := bustest.StartEmbedded(t, vnats.Config{Listen: addr})
	if u := listening.ClientURL(); !strings.HasSuffix(u, addr) {
		t.Errorf("ClientURL %q, want one on %s", u, addr)
	}
}

func TestConnectExternal(t *testing.T) {
	t.Parallel()
	bustest.ConnectExternal(t) // skips or fails when unreachable
	url := "nats://127.0.0.1:4222"
	nc, closer, err := vnats.Connect(context.Background(), vnats.Config{URL: url, ConnectionName: "vega-test-connect"}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer closer()
	if ma, mi, _ := vnats.ServerVersion(nc); ma != 2 || mi < 9 {
		t.Errorf("external server version %q, want 2.9 or later", nc.ConnectedServerVersion())
	}
}

func TestConnectFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     vnats.Config
		wantErr string
	}{
		{"unreachable", vnats.Config{URL: "nats://user:secret@" + freeAddr(t), StartTimeout: 500 * time.Millisecond}, "connect to nats"},
		{"embedded without data dir", vnats.Config{}, "DataDir"},
		{"token and creds", vnats.Config{URL: "nats://x", Token: "a", CredsFile: "b"}, "exclusive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := vnats.Connect(context.Background(), tc.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error leaks the password: %v", err)
			}
		})
	}
}

func TestEmbeddedTokenRequired(t *testing.T) {
	t.Parallel()
	cfg := vnats.Config{DataDir: t.TempDir(), Listen: freeAddr(t), Token: "s3cret"}
	srv := bustest.StartEmbedded(t, cfg)
	nc, err := srv.Connect(context.Background())
	if err != nil {
		t.Fatalf("in-process connect with the token: %v", err)
	}
	nc.Close()
	if _, _, err := vnats.Connect(context.Background(), vnats.Config{URL: srv.ClientURL(), StartTimeout: time.Second}, nil); err == nil {
		t.Fatalf("TCP connect without the token succeeded")
	}
	nc2, closer, err := vnats.Connect(context.Background(), vnats.Config{URL: srv.ClientURL(), Token: "s3cret"}, nil)
	if err != nil {
		t.Fatalf("TCP connect with the token: %v", err)
	}
	_ = nc2
	_ = closer()
}

// Fault (d): the embedded server restarted on the same store dir keeps its
// stream, its messages and its durable consumers' positions.
func TestEmbeddedRestartKeepsStreamAndConsumers(t *testing.T) {
	t.Parallel()
	base := vnats.Config{DataDir: t.TempDir()}
	cfg := bustest.Config(t)
	cfg.URL = ""
	cfg.DataDir = base.DataDir
	ctx := context.Background()

	srv, err := vnats.StartServer(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := srv.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	if _, err := vnats.EnsureStream(ctx, js, cfg); err != nil {
		t.Fatal(err)
	}
	p, _ := vnats.NewPublisher(nc, cfg)
	events := bustest.Events("scan-01JRESTART", "ScanProgressed", 1, 5)
	if _, err := p.Publish(ctx, events[:3]); err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	h := func(context.Context, vnats.Envelope) error { handled.Add(1); return nil }
	ccfg := vnats.ConsumerConfig{Name: "survivor", DeadLetters: &bustest.MemDeadLetters{}}
	c, err := vnats.NewConsumer(ctx, js, cfg.StreamName, ccfg, h)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	bustest.Eventually(t, "first 3 handled", func() bool { return handled.Load() == 3 })
	cancel()
	<-done
	nc.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	srv2 := bustest.StartEmbedded(t, cfg)
	nc2, err := srv2.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, _ := jetstream.New(nc2)
	s, err := js2.Stream(ctx, cfg.StreamName)
	if err != nil {
		t.Fatalf("stream after restart: %v", err)
	}
	info, _ := s.Info(ctx)
	if info.State.Msgs != 3 {
		t.Errorf("stream holds %d messages after restart, want 3", info.State.Msgs)
	}
	cons, err := js2.Consumer(ctx, cfg.StreamName, "survivor")
	if err != nil {
		t.Fatalf("consumer after restart: %v", err)
	}
	ci, _ := cons.Info(ctx)
	if ci.AckFloor.Stream != 3 {
		t.Errorf("consumer ack floor %d after restart, want 3", ci.AckFloor.Stream)
	}
	// Publishing the same events again is absorbed (the dedup window
	// survived too), and the consumer resumes with the new ones only.
	p2, _ := vnats.NewPublisher(nc2, cfg)
	res, err := p2.Publish(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicates != 3 || res.Stored != 2 {
		t.Errorf("republish after restart: %+v, want 3 duplicates and 2 stored", res)
	}
	handled.Store(0)
	c2, err := vnats.NewConsumer(ctx, js2, cfg.StreamName, ccfg, h)
	if err != nil {
		t.Fatal(err)
	}
	runCtx2, cancel2 := context.WithCancel(ctx)
	defer cancel2()
	go func() { _ = c2.Run(runCtx2) }()
	bustest.Eventually(t, "the 2 new events handled", func() bool { return handled.Load() == 2 })
}
