package nats_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/adapters/nats/bustest"
)

func TestBusEmbedded(t *testing.T) {
	t.Parallel()
	srv := bustest.StartEmbedded(t, vnats.Config{})
	bustest.Run(t, func(t testing.TB) *nats.Conn {
		nc, err := srv.Connect(context.Background())
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(nc.Close)
		return nc
	})
}

func TestBusExternal(t *testing.T) {
	t.Parallel()
	bustest.ConnectExternal(t) // skip or fail early when unreachable
	bustest.Run(t, func(t testing.TB) *nats.Conn { return bustest.ConnectExternal(t) })
}
