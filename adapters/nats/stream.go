package nats

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ServerVersion returns the version of the server nc is connected to, or
// zeros when it cannot be parsed (not connected, odd version string).
func ServerVersion(nc *nats.Conn) (major, minor, patch int) {
	v := strings.TrimPrefix(nc.ConnectedServerVersion(), "v")
	v, _, _ = strings.Cut(v, "-")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) != 3 {
		return 0, 0, 0
	}
	n := make([]int, 3)
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil {
			return 0, 0, 0
		}
		n[i] = x
	}
	return n[0], n[1], n[2]
}

// ServerAtLeast reports whether nc's server is at least major.minor.
func ServerAtLeast(nc *nats.Conn, major, minor int) bool {
	ma, mi, _ := ServerVersion(nc)
	return ma > major || ma == major && mi >= minor
}

// StreamConfig returns the JetStream configuration EnsureStream applies for
// cfg on a server of the given version (see ServerAtLeast):
//
//   - subjects <SubjectPrefix>.>, file storage, limits retention, discard
//     old, MaxAge, MaxBytes, Replicas and DuplicateWindow from cfg;
//   - on 2.10 and later also S2 compression and metadata naming Vega as
//     the owner; 2.9 has neither, so they are left out there.
func StreamConfig(cfg Config, atLeast210 bool) jetstream.StreamConfig {
	sc := jetstream.StreamConfig{
		Name:              cfg.StreamName,
		Description:       "Vega events, relayed from the event store in global order",
		Subjects:          []string{AllSubject(cfg.SubjectPrefix)},
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		Storage:           jetstream.FileStorage,
		MaxAge:            cfg.MaxAge,
		MaxBytes:          cfg.MaxBytes,
		MaxMsgs:           -1,
		MaxMsgSize:        -1,
		MaxConsumers:      -1,
		MaxMsgsPerSubject: -1,
		Replicas:          cfg.Replicas,
		Duplicates:        cfg.DuplicateWindow,
	}
	if atLeast210 {
		sc.Compression = jetstream.S2Compression
		sc.Metadata = map[string]string{"vega.managed-by": "vega relay", "vega.subject-prefix": cfg.SubjectPrefix}
	}
	return sc
}

// EnsureStream creates the events stream that cfg describes, or updates it
// to that configuration, and returns it. It is idempotent and safe to call
// from several processes at once. Changes the server refuses (storage type,
// a subject another stream owns) come back as its error.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	sc := StreamConfig(cfg, ServerAtLeast(js.Conn(), 2, 10))
	s, err := js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("ensure stream %s: %w", cfg.StreamName, err)
	}
	return s, nil
}
