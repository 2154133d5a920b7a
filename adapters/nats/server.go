package nats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is an embedded nats-server with JetStream on, its store under
// Config.StoreDir. Its methods are safe for concurrent use.
type Server struct {
	srv       *server.Server
	cfg       Config
	log       *slog.Logger
	closeOnce sync.Once
	closeErr  error
}

// StartServer starts the embedded server and waits, at most
// cfg.StartTimeout or until ctx ends, until it accepts connections. It
// listens on TCP only when cfg.Listen is set. A server started again on the
// same StoreDir recovers its streams and consumers. log may be nil.
func StartServer(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := &server.Options{
		ServerName:         "vega-embedded",
		JetStream:          true,
		StoreDir:           cfg.StoreDir(),
		DontListen:         true,
		NoSigs:             true,
		MaxPayload:         DefaultMaxPayload,
		Authorization:      cfg.Token,
		JetStreamMaxMemory: 256 << 20,
	}
	if cfg.Listen != "" {
		host, port, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("start nats server: listen address %q: %w", cfg.Listen, err)
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return nil, fmt.Errorf("start nats server: listen port %q: %w", port, err)
		}
		opts.DontListen, opts.Host, opts.Port = false, host, p
		if p == 0 {
			opts.Port = server.RANDOM_PORT
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("start nats server: %w", err)
	}
	srv.SetLoggerV2(serverLogger{log.With("component", "nats-server")}, false, false, false)
	srv.Start()
	wait := cfg.StartTimeout
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		wait = time.Until(d)
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("start nats server in %s: not ready within %s", cfg.StoreDir(), wait)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("start nats server in %s: jetstream did not start", cfg.StoreDir())
	}
	log.Info("embedded nats server started", "store_dir", cfg.StoreDir(), "listen", cfg.Listen, "version", server.VERSION)
	return &Server{srv: srv, cfg: cfg, log: log}, nil
}

// ClientURL returns the nats:// URL of the server's TCP listener, or "" when
// it does not listen.
func (s *Server) ClientURL() string {
	if s.cfg.Listen == "" {
		return ""
	}
	return s.srv.ClientURL()
}

// Connect returns a client connection to the server: in-process, no socket.
func (s *Server) Connect(ctx context.Context) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.InProcessServer(s.srv),
		nats.Name(s.cfg.ConnectionName),
		nats.Timeout(s.cfg.StartTimeout),
	}
	if s.cfg.Token != "" {
		opts = append(opts, nats.Token(s.cfg.Token))
	}
	opts = append(opts, connLogging(s.log)...)
	return dial(ctx, "", opts)
}

// Close shuts the server down and waits, at most cfg.DrainTimeout, for it
// to finish; JetStream flushes its store first. Repeated calls return the
// first result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.srv.Shutdown()
		done := make(chan struct{})
		go func() { s.srv.WaitForShutdown(); close(done) }()
		select {
		case <-done:
			s.log.Info("embedded nats server stopped")
		case <-time.After(s.cfg.DrainTimeout):
			s.closeErr = fmt.Errorf("stop nats server: not stopped within %s", s.cfg.DrainTimeout)
		}
	})
	return s.closeErr
}

// Connect returns a connection to the bus cfg describes and a closer that
// drains the connection (bounded by cfg.DrainTimeout) and, for the embedded
// server, stops the server after it. The closer is safe to call more than
// once. log may be nil; disconnects and reconnects are logged on it.
func Connect(ctx context.Context, cfg Config, log *slog.Logger) (*nats.Conn, func() error, error) {
	cfg, err := cfg.Validate()
	if err != nil {
		return nil, nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Embedded() {
		srv, err := StartServer(ctx, cfg, log)
		if err != nil {
			return nil, nil, err
		}
		nc, err := srv.Connect(ctx)
		if err != nil {
			return nil, nil, errors.Join(err, srv.Close())
		}
		var once sync.Once
		var cerr error
		return nc, func() error {
			once.Do(func() { cerr = errors.Join(drain(nc, cfg.DrainTimeout), srv.Close()) })
			return cerr
		}, nil
	}
	opts := []nats.Option{
		nats.Name(cfg.ConnectionName),
		nats.Timeout(cfg.StartTimeout),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(reconnectDelay),
		nats.RetryOnFailedConnect(cfg.RetryOnFailedConnect),
		nats.DrainTimeout(cfg.DrainTimeout),
	}
	switch {
	case cfg.Token != "":
		opts = append(opts, nats.Token(cfg.Token))
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	opts = append(opts, connLogging(log)...)
	nc, err := dial(ctx, cfg.URL, opts)
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	var cerr error
	return nc, func() error {
		once.Do(func() { cerr = drain(nc, cfg.DrainTimeout) })
		return cerr
	}, nil
}

// dial connects, giving up when ctx ends.
func dial(ctx context.Context, url string, opts []nats.Option) (*nats.Conn, error) {
	type result struct {
		nc  *nats.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(url, opts...)
		ch <- result{nc, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("connect to nats %s: %w", redactURL(url), r.err)
		}
		return r.nc, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.nc != nil {
				r.nc.Close()
			}
		}()
		return nil, fmt.Errorf("connect to nats %s: %w", redactURL(url), ctx.Err())
	}
}

// drain flushes pending publishes and subscriptions, then closes nc, within
// timeout.
func drain(nc *nats.Conn, timeout time.Duration) error {
	if nc.IsClosed() {
		return nil
	}
	closed := make(chan struct{})
	nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
	if err := nc.Drain(); err != nil {
		// Reconnecting or closing: nothing can be flushed any more.
		nc.Close()
		return nil
	}
	select {
	case <-closed:
		return nil
	case <-time.After(timeout):
		nc.Close()
		return fmt.Errorf("drain nats connection: not done within %s", timeout)
	}
}

// reconnectDelay backs off exponentially from ReconnectBaseWait to
// ReconnectMaxWait, plus up to ReconnectJitter at random, so that many
// clients of a restarted server do not reconnect in step.
func reconnectDelay(attempts int) time.Duration {
	d := ReconnectBaseWait
	for i := 1; i < attempts && d < ReconnectMaxWait; i++ {
		d *= 2
	}
	d = min(d, ReconnectMaxWait)
	return d + rand.N(ReconnectJitter)
}

func connLogging(log *slog.Logger) []nats.Option {
	return []nats.Option{
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "error", err)
			} else {
				log.Info("nats disconnected")
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted(), "version", nc.ConnectedServerVersion())
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			log.Warn("nats async error", "subject", subj, "error", err)
		}),
	}
}

// redactURL keeps credentials embedded in a URL out of errors and logs.
func redactURL(u string) string {
	if u == "" {
		return "(in-process)"
	}
	parts := strings.Split(u, ",")
	for i, p := range parts {
		pu, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(unparsable url)"
			continue
		}
		if pu.User != nil {
			pu.User = url.User("redacted")
		}
		parts[i] = pu.String()
	}
	return strings.Join(parts, ",")
}

// serverLogger sends nats-server's log lines to slog.
type serverLogger struct{ log *slog.Logger }

var _ server.Logger = serverLogger{}

func (l serverLogger) Noticef(f string, v ...any) { l.log.Info(fmt.Sprintf(f, v...)) }
func (l serverLogger) Warnf(f string, v ...any)   { l.log.Warn(fmt.Sprintf(f, v...)) }
func (l serverLogger) Fatalf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...), "fatal", true) }
func (l serverLogger) Errorf(f string, v ...any)  { l.log.Error(fmt.Sprintf(f, v...)) }
func (l serverLogger) Debugf(f string, v ...any)  { l.log.Debug(fmt.Sprintf(f, v...)) }
func (l serverLogger) Tracef(f string, v ...any)  { l.log.Debug(fmt.Sprintf(f, v...)) }

var _ io.Closer = (*Server)(nil)
