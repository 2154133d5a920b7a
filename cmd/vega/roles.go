package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vega-sec/vega/adapters/blob/blobopen"
	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/agent"
	"github.com/vega-sec/vega/adapters/engine/ai"
	"github.com/vega-sec/vega/adapters/engine/builtin"
	"github.com/vega-sec/vega/adapters/engine/sarifengine"
	"github.com/vega-sec/vega/adapters/launcher/ecs"
	"github.com/vega-sec/vega/adapters/launcher/inprocess"
	"github.com/vega-sec/vega/adapters/launcher/process"
	"github.com/vega-sec/vega/adapters/llm"
	"github.com/vega-sec/vega/adapters/sarif"
	"github.com/vega-sec/vega/adapters/source/archive"
	"github.com/vega-sec/vega/adapters/source/git"
	"github.com/vega-sec/vega/commands"
	"github.com/vega-sec/vega/commands/classify"
	"github.com/vega-sec/vega/commands/runner"
	"github.com/vega-sec/vega/commands/snapshot"
	"github.com/vega-sec/vega/commands/worker"
	"github.com/vega-sec/vega/domain"
)

// fingerprintKeyFile holds the generated key when VEGA_FINGERPRINT_KEY is
// unset. Every process of an installation must use the same key: in the
// distributed shape set the variable.
const fingerprintKeyFile = "fingerprint.key"

// fingerprintKey returns the installation's fingerprint key: the configured
// one, else the one generated into the data dir on first use.
func fingerprintKey(cfg Config) ([]byte, error) {
	if cfg.FingerprintKey != "" {
		if len(cfg.FingerprintKey) < engine.MinFingerprintKeySize {
			return nil, fmt.Errorf("VEGA_FINGERPRINT_KEY: at least %d bytes are required", engine.MinFingerprintKeySize)
		}
		return []byte(cfg.FingerprintKey), nil
	}
	path := filepath.Join(cfg.DataDir, fingerprintKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		k := strings.TrimSpace(string(b))
		if len(k) < engine.MinFingerprintKeySize {
			return nil, fmt.Errorf("%s: key shorter than %d bytes", path, engine.MinFingerprintKeySize)
		}
		return []byte(k), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	k := hex.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fingerprintKey(cfg) // another process won the race
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.WriteString(k + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	return []byte(k), f.Close()
}

// derivedKey derives a purpose-bound key from the installation key, so one
// secret serves several purposes without one revealing another.
func derivedKey(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// pipeline is what the command side of every role needs beyond the system.
type pipeline struct {
	handlers  *commands.Handlers
	blobs     blobopen.Store
	fp        *engine.Fingerprinter
	fpKey     []byte
	builtin   *builtin.Engine
	importer  *sarif.Importer
	snapshots *snapshot.Service
}

func (s *system) openPipeline(ctx context.Context) (*pipeline, error) {
	if s.cfg.DatabaseURL != "" && s.cfg.FingerprintKey == "" {
		// Processes of one installation must agree on the key (findings'
		// identity, stream tokens, sessions); a key generated per host
		// would silently split them.
		return nil, errors.New("VEGA_FINGERPRINT_KEY is required with VEGA_DATABASE_URL: every process of an installation must use the same key")
	}
	p := &pipeline{}
	var err error
	p.handlers, err = commands.New(s.store, commands.Options{
		Logger:          s.log,
		Metrics:         s.registry,
		SourcePolicy:    domain.SourcePolicy{AllowHTTP: s.cfg.GitAllowPrivate},
		LeaseDuration:   s.cfg.ScanLease,
		MaxScanAttempts: s.cfg.MaxScanAttempts,
	})
	if err != nil {
		return nil, err
	}
	blobURL := s.cfg.BlobURL
	if blobURL == "" {
		blobURL = filepath.Join(s.cfg.DataDir, "blobs")
	}
	if p.blobs, err = blobopen.OpenURL(ctx, blobURL, blobopen.Options{Logger: s.log}); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	s.closers = append(s.closers, p.blobs.Close)
	if p.fpKey, err = fingerprintKey(s.cfg); err != nil {
		return nil, err
	}
	if p.fp, err = engine.NewFingerprinter(p.fpKey); err != nil {
		return nil, err
	}
	if p.builtin, err = builtin.New(p.fp, builtin.WithLogger(s.log)); err != nil {
		return nil, err
	}
	if p.importer, err = sarif.NewImporter(p.fp, sarif.ImportOptions{Engine: domain.EngineSARIF, Secrets: p.builtin, Logger: s.log}); err != nil {
		return nil, err
	}
	gitCap, err := git.New(git.Config{AllowHTTP: s.cfg.GitAllowPrivate, AllowPrivate: s.cfg.GitAllowPrivate, Logger: s.log})
	if err != nil {
		return nil, err
	}
	tmp := filepath.Join(s.cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return nil, err
	}
	if p.snapshots, err = snapshot.New(p.handlers, p.blobs, snapshot.Config{TempDir: tmp, Limits: archive.DefaultLimits(), Git: gitCap, Logger: s.log}); err != nil {
		return nil, err
	}
	return p, nil
}

// runnerDeps assembles a runner: the builtin engine always, the sarif engine
// when a command is configured, and the ai and agent engines per scan, with
// a credential for the LLM proxy minted for the attempt.
func (s *system) runnerDeps(p *pipeline, fence uint64) (runner.Deps, error) {
	engines := map[string]engine.Engine{builtin.Name: p.builtin}
	if s.cfg.EngineSarifCommand != "" {
		e, err := sarifengine.New(sarifengine.Config{Command: s.cfg.EngineSarifCommand, Logger: s.log}, p.importer)
		if err != nil {
			return runner.Deps{}, fmt.Errorf("sarif engine: %w", err)
		}
		engines[e.Name()] = e
	}
	minter := llm.NewMinter(p.handlers, nil)
	mint := func(ctx context.Context, scan *domain.Scan, fence uint64) (string, error) {
		if s.cfg.LLMProxyURL == "" {
			return "", errors.New("VEGA_LLM_PROXY_URL is not set")
		}
		ctx = commands.WithRequest(ctx, commands.Request{Actor: runner.Actor})
		return minter.Mint(ctx, scan.ID, fence, time.Now().Add(s.cfg.ScanTimeout))
	}
	factories := map[string]runner.EngineFactory{
		domain.EngineAI: func(ctx context.Context, scan *domain.Scan, fence uint64) (engine.Engine, error) {
			token, err := mint(ctx, scan, fence)
			if err != nil {
				return nil, err
			}
			return ai.New(ai.Config{ProxyURL: s.cfg.LLMProxyURL, Token: token, Model: s.cfg.LLMModel, Profile: scan.Profile,
				Fingerprinter: p.fp, Secrets: p.builtin, Logger: s.log})
		},
	}
	if s.cfg.EngineAgentCommand != "" {
		agentEnv, err := agent.ParseEnvMapping(s.cfg.EngineAgentEnv)
		if err != nil {
			return runner.Deps{}, fmt.Errorf("VEGA_ENGINE_AGENT_ENV: %w", err)
		}
		factories[domain.EngineAgent] = func(ctx context.Context, scan *domain.Scan, fence uint64) (engine.Engine, error) {
			token, err := mint(ctx, scan, fence)
			if err != nil {
				return nil, err
			}
			return agent.New(agent.Config{Command: s.cfg.EngineAgentCommand, Env: agentEnv, ProxyURL: s.cfg.LLMProxyURL, Token: token,
				PATH: os.Getenv("PATH"), Profile: scan.Profile, Fingerprinter: p.fp, Secrets: p.builtin, Logger: s.log})
		}
	}
	return runner.Deps{
		Handlers:        p.handlers,
		Blobs:           p.blobs,
		Engines:         engines,
		EngineFactories: factories,
		Bus:             &runner.Bus{JetStream: s.js, Stream: s.cfg.NATSStream, SubjectPrefix: s.cfg.NATSSubjectPrefix},
		Fence:           fence,
		ScanTimeout:     s.cfg.ScanTimeout,
		TempDir:         filepath.Join(s.cfg.DataDir, "runs"),
		Limits:          archive.DefaultLimits(),
		Logger:          s.log,
	}, nil
}

// launcher builds the configured runner launcher.
func (s *system) launcher(ctx context.Context, p *pipeline) (worker.Launcher, error) {
	switch s.cfg.RunnerLauncher {
	case "inprocess":
		d, err := s.runnerDeps(p, domain.NoFence)
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(d.TempDir, 0o750); err != nil {
			return nil, err
		}
		return inprocess.New(inprocess.Runner(d), s.log), nil
	case "process":
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		// The child runs in a private directory: give it absolute paths
		// and the addresses this process resolved.
		dataDir, err := filepath.Abs(s.cfg.DataDir)
		if err != nil {
			return nil, err
		}
		extra := append(runnerEnv(s.cfg), "VEGA_DATA_DIR="+dataDir)
		if s.cfg.LLMProxyURL != "" {
			extra = append(extra, "VEGA_LLM_PROXY_URL="+s.cfg.LLMProxyURL)
		}
		if s.cfg.NATSURL == "" {
			if s.cfg.NATSListen == "" {
				return nil, errors.New("the process launcher with the embedded NATS server needs VEGA_NATS_LISTEN, so runners can connect")
			}
			extra = append(extra, "VEGA_NATS_URL=nats://"+s.cfg.NATSListen)
		}
		runs := filepath.Join(dataDir, "runs")
		if err := os.MkdirAll(runs, 0o750); err != nil {
			return nil, err
		}
		return process.New(process.Config{Command: []string{exe, "runner"}, ExtraEnv: extra, TempDir: runs, Logger: s.log})
	case "ecs":
		return ecs.New(ctx, ecs.Config{
			Cluster: s.cfg.ECSCluster, TaskDefinition: s.cfg.ECSTaskDefinition,
			Subnets: splitList(s.cfg.ECSSubnets), SecurityGroups: splitList(s.cfg.ECSSecurityGroups),
			AssignPublicIP: s.cfg.ECSAssignPublicIP, Region: s.cfg.ECSRegion, Endpoint: s.cfg.ECSEndpoint, Logger: s.log,
		})
	}
	return nil, fmt.Errorf("unknown launcher %q", s.cfg.RunnerLauncher)
}

// runnerEnv passes the resolved settings a runner needs, so that values given
// as flags to the worker reach its runners like environment variables do.
// The provider's key is never among them.
func runnerEnv(c Config) []string {
	env := []string{
		"VEGA_NATS_STREAM=" + c.NATSStream,
		"VEGA_NATS_SUBJECT_PREFIX=" + c.NATSSubjectPrefix,
		"VEGA_SCAN_TIMEOUT=" + c.ScanTimeout.String(),
		"VEGA_SCAN_LEASE=" + c.ScanLease.String(),
		"VEGA_MAX_SCAN_ATTEMPTS=" + strconv.Itoa(c.MaxScanAttempts),
		"VEGA_LLM_MODEL=" + c.LLMModel,
		"VEGA_LOG_LEVEL=" + c.LogLevel,
		"VEGA_LOG_FORMAT=" + c.LogFormat,
	}
	for k, v := range map[string]string{
		"VEGA_DATABASE_URL": c.DatabaseURL, "VEGA_NATS_URL": c.NATSURL, "VEGA_NATS_TOKEN": c.NATSToken,
		"VEGA_NATS_CREDENTIALS": c.NATSCredentials, "VEGA_BLOB_URL": c.BlobURL, "VEGA_FINGERPRINT_KEY": c.FingerprintKey,
		"VEGA_ENGINE_SARIF_COMMAND": c.EngineSarifCommand, "VEGA_ENGINE_AGENT_COMMAND": c.EngineAgentCommand,
		"VEGA_ENGINE_AGENT_ENV": c.EngineAgentEnv,
	} {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func splitList(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// startWorker runs scan dispatch, the reaper and git capture in the
// background until ctx ends.
func (s *system) startWorker(ctx context.Context, p *pipeline) error {
	l, err := s.launcher(ctx, p)
	if err != nil {
		return fmt.Errorf("launcher: %w", err)
	}
	host, _ := os.Hostname()
	w, err := worker.New(worker.Config{
		WorkerID:      fmt.Sprintf("%s-%d", host, os.Getpid()),
		Concurrency:   s.cfg.WorkerConcurrency,
		ScanTimeout:   s.cfg.ScanTimeout,
		ReapInterval:  s.cfg.ReapInterval,
		Stream:        s.cfg.NATSStream,
		SubjectPrefix: s.cfg.NATSSubjectPrefix,
		DeadLetters:   s.dead,
		Logger:        s.log,
	}, worker.Deps{Handlers: p.handlers, Store: s.store, JetStream: s.js, Launcher: l, Snapshots: p.snapshots})
	if err != nil {
		return fmt.Errorf("worker: %w", err)
	}
	s.goBackground(ctx, "worker", w.Run)
	return nil
}

// startClassifier turns completed scans' findings into issues.
func (s *system) startClassifier(ctx context.Context) error {
	c, err := classify.New(s.store, classify.Options{Logger: s.log})
	if err != nil {
		return err
	}
	cons, err := classify.NewConsumer(ctx, s.js, s.cfg.NATSStream, s.cfg.NATSSubjectPrefix, s.dead, c, s.log)
	if err != nil {
		return fmt.Errorf("classifier: %w", err)
	}
	s.goBackground(ctx, "classifier", cons.Run)
	return nil
}

// startLLMProxy serves the LLM proxy on addr until ctx ends and returns the
// base URL runners use to reach it (…/v1).
func (s *system) startLLMProxy(ctx context.Context, p *pipeline, addr string) (string, error) {
	prices := llm.DefaultPrices()
	if s.cfg.LLMPrices != "" {
		var err error
		if prices, err = llm.ParsePrices(s.cfg.LLMPrices); err != nil {
			return "", fmt.Errorf("VEGA_LLM_PRICES: %w", err)
		}
	}
	proxy, err := llm.NewProxy(llm.ProxyConfig{ProviderURL: s.cfg.LLMProviderURL, ProviderAPIKey: s.cfg.LLMProviderAPIKey, Prices: prices},
		llm.ProxyDeps{Store: s.store, Handlers: p.handlers, Logger: s.log, Metrics: s.registry})
	if err != nil {
		return "", fmt.Errorf("llm proxy: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("llm proxy: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: proxy.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.goBackground(ctx, "llm proxy", proxy.Run)
	s.goBackground(ctx, "llm proxy server", func(ctx context.Context) error {
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	// Clients (the ai engine, agents through OPENAI_BASE_URL) append
	// /chat/completions to the base URL, as OpenAI's SDKs do.
	return "http://" + displayAddr(ln.Addr()) + "/v1", nil
}

// goBackground runs fn until ctx ends; close waits for it. A role that
// returns an error while ctx is live is reported on s.failed.
func (s *system) goBackground(ctx context.Context, name string, fn func(context.Context) error) {
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		err := fn(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("stopped")
		}
		s.log.Error(name+" stopped", "err", err)
		select {
		case s.failed <- fmt.Errorf("%s: %w", name, err):
		default:
		}
	}()
}
