package git

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// dialTimeout bounds one connection attempt of the proxy to a remote.
const dialTimeout = 30 * time.Second

// proxyUser is the user name of the proxy's credentials (the password is
// a random token per capture).
const proxyUser = "vega"

// proxy is the loopback HTTP proxy that git talks through during one
// capture. It is where the address policy is enforced: every connection
// to a remote is dialled here, and the dialer's Control hook checks the
// resolved address right before connect(2), so DNS rebinding and
// redirects to forbidden addresses are caught whatever name led there.
// It also counts the bytes received from remotes and cuts them off past
// the limit. CONNECT (https) is tunnelled; absolute-URI requests (plain
// http) are forwarded only when http is allowed.
type proxy struct {
	ln        net.Listener
	srv       *http.Server
	token     string
	allowHTTP bool
	policy    func(netip.AddrPort) error
	limit     int64
	log       *slog.Logger

	received atomic.Int64
	over     atomic.Bool
	mu       sync.Mutex
	refusal  error // the first address refused
	conns    sync.WaitGroup
	tunnels  map[net.Conn]struct{}
	closed   bool
	rp       *httputil.ReverseProxy
	ctx      context.Context
	cancel   context.CancelFunc
	serveErr chan error
}

func startProxy(ctx context.Context, token string, allowHTTP bool, policy func(netip.AddrPort) error, limit int64, log *slog.Logger) (*proxy, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start capture proxy: %w", err)
	}
	pctx, cancel := context.WithCancel(ctx)
	p := &proxy{ln: ln, token: token, allowHTTP: allowHTTP, policy: policy, limit: limit, log: log,
		tunnels: map[net.Conn]struct{}{}, ctx: pctx, cancel: cancel, serveErr: make(chan error, 1)}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.Out.Host = pr.In.Host },
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           p.dial,
			ResponseHeaderTimeout: dialTimeout,
			MaxIdleConnsPerHost:   2,
		},
		ModifyResponse: func(r *http.Response) error {
			r.Body = &countingBody{ReadCloser: r.Body, p: p}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "vega capture proxy: "+err.Error(), http.StatusBadGateway)
		},
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return pctx }}
	go func() { p.serveErr <- p.srv.Serve(ln) }()
	return p, nil
}

// URL is the proxy's URL with its credentials, for git's http.proxy.
func (p *proxy) URL() string {
	return "http://" + proxyUser + ":" + p.token + "@" + p.ln.Addr().String()
}

// close stops the proxy and every tunnel.
func (p *proxy) close() {
	p.cancel()
	_ = p.srv.Close()
	p.mu.Lock()
	p.closed = true
	for c := range p.tunnels {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.conns.Wait()
	<-p.serveErr
	if t, ok := p.rp.Transport.(*http.Transport); ok {
		t.CloseIdleConnections()
	}
}

// refused returns the first refused address's error, if any.
func (p *proxy) refused() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refusal
}

// dial connects to a remote; the Control hook applies the policy to the
// address actually being connected to.
func (p *proxy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
		}
		ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
		if err := p.policy(ap); err != nil {
			p.mu.Lock()
			if p.refusal == nil {
				p.refusal = err
			}
			p.mu.Unlock()
			return err
		}
		return nil
	}}
	return d.DialContext(ctx, network, addr)
}

func (p *proxy) authorized(r *http.Request) bool {
	auth := r.Header.Get("Proxy-Authorization")
	raw, ok := strings.CutPrefix(auth, "Basic ")
	if !ok {
		return false
	}
	dec, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(dec, []byte(proxyUser+":"+p.token)) == 1
}

// ServeHTTP tunnels CONNECT requests and forwards plain http ones.
func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !p.authorized(r) {
		w.Header().Set("Proxy-Authenticate", `Basic realm="vega"`)
		http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
		return
	}
	if r.Method == http.MethodConnect {
		p.tunnel(w, r)
		return
	}
	if r.URL.Scheme != "http" || !p.allowHTTP {
		http.Error(w, "vega capture proxy: only https is allowed", http.StatusForbidden)
		return
	}
	if p.over.Load() {
		http.Error(w, "vega capture proxy: size limit reached", http.StatusForbidden)
		return
	}
	p.rp.ServeHTTP(w, r)
}

func (p *proxy) tunnel(w http.ResponseWriter, r *http.Request) {
	upstream, err := p.dial(r.Context(), "tcp", r.Host)
	if err != nil {
		http.Error(w, "vega capture proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		_ = upstream.Close()
		http.Error(w, "vega capture proxy: cannot tunnel", http.StatusInternalServerError)
		return
	}
	client, buf, err := hj.Hijack()
	if err != nil {
		_ = upstream.Close()
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		_ = client.Close()
		_ = upstream.Close()
		return
	}
	p.tunnels[client], p.tunnels[upstream] = struct{}{}, struct{}{}
	p.conns.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.conns.Done()
		defer func() {
			_ = client.Close()
			_ = upstream.Close()
			p.mu.Lock()
			delete(p.tunnels, client)
			delete(p.tunnels, upstream)
			p.mu.Unlock()
		}()
		if _, err := io.WriteString(client, "HTTP/1.1 200 Connection Established\r\n\r\n"); err != nil {
			return
		}
		done := make(chan struct{}, 2)
		go func() {
			// Bytes git already sent after the CONNECT, then the rest.
			if n := buf.Reader.Buffered(); n > 0 {
				b, _ := buf.Reader.Peek(n)
				_, _ = upstream.Write(b)
			}
			_, _ = io.Copy(upstream, client)
			done <- struct{}{}
		}()
		go func() {
			_, _ = io.Copy(client, &countingReader{r: upstream, p: p})
			done <- struct{}{}
		}()
		<-done
	}()
}

// count adds n received bytes; it reports false once past the limit.
func (p *proxy) count(n int) bool {
	if p.received.Add(int64(n)) > p.limit {
		p.over.Store(true)
		return false
	}
	return true
}

// errOverLimit ends a transfer past the limit.
var errOverLimit = errors.New("size limit reached")

type countingReader struct {
	r io.Reader
	p *proxy
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if !c.p.count(n) {
		return 0, errOverLimit
	}
	return n, err
}

type countingBody struct {
	io.ReadCloser
	p *proxy
}

func (c *countingBody) Read(b []byte) (int, error) {
	n, err := c.ReadCloser.Read(b)
	if !c.p.count(n) {
		return 0, errOverLimit
	}
	return n, err
}
