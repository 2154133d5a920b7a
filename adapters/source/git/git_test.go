package git_test

import (
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vega-sec/vega/adapters/source/archive"
	"github.com/vega-sec/vega/adapters/source/git"
	"github.com/vega-sec/vega/domain"
)

// gitCmd runs git in dir with a fixed identity and no user configuration.
func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// server is a git smart-HTTP server (git http-backend behind net/http/cgi)
// on loopback serving repo.git, plus /redirect/… answering 302 to target.
type server struct {
	*httptest.Server
	first, second string // commits: the first and the head of main
	redirectTo    string
}

func newServer(t *testing.T) *server { return newServerTLS(t, false) }

func newServerTLS(t *testing.T, tls bool) *server {
	t.Helper()
	backend, err := exec.LookPath("git")
	if err != nil {
		t.Skipf("git not installed: %v", err)
	}
	out, err := exec.Command(backend, "--exec-path").Output()
	if err != nil {
		t.Fatal(err)
	}
	httpBackend := filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	if _, err := os.Stat(httpBackend); err != nil {
		t.Skipf("git-http-backend not installed: %v", err)
	}
	work := t.TempDir()
	gitCmd(t, work, "init", "-q", "src")
	src := filepath.Join(work, "src")
	write := func(name, body string) {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("app/main.go", "package main\n")
	gitCmd(t, src, "add", ".")
	gitCmd(t, src, "commit", "-q", "-m", "first")
	s := &server{first: gitCmd(t, src, "rev-parse", "HEAD")}
	write("app/config.py", "AWS_ACCESS_KEY_ID = \"AKIA"+"Q7RZ4MWX2KJB6TPN\"\n")
	write("hidden.txt", "export-ignore must not hide me\n")
	write(".gitattributes", "hidden.txt export-ignore\n")
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, src, "add", ".")
	gitCmd(t, src, "commit", "-q", "-m", "second")
	s.second = gitCmd(t, src, "rev-parse", "HEAD")
	root := filepath.Join(work, "srv")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	gitCmd(t, root, "clone", "-q", "--bare", src, "repo.git")
	gitCmd(t, filepath.Join(root, "repo.git"), "config", "uploadpack.allowReachableSHA1InWant", "true")
	h := &cgi.Handler{Path: httpBackend, Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME=" + root}}
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("/redirect/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, s.redirectTo+strings.TrimPrefix(r.URL.RequestURI(), "/redirect"), http.StatusFound)
	})
	if tls {
		s.Server = httptest.NewTLSServer(mux)
	} else {
		s.Server = httptest.NewServer(mux)
	}
	t.Cleanup(s.Close)
	return s
}

// caFile writes the TLS server's certificate as a PEM bundle.
func caFile(t *testing.T, s *httptest.Server) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// countingListener is a loopback port that counts connections accepted.
type countingListener struct {
	net.Listener
	accepts atomic.Int64
}

func newCountingListener(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &countingListener{Listener: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.accepts.Add(1)
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return c
}

func newCapturer(t *testing.T, cfg git.Config) *git.Capturer {
	t.Helper()
	if cfg.TempDir == "" {
		cfg.TempDir = t.TempDir()
	}
	c, err := git.New(cfg)
	if err != nil {
		t.Skipf("git unavailable: %v", err)
	}
	return c
}

func readTree(t *testing.T, tgz string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	if _, err := archive.Extract(t.Context(), tgz, filepath.Join(dir, "x"), archive.DefaultLimits()); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	root := filepath.Join(dir, "x")
	_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(root, p)
			b, _ := os.ReadFile(p)
			files[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	return files
}

func TestCaptureByBranchAndCommit(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	tmp := t.TempDir()
	c := newCapturer(t, git.Config{AllowHTTP: true, AllowPrivate: true, TempDir: tmp})
	cases := []struct {
		name, ref, commit string
		files             []string
		absent            []string
	}{
		{"default branch", "", srv.second, []string{"app/main.go", "app/config.py", "hidden.txt", ".gitattributes"}, []string{"link"}},
		{"branch", "main", srv.second, []string{"app/main.go", "app/config.py"}, []string{"link"}},
		{"commit", srv.first, srv.first, []string{"app/main.go"}, []string{"app/config.py"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "snap.tar.gz")
			res, commit, err := c.Capture(t.Context(), srv.URL+"/repo.git", tc.ref, dst)
			if err != nil {
				t.Fatalf("Capture: %v", err)
			}
			if commit != tc.commit {
				t.Errorf("commit %s, want %s", commit, tc.commit)
			}
			if err := (domain.Capture{Digest: res.Digest, Commit: commit}).Validate(); err != nil {
				t.Errorf("capture: %v", err)
			}
			tree := readTree(t, dst)
			if res.FileCount != len(tree) {
				t.Errorf("file count %d, tree %v", res.FileCount, tree)
			}
			for _, f := range tc.files {
				if _, ok := tree[f]; !ok {
					t.Errorf("%s missing from %v", f, tree)
				}
			}
			for _, f := range tc.absent {
				if _, ok := tree[f]; ok {
					t.Errorf("%s present", f)
				}
			}
		})
	}
	// Same tree captured twice: same digest (canonical).
	d1, d2 := filepath.Join(t.TempDir(), "a.tar.gz"), filepath.Join(t.TempDir(), "b.tar.gz")
	r1, _, err1 := c.Capture(t.Context(), srv.URL+"/repo.git", "main", d1)
	r2, _, err2 := c.Capture(t.Context(), srv.URL+"/repo.git", srv.second, d2)
	if err1 != nil || err2 != nil || r1.Digest != r2.Digest {
		t.Errorf("digests %s %s (%v, %v)", r1.Digest, r2.Digest, err1, err2)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestCaptureOverHTTPS(t *testing.T) {
	t.Parallel()
	srv := newServerTLS(t, true)
	c := newCapturer(t, git.Config{AllowPrivate: true, CAFile: caFile(t, srv.Server)})
	dst := filepath.Join(t.TempDir(), "snap.tar.gz")
	_, commit, err := c.Capture(t.Context(), srv.URL+"/repo.git", "main", dst)
	if err != nil {
		t.Fatalf("Capture over https: %v", err)
	}
	if commit != srv.second {
		t.Errorf("commit %s, want %s", commit, srv.second)
	}
	if _, ok := readTree(t, dst)["app/config.py"]; !ok {
		t.Error("app/config.py missing")
	}
	// Without the private switch, the same https server is refused when
	// connecting (a host name that resolves to loopback).
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	strict := newCapturer(t, git.Config{CAFile: caFile(t, srv.Server)})
	_, _, err = strict.Capture(t.Context(), "https://localhost:"+port+"/repo.git", "main", filepath.Join(t.TempDir(), "x.tar.gz"))
	if !errors.Is(err, git.ErrForbiddenAddress) {
		t.Fatalf("err = %v, want ErrForbiddenAddress", err)
	}
}

func TestHostileInputRefusedBeforeNetwork(t *testing.T) {
	t.Parallel()
	ln := newCountingListener(t)
	addr := ln.Addr().String()
	strict := newCapturer(t, git.Config{})
	lax := newCapturer(t, git.Config{AllowHTTP: true, AllowPrivate: true})
	cases := []struct {
		name string
		c    *git.Capturer
		url  string
		ref  string
	}{
		{"option injection", lax, "-uhttp://" + addr + "/r.git", ""},
		{"upload-pack option", lax, "--upload-pack=touch /tmp/pwned", ""},
		{"ext transport", lax, "ext::sh -c touch% /tmp/pwned", ""},
		{"file URL", lax, "file:///tmp/repo.git", ""},
		{"local path", lax, "/tmp/repo.git", ""},
		{"relative path", lax, "../repo.git", ""},
		{"scp-like", lax, "git@" + addr + ":repo.git", ""},
		{"ssh", lax, "ssh://" + addr + "/repo.git", ""},
		{"git protocol", lax, "git://" + addr + "/repo.git", ""},
		{"credentials", lax, "http://user:secret@" + addr + "/r.git", ""},
		{"plain http refused", strict, "http://" + addr + "/r.git", ""},
		{"loopback literal", strict, "https://" + addr + "/r.git", ""},
		{"private literal", strict, "https://10.1.2.3/r.git", ""},
		{"link-local literal", strict, "https://169.254.169.254/latest", ""},
		{"ipv6 loopback", strict, "https://[::1]:1/r.git", ""},
		{"mapped loopback", strict, "https://[::ffff:127.0.0.1]/r.git", ""},
		{"ref option", lax, "http://" + addr + "/r.git", "--upload-pack=x"},
		{"ref dash", lax, "http://" + addr + "/r.git", "-x"},
		{"ref dots", lax, "http://" + addr + "/r.git", "main..evil"},
		{"ref control", lax, "http://" + addr + "/r.git", "main\nx"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tc.c.Capture(t.Context(), tc.url, tc.ref, filepath.Join(t.TempDir(), "x.tar.gz"))
			var ia *domain.InvalidArgumentError
			if !errors.As(err, &ia) {
				t.Fatalf("err = %v, want an invalid argument", err)
			}
		})
	}
	if n := ln.accepts.Load(); n != 0 {
		t.Errorf("%d connections reached the listener", n)
	}
}

func TestPrivateAddressRefusedAtConnectTime(t *testing.T) {
	t.Parallel()
	ln := newCountingListener(t)
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	// A host name passes validation; what it resolves to is checked when
	// the connection is made.
	c := newCapturer(t, git.Config{AllowHTTP: true})
	_, _, err := c.Capture(t.Context(), "http://localhost:"+port+"/r.git", "", filepath.Join(t.TempDir(), "x.tar.gz"))
	if !errors.Is(err, git.ErrForbiddenAddress) {
		t.Fatalf("err = %v, want ErrForbiddenAddress", err)
	}
	if n := ln.accepts.Load(); n != 0 {
		t.Errorf("%d connections reached the listener", n)
	}
}

func TestRedirectToPrivateAddressRefused(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	target := newCountingListener(t)
	srv.redirectTo = "http://" + target.Addr().String()
	allowed, err := netip.ParseAddrPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// Only the test server's own address is allowed.
	c := newCapturer(t, git.Config{AllowHTTP: true, AddressPolicy: func(ap netip.AddrPort) error {
		if ap == allowed {
			return nil
		}
		return fmt.Errorf("%w: %s", git.ErrForbiddenAddress, ap)
	}})
	// The allowed server itself works…
	if _, _, err := c.Capture(t.Context(), srv.URL+"/repo.git", "main", filepath.Join(t.TempDir(), "ok.tar.gz")); err != nil {
		t.Fatalf("capture from the allowed server: %v", err)
	}
	// …but its redirect to another address is refused when connecting.
	_, _, err = c.Capture(t.Context(), srv.URL+"/redirect/repo.git", "main", filepath.Join(t.TempDir(), "x.tar.gz"))
	if !errors.Is(err, git.ErrForbiddenAddress) {
		t.Fatalf("err = %v, want ErrForbiddenAddress", err)
	}
	if n := target.accepts.Load(); n != 0 {
		t.Errorf("%d connections reached the redirect target", n)
	}
}

func TestFetchSizeLimit(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := newCapturer(t, git.Config{AllowHTTP: true, AllowPrivate: true, MaxFetchBytes: 200})
	_, _, err := c.Capture(t.Context(), srv.URL+"/repo.git", "main", filepath.Join(t.TempDir(), "x.tar.gz"))
	if !errors.Is(err, git.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestUnknownRefFails(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	c := newCapturer(t, git.Config{AllowHTTP: true, AllowPrivate: true})
	_, _, err := c.Capture(t.Context(), srv.URL+"/repo.git", "no-such-branch", filepath.Join(t.TempDir(), "x.tar.gz"))
	if !errors.Is(err, git.ErrGit) || !strings.Contains(err.Error(), "no-such-branch") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		addr         string
		allowPrivate bool
		ok           bool
	}{
		{"93.184.216.34", false, true},
		{"2606:2800:220:1:248:1893:25c8:1946", false, true},
		{"127.0.0.1", false, false},
		{"127.0.0.1", true, true},
		{"10.0.0.1", false, false},
		{"172.16.5.4", false, false},
		{"192.168.1.1", false, false},
		{"169.254.169.254", false, false},
		{"100.64.0.1", false, false},
		{"::1", false, false},
		{"fd00::1", false, false},
		{"fe80::1", false, false},
		{"::ffff:10.0.0.1", false, false},
		{"64:ff9b::a00:1", false, false},
		{"0.0.0.0", true, false},
		{"224.0.0.1", true, false},
	} {
		err := git.CheckAddress(netip.MustParseAddr(tc.addr), tc.allowPrivate)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAddress(%s, %v) = %v", tc.addr, tc.allowPrivate, err)
		}
	}
}
