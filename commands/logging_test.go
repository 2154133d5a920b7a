package commands_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec.Clone())
	return nil
}
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

func attrs(rec slog.Record) map[string]string {
	m := map[string]string{}
	rec.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	return m
}

func TestLoggingAndMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	logs := &logRecorder{}
	store := openSQLite(t)
	e := newEnv(t, store, func(o *commands.Options) {
		o.Metrics = reg
		o.Logger = slog.New(logs)
	})
	if _, err := commands.New(store, commands.Options{Metrics: reg}); err != nil {
		t.Fatalf("second Handlers on one registry: %v", err)
	}

	if _, err := e.h.CreateProject.Handle(e.ctx, commands.CreateProject{Name: "ok"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.h.CreateProject.Handle(e.ctx, commands.CreateProject{Name: ""})
	wantIs(t, err, domain.ErrInvalidArgument)
	_, err = e.h.RenameProject.Handle(e.ctx, commands.RenameProject{ProjectID: "nope", Name: "x"})
	wantIs(t, err, domain.ErrNotFound)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = e.h.CreateProject.Handle(e.ctx, commands.CreateProject{Name: "late"})
	if got := commands.Outcome(err); got != commands.OutcomeInternal {
		t.Fatalf("command on a closed store: outcome %s (%v), want internal", got, err)
	}

	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	var samples uint64
	for _, f := range families {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "vega_commands_total":
				counts[labels(m)] += m.GetCounter().GetValue()
			case "vega_command_duration_seconds":
				if labels(m) == "command=CreateProject" {
					samples = m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	want := map[string]float64{
		"command=CreateProject,outcome=ok":               1,
		"command=CreateProject,outcome=invalid_argument": 1,
		"command=CreateProject,outcome=internal":         1,
		"command=RenameProject,outcome=not_found":        1,
	}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("vega_commands_total{%s} = %v, want %v (all: %v)", k, counts[k], v, counts)
		}
	}
	if samples != 3 {
		t.Errorf("duration histogram of CreateProject has %d samples, want 3", samples)
	}

	logs.mu.Lock()
	defer logs.mu.Unlock()
	if len(logs.records) != 4 {
		t.Fatalf("%d log records, want one per command (4)", len(logs.records))
	}
	for i, want := range []struct {
		level   slog.Level
		outcome string
	}{{slog.LevelDebug, "ok"}, {slog.LevelInfo, "invalid_argument"}, {slog.LevelInfo, "not_found"}, {slog.LevelError, "internal"}} {
		rec := logs.records[i]
		a := attrs(rec)
		if rec.Level != want.level || a["outcome"] != want.outcome || a["actor"] != alice || a["correlation_id"] == "" || a["duration"] == "" {
			t.Errorf("record %d: level %v attrs %v; want level %v outcome %s with actor, correlation_id and duration", i, rec.Level, a, want.level, want.outcome)
		}
		if (want.outcome == "ok") != (a["error"] == "") {
			t.Errorf("record %d: error attr %q", i, a["error"])
		}
	}
}

func labels(m *dto.Metric) string {
	s := ""
	for i, l := range m.GetLabel() {
		if i > 0 {
			s += ","
		}
		s += l.GetName() + "=" + l.GetValue()
	}
	return s
}

func TestOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want string
	}{
		{nil, commands.OutcomeOK},
		{&domain.InvalidArgumentError{Field: "name", Reason: "x"}, commands.OutcomeInvalidArgument},
		{fmt.Errorf("load: %w", domain.ErrNotFound), commands.OutcomeNotFound},
		{&domain.TransitionError{From: domain.ScanStateCompleted, To: domain.ScanStateRunning}, commands.OutcomeConflict},
		{&domain.FenceError{ScanID: "s", Presented: 1, Current: 2}, commands.OutcomeConflict},
		{fmt.Errorf("x: %w", &eventstore.ConcurrencyError{Stream: "scan-x"}), commands.OutcomeConflict},
		{context.Canceled, commands.OutcomeCanceled},
		{fmt.Errorf("fold: %w", domain.ErrInvalidHistory), commands.OutcomeInternal},
		{errors.New("connection reset"), commands.OutcomeInternal},
	}
	for _, tt := range tests {
		if got := commands.Outcome(tt.err); got != tt.want {
			t.Errorf("Outcome(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestNewValidatesOptions(t *testing.T) {
	t.Parallel()
	store := openSQLite(t)
	for _, opts := range []commands.Options{{MaxScanAttempts: -1}, {LeaseDuration: -1}} {
		if _, err := commands.New(store, opts); err == nil {
			t.Errorf("New(%+v) accepted", opts)
		}
	}
	if _, err := commands.New(nil, commands.Options{}); err == nil {
		t.Error("New(nil store) accepted")
	}
}
