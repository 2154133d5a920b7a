package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// shutdownTimeout bounds a graceful shutdown.
const shutdownTimeout = 10 * time.Second

// runDev runs every role in one process on the embedded defaults. At this
// stage of the project that is the event store and the health endpoints.
func runDev(ctx context.Context, cfg Config, _ []string, _, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	runCtx, stopBackground := context.WithCancel(ctx)
	defer stopBackground()
	sys, err := openSystem(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	defer sys.close()
	defer stopBackground() // runs before sys.close: background work ends first
	if err := sys.startRelay(runCtx); err != nil {
		return fmt.Errorf("dev: %w", err)
	}
	store, kind := sys.store, sys.storeKind

	token := cfg.BootstrapToken
	generated := token == ""
	if generated {
		if token, err = newToken(); err != nil {
			return err
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		rctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := store.Head(rctx); err != nil {
			log.Warn("readyz: event store", "err", err)
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"status":"unavailable","reasons":["event store does not answer"]}`)
			return
		}
		_, _ = io.WriteString(w, `{"status":"ok"}`)
	})

	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("dev: listen on %s: %w", cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	fmt.Fprintf(stderr, "vega: listening on http://%s\n", displayAddr(ln.Addr()))
	if generated {
		fmt.Fprintf(stderr, "vega: admin token: %s\n", token)
	}
	log.Info("vega dev started", "store", kind, "data_dir", cfg.DataDir)

	select {
	case err := <-served:
		return fmt.Errorf("dev: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("dev: shutdown: %w", err)
	}
	return nil
}

// displayAddr turns a wildcard listen address into one a client can dial.
func displayAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	host := "localhost"
	if !tcp.IP.IsUnspecified() {
		host = tcp.IP.String()
	}
	return net.JoinHostPort(host, fmt.Sprint(tcp.Port))
}

// newToken returns 32 random bytes, URL-safe base64, prefixed so that a
// leaked token is recognisable in logs and by secret scanners.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token: %w", err)
	}
	return "vega_" + base64.RawURLEncoding.EncodeToString(b), nil
}
