package domain

import (
	"maps"
	"slices"
	"time"
)

// Project groups a team's repositories and says who may see and change them.
// The zero value is a project that does not exist yet (Version 0).
type Project struct {
	ID          string
	Name        string
	Description string
	CreatedBy   string
	CreatedAt   time.Time
	Archived    bool
	ArchivedAt  time.Time
	Members     map[string]Member // by principal
	Version     int               // number of events applied
}

// Member is a principal's role in a project.
type Member struct {
	Principal string    `json:"principal"`
	Role      Role      `json:"role"`
	GrantedAt time.Time `json:"granted_at"`
}

// NewProject decides the creation of a project by owner, who becomes its
// first owner. It returns ProjectCreated and MemberGranted, or an
// *InvalidArgumentError naming "id", "name", "description" or "owner".
func NewProject(id, name, description, owner string, now time.Time) ([]Event, error) {
	if err := ValidateID("id", id); err != nil {
		return nil, err
	}
	name, err := ValidateName("name", name)
	if err != nil {
		return nil, err
	}
	description, err = ValidateText("description", description, MaxDescriptionLength)
	if err != nil {
		return nil, err
	}
	if err := ValidateID("owner", owner); err != nil {
		return nil, err
	}
	return []Event{
		ProjectCreated{ProjectID: id, Name: name, Description: description, CreatedBy: owner, At: now},
		MemberGranted{Principal: owner, Role: RoleOwner, At: now},
	}, nil
}

// FoldProject rebuilds a project from its stream. It returns ErrNotFound for
// an empty stream.
func FoldProject(events []Event) (*Project, error) {
	if len(events) == 0 {
		return nil, notFound("project")
	}
	p := new(Project)
	for _, e := range events {
		if err := p.Apply(e); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Apply folds one event into the project and increments Version. It does not
// re-validate business rules (history is fact) but rejects events of other
// aggregates and a stream that does not start with ProjectCreated.
func (p *Project) Apply(e Event) error {
	e = deref(e)
	_, creation := e.(ProjectCreated)
	if err := checkStart("project", p.Version, e, creation); err != nil {
		return err
	}
	switch e := e.(type) {
	case ProjectCreated:
		*p = Project{ID: e.ProjectID, Name: e.Name, Description: e.Description, CreatedBy: e.CreatedBy,
			CreatedAt: e.At, Members: map[string]Member{}}
	case ProjectRenamed:
		p.Name = e.Name
	case ProjectArchived:
		p.Archived, p.ArchivedAt = true, e.At
	case MemberGranted:
		p.Members[e.Principal] = Member{Principal: e.Principal, Role: e.Role, GrantedAt: e.At}
	case MemberRevoked:
		delete(p.Members, e.Principal)
	default:
		return badHistory("project", p.Version, e, "not a project event")
	}
	p.Version++
	return nil
}

// RoleOf returns principal's role, and false when it is not a member.
func (p *Project) RoleOf(principal string) (Role, bool) {
	m, ok := p.Members[principal]
	return m.Role, ok
}

// Allows reports whether principal is a member with at least role min.
// Installation admins are the caller's business.
func (p *Project) Allows(principal string, min Role) bool {
	r, ok := p.RoleOf(principal)
	return ok && r.AtLeast(min)
}

// SortedMembers returns the members ordered by principal.
func (p *Project) SortedMembers() []Member {
	keys := slices.Sorted(maps.Keys(p.Members))
	out := make([]Member, 0, len(keys))
	for _, k := range keys {
		out = append(out, p.Members[k])
	}
	return out
}

// EnsureActive returns nil for an active project and an error wrapping
// ErrConflict for an archived one: an archived project takes no new scans,
// repositories, snapshots or profiles.
func (p *Project) EnsureActive() error {
	if p.Archived {
		return conflict("project %s is archived", p.ID)
	}
	return nil
}

// Rename decides a new name. It returns no events when the name is
// unchanged, an *InvalidArgumentError for field "name", and ErrConflict when
// the project is archived.
func (p *Project) Rename(name string, now time.Time) ([]Event, error) {
	name, err := ValidateName("name", name)
	if err != nil {
		return nil, err
	}
	if err := p.EnsureActive(); err != nil {
		return nil, err
	}
	if name == p.Name {
		return nil, nil
	}
	return []Event{ProjectRenamed{Name: name, At: now}}, nil
}

// Archive decides to archive the project. Archiving an archived project is
// a no-op (no events, no error), so the API's archive call is idempotent.
func (p *Project) Archive(now time.Time) ([]Event, error) {
	if p.Archived {
		return nil, nil
	}
	return []Event{ProjectArchived{At: now}}, nil
}

// Grant decides to give principal role, or to change its role. It returns
// an *InvalidArgumentError for "principal" or "role", ErrConflict when the
// principal already has exactly that role, and ErrConflict when the change
// would demote the last owner. Membership may change on an archived project.
func (p *Project) Grant(principal string, role Role, now time.Time) ([]Event, error) {
	if err := ValidateID("principal", principal); err != nil {
		return nil, err
	}
	if _, err := ParseRole(string(role)); err != nil {
		return nil, err
	}
	cur, ok := p.RoleOf(principal)
	if ok && cur == role {
		return nil, conflict("%s is already %s of project %s", principal, role, p.ID)
	}
	if ok && cur == RoleOwner && p.owners() == 1 {
		return nil, conflict("%s is the last owner of project %s", principal, p.ID)
	}
	return []Event{MemberGranted{Principal: principal, Role: role, At: now}}, nil
}

// Revoke decides to remove principal from the project. It returns ErrNotFound
// when principal is not a member and ErrConflict when it is the last owner.
func (p *Project) Revoke(principal string, now time.Time) ([]Event, error) {
	cur, ok := p.RoleOf(principal)
	if !ok {
		return nil, notFound("%s is not a member of project %s", principal, p.ID)
	}
	if cur == RoleOwner && p.owners() == 1 {
		return nil, conflict("%s is the last owner of project %s", principal, p.ID)
	}
	return []Event{MemberRevoked{Principal: principal, At: now}}, nil
}

func (p *Project) owners() int {
	n := 0
	for _, m := range p.Members {
		if m.Role == RoleOwner {
			n++
		}
	}
	return n
}
