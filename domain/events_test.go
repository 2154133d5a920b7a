package domain_test

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/vega-sec/vega/domain"
)

// stableNames is the stored catalogue. These strings are in the event store:
// never change or reuse one; only append.
var stableNames = []string{
	"ProjectCreated", "ProjectRenamed", "ProjectArchived", "MemberGranted", "MemberRevoked",
	"RepositoryAdded", "RepositoryRemoved", "SnapshotRequested", "SnapshotCaptured", "SnapshotFailed",
	"ThreatProfileDefined",
	"ScanRequested", "ScanClaimed", "ScanLeaseRenewed", "ScanRequeued", "RunnerLaunched", "ScanStarted",
	"ScanProgressed", "FindingRecorded", "LLMUsageRecorded", "ScanBudgetExceeded", "ScanCancelRequested",
	"ScanCancelled", "ScanCompleted", "ScanFailed", "ScanTimedOut",
	"IssueOpened", "IssueSeen", "IssueReopened", "IssueFixed", "IssueTriaged",
	"TokenIssued", "TokenRevoked",
	"ScanCredentialIssued",
	"ScanClassified", "IssueIndexUpdated",
}

func TestCatalogueNamesAreStableAndUnique(t *testing.T) {
	t.Parallel()
	cat := domain.Catalogue()
	seen := map[string]bool{}
	var names []string
	for _, e := range cat {
		n := e.EventName()
		if seen[n] {
			t.Errorf("duplicate event name %q", n)
		}
		seen[n] = true
		names = append(names, n)
		if reflect.TypeOf(e).Kind() != reflect.Struct {
			t.Errorf("catalogue entry %q is a %T, want a struct value", n, e)
		}
	}
	if !reflect.DeepEqual(names, stableNames) {
		t.Fatalf("catalogue names\n got %v\nwant %v", names, stableNames)
	}
	cat[0] = nil
	if domain.Catalogue()[0] == nil {
		t.Fatal("Catalogue returned its internal slice")
	}
	if _, ok := domain.NewEvent("NoSuchEvent"); ok {
		t.Fatal("NewEvent accepted an unknown name")
	}
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

func TestCatalogueJSONRoundTrip(t *testing.T) {
	t.Parallel()
	for _, zero := range domain.Catalogue() {
		name := zero.EventName()
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fresh, ok := domain.NewEvent(name)
			if !ok {
				t.Fatal("NewEvent: unknown")
			}
			v := reflect.ValueOf(fresh)
			if v.Kind() != reflect.Pointer || !v.Elem().IsZero() || fresh.EventName() != name {
				t.Fatalf("NewEvent = %#v, want pointer to zero %s", fresh, name)
			}
			if other, _ := domain.NewEvent(name); other == fresh {
				t.Fatal("NewEvent returned a shared value")
			}

			// Fill every field, encode the value, decode by name.
			orig := reflect.New(reflect.TypeOf(zero)).Elem()
			fill(orig)
			data, err := json.Marshal(orig.Interface())
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, fresh); err != nil {
				t.Fatal(err)
			}
			if got := reflect.ValueOf(fresh).Elem().Interface(); !reflect.DeepEqual(got, orig.Interface()) {
				t.Fatalf("round trip\n got %#v\nwant %#v\njson %s", got, orig.Interface(), data)
			}
			var generic any
			if err := json.Unmarshal(data, &generic); err != nil {
				t.Fatal(err)
			}
			checkKeys(t, generic)
		})
	}
}

// fill sets every field of v to a non-zero value.
func fill(v reflect.Value) {
	if v.Type() == reflect.TypeOf(time.Time{}) {
		v.Set(reflect.ValueOf(t0.Add(90 * time.Minute)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x_" + v.Type().Name())
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint64:
		v.SetUint(9)
	case reflect.Float64:
		v.SetFloat(1.25)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

func checkKeys(t *testing.T, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			if !snakeCase.MatchString(k) {
				t.Errorf("JSON key %q is not snake_case", k)
			}
			checkKeys(t, sub)
		}
	case []any:
		for _, sub := range v {
			checkKeys(t, sub)
		}
	}
}

func TestApplyAcceptsValuesAndPointers(t *testing.T) {
	t.Parallel()
	p := new(domain.Project)
	if err := p.Apply(&domain.ProjectCreated{ProjectID: "p1", Name: "n", CreatedBy: "a", At: t0}); err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(domain.ProjectRenamed{Name: "m", At: t0}); err != nil {
		t.Fatal(err)
	}
	if p.ID != "p1" || p.Name != "m" || p.Version != 2 {
		t.Fatalf("project = %+v", p)
	}
	var nilEvent *domain.ProjectRenamed
	wantIs(t, p.Apply(nilEvent), domain.ErrInvalidHistory)
}
