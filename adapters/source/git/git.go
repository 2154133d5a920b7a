// Package git captures a ref of a remote git repository as a canonical
// snapshot: the same canonical tar.gz that archive uploads produce, made by
// the same code (archive.Normalize), so a tree has one digest however it
// arrived.
//
// How a capture runs: a bare repository in a private temporary directory,
// `git fetch --depth 1 <url> <ref>`, then `git archive` of the fetched
// commit streamed through a filter (regular files and directories only:
// symbolic links are dropped, as a snapshot never holds links) into a
// temporary tar.gz that archive.Normalize canonicalises. The commit's tree
// is read as it is: `$GIT_DIR/info/attributes` neutralises export-ignore
// and export-subst, so a repository cannot hide files from the scan.
//
// Protections (DESIGN.md, Security requirements):
//
//   - Before any network access, the URL must pass domain.ValidateGitURL
//     (https only unless Config.AllowHTTP; no leading '-', no transport
//     helpers such as "ext::", no "file:", no local paths, no scp-like
//     "user@host:path", no credentials), and a URL whose host is an IP
//     literal the address policy refuses is refused too; the ref must pass
//     domain.ValidateGitRef (no leading '-', no "..", no control
//     characters). A refusal is an *domain.InvalidArgumentError.
//   - At connect time: git reaches the network only through a loopback
//     HTTP proxy run by the capture for its duration (git's http.proxy,
//     with a per-capture password). The proxy dials every connection
//     itself, and the dialer's Control hook checks the resolved address
//     right before connect(2): loopback, private, link-local, unspecified,
//     multicast and other special-purpose addresses are refused
//     (ErrForbiddenAddress) unless Config.AllowPrivate
//     (VEGA_GIT_ALLOW_PRIVATE). Because the check is on the address being
//     connected to, DNS rebinding and redirects to internal addresses are
//     caught, whatever name or redirect led there. Doing the smart-HTTP
//     protocol in Go instead would have meant re-implementing pack
//     negotiation and verification; the proxy keeps git for what it does
//     well and keeps the network decision in Go.
//   - git runs with an empty environment (PATH, HOME and XDG_CONFIG_HOME in
//     the temporary directory, GIT_CONFIG_NOSYSTEM=1,
//     GIT_CONFIG_GLOBAL=/dev/null, GIT_TERMINAL_PROMPT=0, LC_ALL=C) and
//     with protocol.allow=never, protocol.https.allow=always (and http when
//     allowed), core.hooksPath=/dev/null, submodule.recurse=false,
//     fetch.recurseSubmodules=false, no credential helper,
//     transfer.fsckObjects=true; the fetch is shallow (--depth 1, no tags).
//   - Limits: the bytes received from remotes are counted by the proxy and
//     the transfer is cut past Config.MaxFetchBytes (ErrTooLarge); the
//     archive is bounded by Config.Limits; the whole capture by
//     Config.Timeout and ctx.
package git

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/vega-sec/vega/adapters/source/archive"
	"github.com/vega-sec/vega/domain"
)

// Defaults of Config.
const (
	// DefaultMaxFetchBytes caps the bytes a capture receives from remotes
	// (1 GiB).
	DefaultMaxFetchBytes int64 = 1 << 30
	// DefaultTimeout bounds one capture.
	DefaultTimeout = 10 * time.Minute
	// MaxErrorOutput is how much of git's error output a failure reports.
	MaxErrorOutput = 500
)

// Errors of Capture (besides *domain.InvalidArgumentError for a refused
// URL or ref, and archive's *archive.Error for a refused tree). Their
// messages are safe to record in SnapshotFailed.
var (
	// ErrForbiddenAddress: a connection to an address the policy refuses
	// (loopback, private, link-local, …) was attempted and stopped.
	ErrForbiddenAddress = errors.New("connection to a forbidden address refused")
	// ErrTooLarge: the remote sent more than Config.MaxFetchBytes.
	ErrTooLarge = errors.New("repository too large")
	// ErrGit: git failed (unreachable remote, unknown ref, …); the error
	// carries the end of git's output.
	ErrGit = errors.New("git failed")
)

// Config tunes a Capturer. The zero value is the secure default.
type Config struct {
	// GitPath is the git binary (default: "git" found in PATH).
	GitPath string
	// AllowHTTP also accepts plain http:// URLs (VEGA_GIT_ALLOW_PRIVATE).
	AllowHTTP bool
	// AllowPrivate allows connections to loopback, private and link-local
	// addresses (VEGA_GIT_ALLOW_PRIVATE, for tests and local use).
	AllowPrivate bool
	// AddressPolicy, when set, replaces the built-in address rule (and
	// AllowPrivate): it is called with every address about to be connected
	// to and refuses it by returning an error (wrap ErrForbiddenAddress).
	// It exists for tests that must allow one loopback server only.
	AddressPolicy func(netip.AddrPort) error
	// MaxFetchBytes caps the bytes received (DefaultMaxFetchBytes).
	MaxFetchBytes int64
	// Timeout bounds a capture (DefaultTimeout).
	Timeout time.Duration
	// Limits bound the captured tree (zero fields: archive's defaults).
	Limits archive.Limits
	// CAFile is a PEM bundle git trusts instead of the system's (a private
	// CA; tests). Empty: the system's.
	CAFile string
	// TempDir is where the private work directory is made (os.TempDir()).
	TempDir string
	// Logger (nil: discard).
	Logger *slog.Logger
}

// Capturer captures git refs. It is safe for concurrent use.
type Capturer struct {
	cfg    Config
	git    string
	policy func(netip.AddrPort) error
	log    *slog.Logger
}

// New returns a Capturer. It fails when git cannot be found.
func New(cfg Config) (*Capturer, error) {
	if cfg.GitPath == "" {
		cfg.GitPath = "git"
	}
	path, err := exec.LookPath(cfg.GitPath)
	if err != nil {
		return nil, fmt.Errorf("new git capturer: %w", err)
	}
	if cfg.MaxFetchBytes <= 0 {
		cfg.MaxFetchBytes = DefaultMaxFetchBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.TempDir == "" {
		cfg.TempDir = os.TempDir()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	policy := cfg.AddressPolicy
	if policy == nil {
		allow := cfg.AllowPrivate
		policy = func(ap netip.AddrPort) error { return CheckAddress(ap.Addr(), allow) }
	}
	return &Capturer{cfg: cfg, git: path, policy: policy, log: log.With("component", "git")}, nil
}

// special are special-purpose ranges refused besides those netip
// classifies (RFC 6890 and successors).
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64: may embed any IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"), // local NAT64
	netip.MustParsePrefix("2002::/16"),      // 6to4: may embed any IPv4
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("100::/64"),
}

// CheckAddress returns an error wrapping ErrForbiddenAddress for an
// address a capture must not connect to: unspecified, multicast and
// broadcast always; loopback, private (RFC 1918, fc00::/7), link-local
// and other special-purpose ranges unless allowPrivate.
func CheckAddress(a netip.Addr, allowPrivate bool) error {
	a = a.Unmap()
	switch {
	case !a.IsValid(), a.IsUnspecified(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, a)
	case allowPrivate:
		return nil
	case a.IsLoopback(), a.IsPrivate(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast(), !a.IsGlobalUnicast():
		return fmt.Errorf("%w: %s is not a public address", ErrForbiddenAddress, a)
	}
	for _, p := range special {
		if p.Contains(a) {
			return fmt.Errorf("%w: %s is a special-purpose address", ErrForbiddenAddress, a)
		}
	}
	return nil
}

// Validate checks a URL and ref as Capture does before any network access.
// It returns an *domain.InvalidArgumentError for "url" or "ref".
func (c *Capturer) Validate(rawURL, ref string) error {
	if err := domain.ValidateGitURL("url", rawURL, domain.SourcePolicy{AllowHTTP: c.cfg.AllowHTTP}); err != nil {
		return err
	}
	if err := domain.ValidateGitRef("ref", ref); err != nil {
		return err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return &domain.InvalidArgumentError{Field: "url", Reason: "not a URL"}
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		port := uint64(443)
		if strings.EqualFold(u.Scheme, "http") {
			port = 80
		}
		if p := u.Port(); p != "" {
			if port, err = strconv.ParseUint(p, 10, 16); err != nil {
				return &domain.InvalidArgumentError{Field: "url", Reason: "bad port"}
			}
		}
		if err := c.policy(netip.AddrPortFrom(a, uint16(port))); err != nil {
			return &domain.InvalidArgumentError{Field: "url", Reason: err.Error()}
		}
	}
	return nil
}

var commitRe = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// Capture fetches ref (empty: the remote's HEAD; a branch, tag or full
// commit ID) of the repository at rawURL and writes its tree, canonical,
// to dst. It returns the archive.Result and the commit captured. Errors:
// an *domain.InvalidArgumentError for a refused URL or ref (nothing was
// contacted), ErrForbiddenAddress, ErrTooLarge, ErrGit, an *archive.Error
// for a tree the archive rules refuse, or ctx's error.
func (c *Capturer) Capture(ctx context.Context, rawURL, ref, dst string) (archive.Result, string, error) {
	if err := c.Validate(rawURL, ref); err != nil {
		return archive.Result{}, "", err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	dir, err := os.MkdirTemp(c.cfg.TempDir, "vega-git-*")
	if err != nil {
		return archive.Result{}, "", fmt.Errorf("capture: %w", err)
	}
	defer os.RemoveAll(dir)
	home := filepath.Join(dir, "home")
	repo := filepath.Join(dir, "repo.git")
	if err := os.Mkdir(home, 0o700); err != nil {
		return archive.Result{}, "", fmt.Errorf("capture: %w", err)
	}

	var tok [16]byte
	_, _ = rand.Read(tok[:])
	px, err := startProxy(ctx, hex.EncodeToString(tok[:]), c.cfg.AllowHTTP, c.policy, c.cfg.MaxFetchBytes, c.log)
	if err != nil {
		return archive.Result{}, "", err
	}
	defer px.close()

	g := &runner{git: c.git, home: home, proxy: px.URL(), allowHTTP: c.cfg.AllowHTTP, caFile: c.cfg.CAFile}
	if _, err := g.run(ctx, nil, "init", "--bare", "--quiet", repo); err != nil {
		return archive.Result{}, "", err
	}
	// Highest-precedence attributes: the tree is scanned as it is.
	if err := os.WriteFile(filepath.Join(repo, "info", "attributes"), []byte("* -export-ignore -export-subst\n"), 0o600); err != nil {
		return archive.Result{}, "", fmt.Errorf("capture: %w", err)
	}
	want := ref
	if want == "" {
		want = "HEAD"
	}
	if _, err := g.run(ctx, nil, "--git-dir", repo, "fetch", "--quiet", "--depth", "1", "--no-tags", "--no-recurse-submodules", "--", rawURL, want); err != nil {
		switch {
		case ctx.Err() != nil:
			return archive.Result{}, "", fmt.Errorf("capture: %w", ctx.Err())
		case px.over.Load():
			return archive.Result{}, "", fmt.Errorf("%w: the remote sent more than %d bytes", ErrTooLarge, c.cfg.MaxFetchBytes)
		case px.refused() != nil:
			return archive.Result{}, "", px.refused()
		}
		return archive.Result{}, "", err
	}
	out, err := g.run(ctx, nil, "--git-dir", repo, "rev-parse", "--verify", "--end-of-options", "FETCH_HEAD^{commit}")
	if err != nil {
		return archive.Result{}, "", err
	}
	commit := strings.TrimSpace(string(out))
	if !commitRe.MatchString(commit) {
		return archive.Result{}, "", fmt.Errorf("%w: unexpected commit %q", ErrGit, commit)
	}
	if commitRe.MatchString(ref) && ref != commit {
		return archive.Result{}, "", fmt.Errorf("%w: fetched %s, not the requested commit", ErrGit, commit)
	}
	src := filepath.Join(dir, "tree.tar.gz")
	if err := c.archiveTree(ctx, g, repo, commit, src); err != nil {
		return archive.Result{}, "", err
	}
	res, err := archive.Normalize(ctx, src, archive.FormatTarGz, dst, c.cfg.Limits)
	if err != nil {
		return archive.Result{}, "", err
	}
	return res, commit, nil
}

// treePrefix is the top-level folder git archive writes every entry under;
// archive.Normalize strips it (one top-level folder), so paths are the
// repository's own even when the repository has one top-level folder.
const treePrefix = "snapshot/"

// archiveTree streams `git archive` of commit into a tar.gz at dst, with
// regular files and directories only, within the archive limits.
func (c *Capturer) archiveTree(ctx context.Context, g *runner, repo, commit, dst string) error {
	lim := c.cfg.Limits
	def := archive.DefaultLimits()
	if lim.MaxEntries <= 0 {
		lim.MaxEntries = def.MaxEntries
	}
	if lim.MaxTotalBytes <= 0 {
		lim.MaxTotalBytes = def.MaxTotalBytes
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	filter := func(r io.Reader) error {
		tr := tar.NewReader(r)
		entries, total := 0, int64(0)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("%w: read git archive: %v", ErrGit, err)
			}
			switch h.Typeflag {
			case tar.TypeReg, tar.TypeDir:
			default:
				continue // links, the pax global header: not part of a snapshot
			}
			if entries++; entries > lim.MaxEntries {
				return &archive.Error{Reason: archive.ErrTooManyEntries}
			}
			if total += h.Size; total > lim.MaxTotalBytes {
				return &archive.Error{Reason: archive.ErrTooLarge, Entry: strings.TrimPrefix(h.Name, treePrefix)}
			}
			if err := tw.WriteHeader(&tar.Header{Name: h.Name, Typeflag: h.Typeflag, Mode: h.Mode, Size: h.Size, ModTime: h.ModTime, Format: tar.FormatPAX}); err != nil {
				return fmt.Errorf("capture: %w", err)
			}
			if _, err := io.Copy(tw, tr); err != nil {
				return fmt.Errorf("capture: %w", err)
			}
		}
	}
	if _, err := g.run(ctx, filter, "--git-dir", repo, "archive", "--format=tar", "--prefix="+treePrefix, "--end-of-options", commit); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	return f.Close()
}

// runner runs git with the capture's environment and configuration.
type runner struct {
	git, home, proxy, caFile string
	allowHTTP                bool
}

// run runs git with args; stdout goes to consume when set (whose error
// wins), else it is returned.
func (g *runner) run(ctx context.Context, consume func(io.Reader) error, args ...string) ([]byte, error) {
	cfg := []string{
		"-c", "protocol.allow=never",
		"-c", "protocol.https.allow=always",
		"-c", "http.proxy=" + g.proxy,
		"-c", "http.proxyAuthMethod=basic",
		"-c", "http.followRedirects=initial",
		"-c", "core.hooksPath=/dev/null",
		"-c", "core.fsmonitor=false",
		"-c", "submodule.recurse=false",
		"-c", "fetch.recurseSubmodules=false",
		"-c", "credential.helper=",
		"-c", "core.askPass=",
		"-c", "transfer.fsckObjects=true",
		"-c", "gc.auto=0",
		"-c", "maintenance.auto=false",
		"-c", "init.defaultBranch=main",
		"-c", "advice.detachedHead=false",
	}
	if g.allowHTTP {
		cfg = append(cfg, "-c", "protocol.http.allow=always")
	}
	if g.caFile != "" {
		cfg = append(cfg, "-c", "http.sslCAInfo="+g.caFile)
	}
	cmd := exec.CommandContext(ctx, g.git, append(cfg, args...)...)
	cmd.Dir = g.home
	allowed := "https"
	if g.allowHTTP {
		allowed = "https:http"
	}
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + g.home,
		"XDG_CONFIG_HOME=" + g.home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ALLOW_PROTOCOL=" + allowed,
		"GIT_PROTOCOL_FROM_USER=0",
		"GIT_NO_REPLACE_OBJECTS=1",
		"LC_ALL=C",
	}
	cmd.WaitDelay = 5 * time.Second
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, max: 64 << 10}
	var stdout bytes.Buffer
	var consumeErr error
	if consume == nil {
		cmd.Stdout = &limitedBuffer{b: &stdout, max: 1 << 20}
		if err := cmd.Run(); err != nil {
			return nil, gitError(args, err, stderr.String())
		}
		return stdout.Bytes(), nil
	}
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("capture: start git: %w", err)
	}
	consumeErr = consume(pipe)
	if consumeErr != nil {
		_ = cmd.Process.Kill()
		_, _ = io.Copy(io.Discard, pipe)
	}
	err = cmd.Wait()
	if consumeErr != nil {
		return nil, consumeErr
	}
	if err != nil {
		return nil, gitError(args, err, stderr.String())
	}
	return nil, nil
}

// gitError reports a failed git command with the end of its output.
func gitError(args []string, err error, stderr string) error {
	sub := ""
	for i := 0; i < len(args); i++ {
		if args[i] == "--git-dir" {
			i++
			continue
		}
		sub = args[i]
		break
	}
	out := strings.TrimSpace(stderr)
	if len(out) > MaxErrorOutput {
		out = "…" + strings.ToValidUTF8(out[len(out)-MaxErrorOutput:], "")
	}
	if out == "" {
		out = err.Error()
	}
	return fmt.Errorf("%w: git %s: %s", ErrGit, sub, out)
}

type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
