package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"

	httpapi "github.com/vega-sec/vega/adapters/http"
	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/adapters/web"
	"github.com/vega-sec/vega/commands/classify"
	"github.com/vega-sec/vega/commands/runner"
	"github.com/vega-sec/vega/domain"
	"github.com/vega-sec/vega/queries"
)

// roles says which parts of the system one process runs.
type roles struct {
	api, worker, classifier, proxy bool
}

// serve runs the chosen roles until ctx ends. Every long-running process
// runs the relay and the projections: the leader lock keeps one relay
// active, and the projections runner tolerates several processes.
func serve(ctx context.Context, cfg Config, r roles, stderr io.Writer) error {
	log := newLogger(cfg, stderr)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	sys, err := openSystem(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer sys.close()
	defer stop() // background work ends before sys.close releases what it uses
	// A background role that fails stops the process (and its API).
	go func() {
		select {
		case err := <-sys.failed:
			sys.failed <- err // for roleError
			stop()
		case <-runCtx.Done():
		}
	}()

	if err := sys.startRelay(runCtx); err != nil {
		return err
	}
	if err := sys.startProjections(runCtx); err != nil {
		return err
	}
	p, err := sys.openPipeline(ctx)
	if err != nil {
		return err
	}
	if r.proxy {
		addr := cfg.LLMProxyAddr
		if r.api && r.worker {
			addr = "127.0.0.1:0" // vega dev: the proxy is for this process's runners only
		}
		url, err := sys.startLLMProxy(runCtx, p, addr)
		if err != nil {
			return err
		}
		if sys.cfg.LLMProxyURL == "" {
			sys.cfg.LLMProxyURL = url
		}
		fmt.Fprintf(stderr, "vega: llm proxy on %s\n", url)
	}
	if r.worker {
		if err := sys.startWorker(runCtx, p); err != nil {
			return err
		}
	}
	if r.classifier {
		if err := sys.startClassifier(runCtx); err != nil {
			return err
		}
	}
	if !r.api {
		fmt.Fprintln(stderr, "vega: running")
		<-runCtx.Done()
		return sys.roleError(ctx)
	}
	if err := sys.serveAPI(runCtx, p, r.worker, stderr); err != nil {
		return err
	}
	return sys.roleError(ctx)
}

// roleError returns why the process stops: nil when ctx ended (a signal),
// else the failed role's error.
func (s *system) roleError(ctx context.Context) error {
	if ctx.Err() != nil {
		return nil
	}
	select {
	case err := <-s.failed:
		return err
	default:
		return errors.New("stopped")
	}
}

// serveAPI serves the HTTP API (and the dashboard) until ctx ends. Only
// `vega dev` (dev) makes up an admin token when none is configured: a
// production process must not print one to its logs.
func (s *system) serveAPI(ctx context.Context, p *pipeline, dev bool, stderr io.Writer) error {
	q, err := queries.New(s.readDB, s.dialect, s.store, queries.Options{})
	if err != nil {
		return err
	}
	token := s.cfg.BootstrapToken
	generated := token == "" && dev
	if generated {
		if token, err = newToken(); err != nil {
			return err
		}
	}
	if token == "" {
		s.log.Warn("no VEGA_BOOTSTRAP_TOKEN: no admin token is accepted; only issued tokens work")
	}
	// SARIF uploads import as the sarif-upload engine; the sarif engine's
	// importer (p.importer) is for the configured tool.
	uploadImporter, err := sarif.NewImporter(p.fp, sarif.ImportOptions{Engine: domain.EngineSARIFUpload, Secrets: p.builtin, Logger: s.log})
	if err != nil {
		return err
	}
	uploader, err := sarif.NewUploader(p.handlers, uploadImporter, s.log)
	if err != nil {
		return err
	}
	diffs, err := classify.NewReader(s.store)
	if err != nil {
		return err
	}
	streamKey := derivedKey(p.fpKey, "vega stream tokens v1")
	streamTokens, err := web.NewHMACStreamTokens(streamKey, s.cfg.StreamTokenTTL)
	if err != nil {
		return err
	}
	sarifExport, err := web.NewSARIFExport(diffs, p.builtin, buildVersion())
	if err != nil {
		return err
	}
	dash, err := web.New(web.Deps{
		Commands: p.handlers, Queries: q, Events: s.store, Consistency: s.projections,
		Uploads: p.snapshots, StreamTokens: streamTokens, Diffs: diffs, SARIF: sarifExport,
	}, web.Config{
		BootstrapToken: token,
		SessionKey:     derivedKey(p.fpKey, "vega dashboard sessions v1"),
		MaxUploadBytes: s.cfg.MaxSnapshotBytes,
		SecureCookies:  s.cfg.SecureCookies,
		Logger:         s.log,
	})
	if err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	srv, err := httpapi.New(httpapi.Deps{
		Commands:        p.handlers,
		Queries:         q,
		Events:          s.store,
		Consistency:     s.projections,
		Projections:     s.projections,
		Bus:             httpapi.JetStreamCheck(s.js),
		Feed:            httpapi.NewJetStreamFeed(s.js, s.cfg.NATSStream, s.cfg.NATSSubjectPrefix, s.store, s.log),
		Snapshots:       p.snapshots,
		Classifications: diffs,
		SARIF:           uploader,
		Rules:           p.builtin,
		Pages:           dash.Handler(),
		Registerer:      s.registry,
		Gatherer:        s.registry,
	}, httpapi.Config{
		BootstrapToken:     token,
		SSEMaxConns:        s.cfg.SSEMaxConns,
		SSEMaxPerPrincipal: s.cfg.SSEMaxPerPrincipal,
		StreamTokenTTL:     s.cfg.StreamTokenTTL,
		StreamTokenKey:     streamKey,
		MaxSnapshotBytes:   s.cfg.MaxSnapshotBytes,
		Version:            buildVersion(),
		Logger:             s.log,
	})
	if err != nil {
		return fmt.Errorf("http api: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.cfg.HTTPAddr, err)
	}
	fmt.Fprintf(stderr, "vega: listening on http://%s\n", displayAddr(ln.Addr()))
	if generated {
		fmt.Fprintf(stderr, "vega: admin token: %s\n", token)
	}
	s.log.Info("vega started", "store", s.storeKind, "data_dir", s.cfg.DataDir)
	if err := srv.Serve(ctx, ln); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// runDev runs every role in one process on the embedded defaults.
func runDev(ctx context.Context, cfg Config, _ []string, _, stderr io.Writer) error {
	return serve(ctx, cfg, roles{api: true, worker: true, classifier: true, proxy: true}, stderr)
}

func runAPI(ctx context.Context, cfg Config, _ []string, _, stderr io.Writer) error {
	return serve(ctx, cfg, roles{api: true}, stderr)
}

func runWorker(ctx context.Context, cfg Config, _ []string, _, stderr io.Writer) error {
	return serve(ctx, cfg, roles{worker: true, classifier: true}, stderr)
}

func runLLMProxy(ctx context.Context, cfg Config, _ []string, _, stderr io.Writer) error {
	return serve(ctx, cfg, roles{proxy: true}, stderr)
}

// runnerFlags defines `vega runner --scan ID [--fence N]`: one scan, then
// exit.
func runnerFlags(fs *flag.FlagSet) runFunc {
	scanID := fs.String("scan", "", "the scan to run")
	fence := fs.Uint64("fence", 0, "the claim's fencing token (0: the current claim)")
	return func(ctx context.Context, cfg Config, _ []string, _, stderr io.Writer) error {
		if *scanID == "" {
			return usageError{"usage: vega runner --scan ID [--fence N]"}
		}
		return runRunner(ctx, cfg, *scanID, *fence, stderr)
	}
}

func runRunner(ctx context.Context, cfg Config, scanID string, f uint64, stderr io.Writer) error {
	log := newLogger(cfg, stderr).With("scan_id", scanID)
	sys, err := openSystem(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer sys.close()
	p, err := sys.openPipeline(ctx)
	if err != nil {
		return err
	}
	d, err := sys.runnerDeps(p, f)
	if err != nil {
		return err
	}
	return runner.Run(ctx, scanID, d)
}
