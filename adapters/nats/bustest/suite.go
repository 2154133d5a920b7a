package bustest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	vnats "github.com/vega-sec/vega/adapters/nats"
	"github.com/vega-sec/vega/eventstore"
)

// Connect returns a connection to the server under test; each call may
// return a new connection to the same server.
type Connect func(t testing.TB) *nats.Conn

// Run runs the bus conformance suite against the server connect reaches.
// Every case uses its own stream and subject prefix and deletes its stream
// at cleanup, so suites may run in parallel on one server.
func Run(t *testing.T, connect Connect) {
	cases := []struct {
		name string
		fn   func(t *testing.T, connect Connect)
	}{
		{"PublishDedupByMsgID", testPublishDedup},
		{"SubjectMapping", testSubjectMapping},
		{"DurableConsumerResumes", testDurableResumes},
		{"AckAndRedelivery", testAckAndRedelivery},
		{"ParkAfterMaxDeliver", testPark},
		{"OrderedConsumer", testOrdered},
		{"OversizedEventOmitsData", testOversized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, connect)
		})
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func streamMsgs(t testing.TB, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(ctxT(t), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := s.Info(ctxT(t))
	if err != nil {
		t.Fatalf("stream info %s: %v", name, err)
	}
	return info.State.Msgs
}

func publish(t testing.TB, nc *nats.Conn, cfg vnats.Config, events []eventstore.RecordedEvent) vnats.PublishResult {
	t.Helper()
	p, err := vnats.NewPublisher(nc, cfg)
	if err != nil {
		t.Fatalf("new publisher: %v", err)
	}
	res, err := p.Publish(ctxT(t), events)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	return res
}

func testPublishDedup(t *testing.T, connect Connect) {
	nc := connect(t)
	cfg := Config(t)
	js := EnsureStream(t, nc, cfg)
	events := Events("scan-01JDEDUP", "ScanProgressed", 1, 20)

	first := publish(t, nc, cfg, events)
	if first.Stored != 20 || first.Duplicates != 0 {
		t.Fatalf("first publish: got %+v, want 20 stored", first)
	}
	again := publish(t, nc, cfg, events[5:15])
	if again.Stored != 0 || again.Duplicates != 10 {
		t.Fatalf("republish: got %+v, want 10 duplicates", again)
	}
	if got := streamMsgs(t, js, cfg.StreamName); got != 20 {
		t.Fatalf("stream holds %d messages, want 20", got)
	}
}

func testSubjectMapping(t *testing.T, connect Connect) {
	nc := connect(t)
	cfg := Config(t)
	js := EnsureStream(t, nc, cfg)
	tests := []struct {
		stream eventstore.StreamID
		typ    string
	}{
		{"scan-01JABCDEF", "ScanRequested"},
		{"repository-acme.corp:web-1", "SnapshotCaptured"},
		{"issue-a.b.c", "Issue Triaged*>"},
		{"access-x_y", "Type%With%Percent"},
	}
	var events []eventstore.RecordedEvent
	for i, tc := range tests {
		events = append(events, Events(tc.stream, tc.typ, int64(i+1), 1)...)
	}
	publish(t, nc, cfg, events)
	s, err := js.Stream(ctxT(t), cfg.StreamName)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	for i, tc := range tests {
		raw, err := s.GetMsg(ctxT(t), uint64(i+1))
		if err != nil {
			t.Fatalf("get msg %d: %v", i+1, err)
		}
		if want := vnats.Subject(cfg.SubjectPrefix, tc.stream, tc.typ); raw.Subject != want {
			t.Errorf("%s/%s: subject %q, want %q", tc.stream, tc.typ, raw.Subject, want)
		}
		gotStream, gotType, err := vnats.SubjectParts(cfg.SubjectPrefix, raw.Subject)
		if err != nil || gotStream != tc.stream || gotType != tc.typ {
			t.Errorf("SubjectParts(%q) = %q, %q, %v; want %q, %q", raw.Subject, gotStream, gotType, err, tc.stream, tc.typ)
		}
		if got := raw.Header.Get(vnats.HeaderMsgID); got != events[i].ID {
			t.Errorf("%s: Nats-Msg-Id %q, want %q", tc.stream, got, events[i].ID)
		}
		if got := raw.Header.Get(vnats.HeaderPosition); got != events[i].Position.String() {
			t.Errorf("%s: %s %q, want %q", tc.stream, vnats.HeaderPosition, got, events[i].Position)
		}
		for _, h := range []string{vnats.HeaderStreamID, vnats.HeaderVersion, vnats.HeaderType, vnats.HeaderSchemaVersion, vnats.HeaderRecordedAt} {
			if raw.Header.Get(h) == "" {
				t.Errorf("%s: header %s missing", tc.stream, h)
			}
		}
		env, err := vnats.DecodeEnvelope(raw.Data)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		got, err := env.RecordedEvent()
		if err != nil {
			t.Fatalf("recorded event: %v", err)
		}
		want := events[i]
		if got.ID != want.ID || got.StreamID != want.StreamID || got.Version != want.Version || got.Position != want.Position ||
			got.Type != want.Type || got.SchemaVersion != want.SchemaVersion || string(got.Data) != string(want.Data) ||
			got.Metadata != want.Metadata || !got.RecordedAt.Equal(want.RecordedAt) {
			t.Errorf("envelope round trip:\n got %+v\nwant %+v", got, want)
		}
	}
	// Filters built from the mapping select what they say.
	filters := []struct {
		name, filter string
		want         int
	}{
		{"category", vnats.CategorySubject(cfg.SubjectPrefix, "repository"), 1},
		{"stream with dots", vnats.StreamSubject(cfg.SubjectPrefix, "issue-a.b.c"), 1},
		{"type in any category", vnats.TypeSubject(cfg.SubjectPrefix, "", "ScanRequested"), 1},
		{"all", vnats.AllSubject(cfg.SubjectPrefix), len(tests)},
	}
	for _, f := range filters {
		info, err := s.Info(ctxT(t), jetstream.WithSubjectFilter(f.filter))
		if err != nil {
			t.Fatalf("%s: info: %v", f.name, err)
		}
		n := 0
		for _, c := range info.State.Subjects {
			n += int(c)
		}
		if n != f.want {
			t.Errorf("filter %s (%s): %d messages, want %d", f.name, f.filter, n, f.want)
		}
	}
}

// recorder is a Handler that records what it saw.
type recorder struct {
	mu   sync.Mutex
	seen map[string]int
	fail func(env vnats.Envelope, n int) error
}

func newRecorder() *recorder { return &recorder{seen: map[string]int{}} }

func (r *recorder) handle(_ context.Context, env vnats.Envelope) error {
	r.mu.Lock()
	r.seen[env.EventID]++
	n := r.seen[env.EventID]
	fail := r.fail
	r.mu.Unlock()
	if fail != nil {
		return fail(env, n)
	}
	return nil
}

func (r *recorder) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seen[id]
}

func (r *recorder) distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// runConsumer runs a consumer until the returned stop is called (also at
// cleanup).
func runConsumer(t testing.TB, nc *nats.Conn, stream string, cfg vnats.ConsumerConfig, h vnats.Handler) (stop func()) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	c, err := vnats.NewConsumer(ctxT(t), js, stream, cfg, h)
	if err != nil {
		t.Fatalf("new consumer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("consumer run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func testDurableResumes(t *testing.T, connect Connect) {
	nc := connect(t)
	cfg := Config(t)
	EnsureStream(t, nc, cfg)
	first := Events("scan-01JRESUME", "ScanProgressed", 1, 10)
	publish(t, nc, cfg, first)

	rec := newRecorder()
	ccfg := vnats.ConsumerConfig{Name: "resume", DeadLetters: &MemDeadLetters{}, AckWait: 5 * time.Second}
	stop := runConsumer(t, nc, cfg.StreamName, ccfg, rec.handle)
	Eventually(t, "first 10 handled", func() bool { return rec.distinct() == 10 })
	stop()

	// A new connection (a restarted process) and a new Consumer of the same
	// name: it resumes after the acknowledged messages.
	nc2 := connect(t)
	second := Events("scan-01JRESUME", "ScanProgressed", 11, 5)
	publish(t, nc2, cfg, second)
	rec2 := newRecorder()
	runConsumer(t, nc2, cfg.StreamName, ccfg, rec2.handle)
	Eventually(t, "next 5 handled", func() bool { return rec2.distinct() == 5 })
	for _, e := range first {
		if n := rec2.count(e.ID); n != 0 {
			t.Errorf("acked event %s delivered again after restart (%d times)", e.ID, n)
		}
	}
	for _, e := range second {
		if n := rec2.count(e.ID); n != 1 {
			t.Errorf("event %s handled %d times, want 1", e.ID, n)
		}
	}
}

func testAckAndRedelivery(t *testing.T, connect Connect) {
	nc := connect(t)
	cfg := Config(t)
	EnsureStream(t, nc, cfg)
	events := Events("scan-01JREDELIVER", "ScanProgressed", 1, 6)
	flaky := events[2].ID
	rec := newRecorder()
	rec.fail = func(env vnats.Envelope, n int) error {
		if env.EventID == flaky && n < 3 {
			return fmt.Errorf("transient failure %d", n)
		}
		return nil
	}
	dls := &MemDeadLetters{}
	runConsumer(t, nc, cfg.StreamName, vnats.ConsumerConfig{
		Name: "redeliver", DeadLetters: dls, MaxDeliver: 5, NakDelay: 10 * time.Millisecond, AckWait: 5 * time.Second,
	}, rec.handle)
	publish(t, nc, cfg, events)
	Eventually(t, "flaky event succeeds on its third delivery", func() bool { return rec.count(flaky) == 3 })
	Eventually(t, "all events handled", func() bool { return rec.distinct() == 6 })
	for _, e := range events {
		if e.ID != flaky && rec.count(e.ID) != 1 {
			t.Errorf("event %s handled %d times, want 1", e.ID, rec.count(e.ID))
		}
	}
	if dls.Len() != 0 {
		t.Errorf("%d dead letters, want 0", dls.Len())
	}
}

func testPark(t *testing.T, connect Connect) {
	nc := connect(t)
	cfg := Config(t)
	js := EnsureStream(t, nc, cfg)
	events := Events("scan-01JPOISON", "ScanProgressed", 1, 8)
	poison := events[3].ID
	var healed sync.Map
	rec := newRecorder()
	rec.fail = func(env vnats.Envelope, n int) error {
		if env.EventID == poison {
			if _, ok := healed.Load(poison); !ok {
				return errors.New("cannot handle this one")
			}
		}
		return nil
	}
	dls := &MemDeadLetters{}
	const maxDeliver = 3
	runConsumer(t, nc, cfg.StreamName, vnats.ConsumerConfig{
		Name: "poison", DeadLetters: dls, MaxDeliver: maxDeliver, NakDelay: 10 * time.Millisecond, AckWait: 5 * time.Second,
	}, rec.handle)
	publish(t, nc, cfg, events)
	Eventually(t, "poison message parked", func() bool { return dls.Len() == 1 })
	Eventually(t, "other events handled", func() bool { return rec.distinct() == 8 })
	// The consumer goes on: a later event is handled, and the parked one is
	// not delivered again.
	later := Events("scan-01JPOISON", "ScanProgressed", 9, 1)
	publish(t, nc, cfg, later)
	Eventually(t, "event after the poison handled", func() bool { return rec.count(later[0].ID) == 1 })
	if got := rec.count(poison); got != maxDeliver {
		t.Errorf("poison delivered %d times, want %d", got, maxDeliver)
	}
	for _, e := range events {
		if e.ID != poison && rec.count(e.ID) != 1 {
			t.Errorf("event %s handled %d times, want 1", e.ID, rec.count(e.ID))
		}
	}
	if dls.Parks() != 1 {
		t.Errorf("Park called %d times, want 1", dls.Parks())
	}
	dl, _ := dls.List(ctxT(t), 10)
	if len(dl) != 1 || dl[0].EventID != poison || dl[0].Deliveries != maxDeliver || dl[0].Consumer != "poison" ||
		dl[0].Subject != vnats.Subject(cfg.SubjectPrefix, events[3].StreamID, events[3].Type) || dl[0].StreamSeq != 4 || dl[0].Error == "" {
		t.Fatalf("dead letter %+v, want event %s, %d deliveries, seq 4", dl, poison, maxDeliver)
	}

	// Replay after the cause is fixed: only the parking consumer handles it.
	healed.Store(poison, true)
	other := newRecorder()
	runConsumer(t, nc, cfg.StreamName, vnats.ConsumerConfig{Name: "bystander", DeadLetters: &MemDeadLetters{}, AckWait: 5 * time.Second}, other.handle)
	Eventually(t, "bystander caught up", func() bool { return other.distinct() == 9 })
	q := vnats.NewDeadLetterQueue(js, cfg.StreamName, dls)
	n, err := q.ReplayAll(ctxT(t), 10)
	if err != nil || n != 1 {
		t.Fatalf("ReplayAll = %d, %v; want 1, nil", n, err)
	}
	Eventually(t, "replayed message handled", func() bool { return rec.count(poison) == maxDeliver+1 })
	if dls.Len() != 0 {
		t.Errorf("dead letters after replay: %d, want 0", dls.Len())
	}
	// The bystander acks the replay without handling it: publish a marker
	// and wait for it, then check.
	marker := Events("scan-01JPOISON", "ScanProgressed", 10, 1)
	publish(t, nc, cfg, marker)
	Eventually(t, "bystander saw the marker", func() bool { return other.count(marker[0].ID) == 1 })
	if got := other.count(poison); got != 1 {
		t.Errorf("bystander handled the poison event %d times, want 1 (the replay is not for it)", got)
	}
}

func testOrdered(t *testing.T, connect Connect) {
	nc := connect(t)
	cfg := Config(t)
	js := EnsureStream(t, nc, cfg)
	var events []eventstore.RecordedEvent
	for i, s := range []eventstore.StreamID{"scan-01JA", "project-01JB", "scan-01JC"} {
		events = append(events, Events(s, "Happened", int64(i*20+1), 20)...)
	}
	publish(t, nc, cfg, events)

	collect := func(opts vnats.SubscribeOptions, want int) []vnats.Envelope {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
		defer cancel()
		var got []vnats.Envelope
		errDone := errors.New("done")
		err := vnats.Subscribe(ctx, js, cfg.StreamName, opts, func(_ context.Context, env vnats.Envelope) error {
			got = append(got, env)
			if len(got) == want {
				return errDone
			}
			return nil
		})
		if !errors.Is(err, errDone) {
			t.Fatalf("subscribe: %v after %d of %d messages", err, len(got), want)
		}
		return got
	}
	all := collect(vnats.SubscribeOptions{}, len(events))
	for i, env := range all {
		if env.EventID != events[i].ID || env.Seq != uint64(i+1) {
			t.Fatalf("message %d: event %s seq %d, want %s seq %d", i, env.EventID, env.Seq, events[i].ID, i+1)
		}
	}
	after := collect(vnats.SubscribeOptions{Start: vnats.StartAfter(45)}, 15)
	if after[0].Seq != 46 || after[14].Seq != 60 {
		t.Errorf("StartAfter(45): seqs %d..%d, want 46..60", after[0].Seq, after[14].Seq)
	}
	scans := collect(vnats.SubscribeOptions{FilterSubject: vnats.CategorySubject(cfg.SubjectPrefix, "scan")}, 40)
	if !slices.IsSortedFunc(scans, func(a, b vnats.Envelope) int { return int(a.Seq) - int(b.Seq) }) || scans[0].StreamID.Category() != "scan" || scans[39].StreamID.Category() != "scan" {
		t.Errorf("category filter: not the 40 scan events in order")
	}

	// DeliverNew: only what is stored after the subscription starts. When
	// the ordered consumer exists is not observable from here, so probes
	// are published until one arrives; nothing stored before may arrive.
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	got := make(chan vnats.Envelope, 1000)
	errc := make(chan error, 1)
	go func() {
		errc <- vnats.Subscribe(ctx, js, cfg.StreamName, vnats.SubscribeOptions{Start: vnats.DeliverNew}, func(_ context.Context, env vnats.Envelope) error {
			got <- env
			return nil
		})
	}()
	var first vnats.Envelope
probe:
	for i := int64(0); ; i++ {
		publish(t, nc, cfg, Events("scan-01JPROBE", "Probe", 1000+i, 1))
		select {
		case first = <-got:
			break probe
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			t.Fatalf("DeliverNew: no probe delivered")
		}
	}
	if first.Seq <= uint64(len(events)) || first.Type != "Probe" {
		t.Fatalf("DeliverNew delivered seq %d (%s), stored before it started", first.Seq, first.Type)
	}
	fresh := Events("scan-01JNEW", "Happened", 100, 3)
	publish(t, nc, cfg, fresh)
	for i := 0; i < len(fresh); {
		select {
		case env := <-got:
			if env.Type == "Probe" {
				continue // later probes still in flight
			}
			if env.EventID != fresh[i].ID {
				t.Fatalf("DeliverNew message %d: %s, want %s", i, env.EventID, fresh[i].ID)
			}
			i++
		case <-ctx.Done():
			t.Fatalf("DeliverNew: message %d not delivered", i)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Errorf("subscribe returned %v after ctx ended, want nil", err)
	}
}

func testOversized(t *testing.T, connect Connect) {
	nc := connect(t)
	cfg := Config(t)
	js := EnsureStream(t, nc, cfg)
	events := Events("scan-01JBIG", "FindingRecorded", 1, 2)
	big := make([]byte, nc.MaxPayload())
	for i := range big {
		big[i] = 'x'
	}
	big[0], big[len(big)-1] = '"', '"'
	events[0].Data = big
	res := publish(t, nc, cfg, events)
	if res.Stored != 2 {
		t.Fatalf("publish: %+v, want 2 stored", res)
	}
	s, _ := js.Stream(ctxT(t), cfg.StreamName)
	for i, wantOmitted := range []bool{true, false} {
		m, err := s.GetMsg(ctxT(t), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		env, err := vnats.DecodeEnvelope(m.Data)
		if err != nil {
			t.Fatal(err)
		}
		if env.DataOmitted != wantOmitted || (len(env.Data) == 0) != wantOmitted {
			t.Errorf("event %d: DataOmitted %v with %d data bytes, want omitted=%v", i, env.DataOmitted, len(env.Data), wantOmitted)
		}
		if env.EventID != events[i].ID || m.Header.Get(vnats.HeaderVersion) == "" {
			t.Errorf("event %d: envelope or headers lost: %+v", i, env)
		}
	}
}
