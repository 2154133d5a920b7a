package projections

import (
	"context"
	"slices"

	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/eventstore"
)

// Projection names. They are permanent IDs: a checkpoint, a state row and
// a generation of tables belong to a name, and renaming one rebuilds it
// from zero under the new name.
const (
	NameProjects     = "projects"     // projects, project_members
	NameRepositories = "repositories" // repositories, snapshots, threat_profiles
	NameScans        = "scans"        // scans
	NameFindings     = "findings"     // findings, finding_issues, finding_scans
	NameIssues       = "issues"       // issues, issue_history
	NameActivity     = "activity"     // activity, activity_streams
	NameAccess       = "access"       // tokens
)

// projection is one read model: the events it reads, its tables and how it
// applies an event to them.
type projection struct {
	name string
	// version is the schema version of its tables: a change rebuilds the
	// projection into a new generation of tables at start.
	version    int64
	categories []string
	types      []string // nil: every type of the categories
	// decode reports whether apply needs the event decoded; nil: always.
	decode func(eventType string) bool
	tables []table
	// apply writes one event through t. ev is nil when decode said no.
	apply func(ctx context.Context, t *txn, e eventstore.RecordedEvent, ev domain.Event) error
}

// table is one read-model table: its logical name (the view queries read)
// and its DDL, with "{t}" for the generation's table name (index names are
// derived from it, so generations never clash).
type table struct {
	name string
	ddl  []string
	// writeIndexes names the non-unique indexes of ddl ("{t}_issue") that
	// the projection's own writes use: a rebuild creates them with the
	// table; it creates the others, which only queries use, once the
	// table is filled.
	writeIndexes []string
}

// all returns every projection, in a stable order.
func all() []*projection {
	return []*projection{
		projectsProjection(), repositoriesProjection(), scansProjection(),
		findingsProjection(), issuesProjection(), activityProjection(), accessProjection(),
	}
}

// Names returns the names of every projection, in a stable order.
func Names() []string {
	var out []string
	for _, p := range all() {
		out = append(out, p.name)
	}
	return out
}

// Tables returns the logical names of the read-model tables of the named
// projection (the views queries read), and false for an unknown name.
func Tables(name string) ([]string, bool) {
	i := slices.IndexFunc(all(), func(p *projection) bool { return p.name == name })
	if i < 0 {
		return nil, false
	}
	var out []string
	for _, t := range all()[i].tables {
		out = append(out, t.name)
	}
	return out, true
}
