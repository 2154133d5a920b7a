package domain_test

import (
	"strings"
	"testing"
	"time"

	"github.com/vega-sec/vega/domain"
)

func newProject(t *testing.T) (*domain.Project, []domain.Event) {
	t.Helper()
	p := new(domain.Project)
	events, err := domain.NewProject("p1", " Payments ", "the payments team", "alice", t0)
	return p, must(t, p, events, err)
}

func TestNewProject(t *testing.T) {
	t.Parallel()
	p, events := newProject(t)
	if len(events) != 2 || p.Name != "Payments" || p.CreatedBy != "alice" || p.Archived || p.Version != 2 {
		t.Fatalf("project = %+v", p)
	}
	if r, ok := p.RoleOf("alice"); !ok || r != domain.RoleOwner {
		t.Fatalf("creator role = %s, %v; want owner", r, ok)
	}

	tests := []struct {
		name, field            string
		id, pname, desc, owner string
	}{
		{"no id", "id", "", "n", "", "alice"},
		{"no name", "name", "p", "  ", "", "alice"},
		{"long name", "name", "p", strings.Repeat("n", domain.MaxNameLength+1), "", "alice"},
		{"long description", "description", "p", "n", strings.Repeat("d", domain.MaxDescriptionLength+1), "alice"},
		{"bad owner", "owner", "p", "n", "", "a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := domain.NewProject(tt.id, tt.pname, tt.desc, tt.owner, t0)
			wantField(t, err, tt.field)
		})
	}
}

func TestProjectMembers(t *testing.T) {
	t.Parallel()
	p, events := newProject(t)
	add := func(evs []domain.Event, err error) {
		t.Helper()
		events = append(events, must(t, p, evs, err)...)
	}
	add(p.Grant("bob", domain.RoleViewer, at(time.Minute)))
	if !p.Allows("bob", domain.RoleViewer) || p.Allows("bob", domain.RoleEditor) || p.Allows("eve", domain.RoleViewer) {
		t.Fatal("viewer permissions wrong")
	}
	_, err := p.Grant("bob", domain.RoleViewer, t0)
	wantIs(t, err, domain.ErrConflict) // duplicate member
	add(p.Grant("bob", domain.RoleEditor, at(2*time.Minute)))
	if !p.Allows("bob", domain.RoleEditor) || p.Allows("bob", domain.RoleOwner) {
		t.Fatal("role change not applied")
	}

	_, err = p.Grant("carol", "admin", t0)
	wantField(t, err, "role")
	_, err = p.Grant("", domain.RoleViewer, t0)
	wantField(t, err, "principal")

	// The last owner can be neither demoted nor revoked.
	_, err = p.Grant("alice", domain.RoleEditor, t0)
	wantIs(t, err, domain.ErrConflict)
	_, err = p.Revoke("alice", t0)
	wantIs(t, err, domain.ErrConflict)
	add(p.Grant("bob", domain.RoleOwner, t0))
	add(p.Grant("alice", domain.RoleViewer, t0))
	add(p.Revoke("alice", t0))
	if _, ok := p.RoleOf("alice"); ok {
		t.Fatal("revoked member still present")
	}
	_, err = p.Revoke("alice", t0)
	wantIs(t, err, domain.ErrNotFound)
	if m := p.SortedMembers(); len(m) != 1 || m[0].Principal != "bob" || m[0].Role != domain.RoleOwner {
		t.Fatalf("members = %+v", m)
	}

	checkFold(t, events, domain.FoldProject)
}

func TestProjectRenameAndArchive(t *testing.T) {
	t.Parallel()
	p, events := newProject(t)
	if evs, err := p.Rename("Payments", t0); evs != nil || err != nil {
		t.Fatalf("same-name rename = %v, %v; want no-op", evs, err)
	}
	_, err := p.Rename("", t0)
	wantField(t, err, "name")
	events = append(events, on(t, p)(p.Rename("Billing", t0))...)
	if err := p.EnsureActive(); err != nil {
		t.Fatal(err)
	}
	events = append(events, on(t, p)(p.Archive(at(time.Hour)))...)
	if !p.Archived || !p.ArchivedAt.Equal(at(time.Hour)) {
		t.Fatalf("project = %+v", p)
	}
	if evs, err := p.Archive(at(2 * time.Hour)); evs != nil || err != nil {
		t.Fatalf("second archive = %v, %v; want no-op", evs, err)
	}
	wantIs(t, p.EnsureActive(), domain.ErrConflict)
	_, err = p.Rename("Other", t0)
	wantIs(t, err, domain.ErrConflict)
	_, err = domain.NewRepository(p, "r1", "api", domain.Source{Kind: domain.SourceArchive}, domain.SourcePolicy{}, t0)
	wantIs(t, err, domain.ErrConflict)
	// Membership still changes on an archived project.
	events = append(events, on(t, p)(p.Grant("bob", domain.RoleViewer, t0))...)

	got := checkFold(t, events, domain.FoldProject)
	if got.Name != "Billing" || !got.Archived || len(got.Members) != 2 {
		t.Fatalf("folded = %+v", got)
	}
}
