package commands_test

import (
	"strings"
	"testing"

	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

func TestCreateProject(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	res, err := e.h.CreateProject.Handle(e.ctx, commands.CreateProject{Name: "  Payments ", Description: "card flows"})
	if err != nil {
		t.Fatal(err)
	}
	p := res.Project
	if p.Name != "Payments" || p.CreatedBy != alice || !p.Allows(alice, domain.RoleOwner) || !p.CreatedAt.Equal(t0) {
		t.Fatalf("project %+v", p)
	}
	if res.Stream != eventstore.NewStreamID("project", p.ID) || res.FirstVersion != 1 || res.Version != 2 || res.Appended != 2 || res.Position.IsZero() {
		t.Fatalf("result %+v", res.Result)
	}
	if got := types(e.events(res.Stream)); got != "ProjectCreated,MemberGranted" {
		t.Fatalf("events %s", got)
	}
	head, _ := e.store.Head(t.Context())
	if head != res.Position {
		t.Fatalf("position %v, head %v", res.Position, head)
	}

	_, err = e.h.CreateProject.Handle(e.ctx, commands.CreateProject{ProjectID: p.ID, Name: "again"})
	wantIs(t, err, domain.ErrConflict)
	if errorsIsConcurrency(err) {
		t.Fatalf("a taken ID is a conflict, not a concurrency error to retry: %v", err)
	}

	for _, tt := range []struct {
		name  string
		cmd   commands.CreateProject
		field string
	}{
		{"no name", commands.CreateProject{Name: "  "}, "name"},
		{"control character", commands.CreateProject{Name: "a\x00b"}, "name"},
		{"long description", commands.CreateProject{Name: "x", Description: strings.Repeat("d", domain.MaxDescriptionLength+1)}, "description"},
		{"bad id", commands.CreateProject{ProjectID: "-x", Name: "x"}, "id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.h.CreateProject.Handle(e.ctx, tt.cmd)
			wantField(t, err, tt.field)
		})
	}
}

func TestProjectCommands(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openSQLite(t))
	id := e.project()

	ren, err := e.h.RenameProject.Handle(e.ctx, commands.RenameProject{ProjectID: id, Name: "Billing"})
	if err != nil || ren.Project.Name != "Billing" || ren.Version != 3 || ren.Appended != 1 {
		t.Fatalf("rename: %+v, %v", ren, err)
	}
	same, err := e.h.RenameProject.Handle(e.ctx, commands.RenameProject{ProjectID: id, Name: "Billing"})
	if err != nil || same.Appended != 0 || !same.Position.IsZero() || same.Version != 3 {
		t.Fatalf("same name: %+v, %v; want nothing appended", same.Result, err)
	}
	gr, err := e.h.GrantMember.Handle(e.ctx, commands.GrantMember{ProjectID: id, Principal: "bob", Role: domain.RoleEditor})
	if err != nil || !gr.Project.Allows("bob", domain.RoleEditor) {
		t.Fatalf("grant: %+v, %v", gr, err)
	}
	rv, err := e.h.RevokeMember.Handle(e.ctx, commands.RevokeMember{ProjectID: id, Principal: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rv.Project.RoleOf("bob"); ok {
		t.Fatal("bob is still a member")
	}

	tests := []struct {
		name  string
		run   func() error
		want  error
		field string
	}{
		{"rename unknown", func() error {
			_, err := e.h.RenameProject.Handle(e.ctx, commands.RenameProject{ProjectID: "nope", Name: "x"})
			return err
		}, domain.ErrNotFound, ""},
		{"rename bad id", func() error {
			_, err := e.h.RenameProject.Handle(e.ctx, commands.RenameProject{ProjectID: "a b", Name: "x"})
			return err
		}, nil, "project_id"},
		{"rename empty", func() error {
			_, err := e.h.RenameProject.Handle(e.ctx, commands.RenameProject{ProjectID: id, Name: ""})
			return err
		}, nil, "name"},
		{"grant bad role", func() error {
			_, err := e.h.GrantMember.Handle(e.ctx, commands.GrantMember{ProjectID: id, Principal: "bob", Role: "god"})
			return err
		}, nil, "role"},
		{"grant bad principal", func() error {
			_, err := e.h.GrantMember.Handle(e.ctx, commands.GrantMember{ProjectID: id, Principal: "", Role: domain.RoleViewer})
			return err
		}, nil, "principal"},
		{"grant same role", func() error {
			_, err := e.h.GrantMember.Handle(e.ctx, commands.GrantMember{ProjectID: id, Principal: alice, Role: domain.RoleOwner})
			return err
		}, domain.ErrConflict, ""},
		{"revoke non-member", func() error {
			_, err := e.h.RevokeMember.Handle(e.ctx, commands.RevokeMember{ProjectID: id, Principal: "carol"})
			return err
		}, domain.ErrNotFound, ""},
		{"revoke last owner", func() error {
			_, err := e.h.RevokeMember.Handle(e.ctx, commands.RevokeMember{ProjectID: id, Principal: alice})
			return err
		}, domain.ErrConflict, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if tt.field != "" {
				wantField(t, err, tt.field)
				return
			}
			wantIs(t, err, tt.want)
		})
	}

	ar, err := e.h.ArchiveProject.Handle(e.ctx, commands.ArchiveProject{ProjectID: id})
	if err != nil || !ar.Project.Archived || ar.Appended != 1 {
		t.Fatalf("archive: %+v, %v", ar, err)
	}
	again, err := e.h.ArchiveProject.Handle(e.ctx, commands.ArchiveProject{ProjectID: id})
	if err != nil || again.Appended != 0 {
		t.Fatalf("archive again: %+v, %v; want an idempotent no-op", again.Result, err)
	}
	_, err = e.h.RenameProject.Handle(e.ctx, commands.RenameProject{ProjectID: id, Name: "Later"})
	wantIs(t, err, domain.ErrConflict)
}
