package commands_test

import (
	"context"
	"testing"

	"github.com/oklog/ulid/v2"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/eventstore"
)

func TestRequestContext(t *testing.T) {
	t.Parallel()
	if got := commands.RequestFromContext(t.Context()); got != (commands.Request{}) {
		t.Fatalf("empty context gives %+v", got)
	}
	want := commands.Request{Actor: "a", CorrelationID: "c", CausationID: "k"}
	if got := commands.RequestFromContext(commands.WithRequest(t.Context(), want)); got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	rec := eventstore.RecordedEvent{ID: "01EVENT", Metadata: eventstore.Metadata{CorrelationID: "corr"}}
	if got := commands.RequestFromEvent("system:worker", rec); got != (commands.Request{Actor: "system:worker", CorrelationID: "corr", CausationID: "01EVENT"}) {
		t.Fatalf("RequestFromEvent = %+v", got)
	}
}

func TestCommandWithoutActorIsRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	scan := e.scan()
	head, err := e.store.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		ctx  context.Context
		run  func(ctx context.Context) error
	}{
		{"create project, no request", t.Context(), func(ctx context.Context) error {
			_, err := e.h.CreateProject.Handle(ctx, commands.CreateProject{Name: "x"})
			return err
		}},
		{"create project, empty actor", commands.WithRequest(t.Context(), commands.Request{CorrelationID: "c"}), func(ctx context.Context) error {
			_, err := e.h.CreateProject.Handle(ctx, commands.CreateProject{Name: "x"})
			return err
		}},
		{"claim scan, malformed actor", commands.WithRequest(t.Context(), commands.Request{Actor: "-rm -rf"}), func(ctx context.Context) error {
			_, err := e.h.ClaimScan.Handle(ctx, commands.ClaimScan{ScanID: scan, WorkerID: "w"})
			return err
		}},
		{"issue token, no request", t.Context(), func(ctx context.Context) error {
			_, err := e.h.IssueToken.Handle(ctx, commands.IssueToken{Name: "ci"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantField(t, tt.run(tt.ctx), "actor")
		})
	}
	if after, err := e.store.Head(t.Context()); err != nil || after != head {
		t.Fatalf("head moved from %v to %v (%v): a refused command wrote", head, after, err)
	}
}

func TestEventsCarryRequestMetadata(t *testing.T) {
	t.Parallel()
	onStores(t, func(t *testing.T, open func(*testing.T) eventstore.Store) {
		e := newEnv(t, open(t))

		// Given identity: every event carries it unchanged.
		ctx := commands.WithRequest(t.Context(), commands.Request{Actor: "bob", CorrelationID: "req-42", CausationID: "http-7"})
		res, err := e.h.CreateProject.Handle(ctx, commands.CreateProject{Name: "P"})
		if err != nil {
			t.Fatal(err)
		}
		recs := e.events(res.Stream)
		if len(recs) != 2 {
			t.Fatalf("%d events, want 2", len(recs))
		}
		for _, r := range recs {
			if want := (eventstore.Metadata{Actor: "bob", CorrelationID: "req-42", CausationID: "http-7"}); r.Metadata != want {
				t.Fatalf("%s metadata %+v, want %+v", r.Type, r.Metadata, want)
			}
		}

		// No correlation or causation: one fresh ULID per command, for both.
		first, err := e.h.RenameProject.Handle(e.ctx, commands.RenameProject{ProjectID: res.Project.ID, Name: "Q"})
		if err != nil {
			t.Fatal(err)
		}
		second, err := e.h.RenameProject.Handle(e.ctx, commands.RenameProject{ProjectID: res.Project.ID, Name: "R"})
		if err != nil {
			t.Fatal(err)
		}
		recs = e.events(res.Stream)
		m1, m2 := recs[first.Version-1].Metadata, recs[second.Version-1].Metadata
		if m1.Actor != alice || m1.CorrelationID == "" || m1.CorrelationID != m1.CausationID {
			t.Fatalf("metadata %+v: want actor %s and correlation = causation = the command ID", m1, alice)
		}
		if _, err := ulid.ParseStrict(m1.CausationID); err != nil {
			t.Fatalf("command ID %q is not a ULID: %v", m1.CausationID, err)
		}
		if m2.CausationID == m1.CausationID {
			t.Fatalf("two commands share the command ID %s", m1.CausationID)
		}

		// A process manager reacting to an event: caused by it, same correlation.
		pm := commands.WithRequest(t.Context(), commands.RequestFromEvent("system:worker", recs[0]))
		if _, err := e.h.ArchiveProject.Handle(pm, commands.ArchiveProject{ProjectID: res.Project.ID}); err != nil {
			t.Fatal(err)
		}
		recs = e.events(res.Stream)
		last := recs[len(recs)-1].Metadata
		if want := (eventstore.Metadata{Actor: "system:worker", CorrelationID: "req-42", CausationID: recs[0].ID}); last != want {
			t.Fatalf("process manager metadata %+v, want %+v", last, want)
		}
	})
}
