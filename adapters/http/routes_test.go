package httpapi_test

import (
	"io"
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
	if len(served) < 40 {
		t.Errorf("only %d routes served", len(served))
	}
}

// TestPagesServeEverythingOutsideTheAPI: with Deps.Pages set, unknown paths
// outside /api reach it, and unknown API paths stay the API's JSON 404.
func TestPagesServeEverythingOutsideTheAPI(t *testing.T) {
	t.Parallel()
	h := start(t, sqliteEmbedded, setup{noBus: true, storeFeed: true, pages: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "page "+r.URL.Path)
	})})
	resp, err := http.Get(h.base + "/projects/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(b) != "page /projects/x" {
		t.Errorf("GET /projects/x: %d %q, want the pages handler", resp.StatusCode, b)
	}
	resp, err = http.Get(h.base + "/api/v1/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("GET /api/v1/nope: %d %s, want the API's JSON 404", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
