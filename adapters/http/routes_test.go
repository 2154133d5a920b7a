package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	httpapi "github.com/vega-sec/vega/adapters/http"
)

// TestRoutesDocumented walks the router: every route it serves is in the
// OpenAPI document, and every operation of the document is served.
func TestRoutesDocumented(t *testing.T) {
	t.Parallel()
	e := start(t, sqliteEmbedded, setup{noBus: true})
	routes, ok := e.srv.Handler().(chi.Routes)
	if !ok {
		t.Fatalf("Handler is a %T, not a chi router", e.srv.Handler())
	}
	var served []string
	err := chi.Walk(routes, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		served = append(served, method+" "+strings.TrimSuffix(strings.ReplaceAll(route, "/*/", "/"), "/"))
		return nil
	})
	if err != nil {
		t.Fatalf("walk: %v", err)
	}
	documented := httpapi.OpenAPIRoutes()
	slices.Sort(served)
	slices.Sort(documented)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("served but not documented: %s", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("documented but not served: %s", r)
		}
	}
	if len(served) < 33 {
		t.Errorf("only %d routes served", len(served))
	}
}
