package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startDev runs `vega dev` in-process on port 0 with a temp data dir and
// returns its base URL and admin token, read from the lines it prints.
func startDev(t *testing.T, extra map[string]string) (base, token string) {
	t.Helper()
	e := map[string]string{"VEGA_HTTP_ADDR": "127.0.0.1:0", "VEGA_DATA_DIR": t.TempDir(), "VEGA_LOG_LEVEL": "warn"}
	for k, v := range extra {
		e[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev"}, env(e), io.Discard, pw)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("vega dev exited with %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("vega dev did not stop within 15s of its context ending")
		}
	})
	sc := bufio.NewScanner(pr)
	lines := make(chan string)
	go func() {
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	for base == "" || (token == "" && e["VEGA_BOOTSTRAP_TOKEN"] == "") {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("vega dev stopped before it was ready: %v", <-done)
			}
			if u, ok := strings.CutPrefix(l, "vega: listening on "); ok {
				base = u
			}
			if tok, ok := strings.CutPrefix(l, "vega: admin token: "); ok {
				token = tok
			}
		case <-deadline:
			t.Fatal("vega dev printed no listening line within 30s")
		}
	}
	go func() {
		for range lines {
		}
	}()
	return base, token
}

func TestDevServesHealth(t *testing.T) {
	t.Parallel()
	base, token := startDev(t, nil)
	if !strings.HasPrefix(token, "vega_") || len(token) < 40 {
		t.Errorf("generated admin token %q looks weak", token)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
	}
}

func TestDevWithBootstrapTokenPrintsNoToken(t *testing.T) {
	t.Parallel()
	base, token := startDev(t, map[string]string{"VEGA_BOOTSTRAP_TOKEN": "test-token-123456789"})
	if token != "" {
		t.Errorf("printed a token although one was configured")
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Errorf("listening line %q", base)
	}
}
