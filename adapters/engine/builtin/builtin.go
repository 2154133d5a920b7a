// Package builtin is Vega's deterministic rule engine: regular-expression
// rules in four packs (secrets, injection, crypto, config), shipped as JSON
// data embedded in the binary, each rule carrying the positive and negative
// samples its tests run.
//
// How a scan works: the tree under Target.Root is walked once through an
// os.Root (so no path or symlink leads out of it; symlinks are not
// followed at all), skipping .git, node_modules and vendor directories,
// binary files (a NUL byte in the first BinarySniffSize bytes) and files
// larger than MaxFileSize. Each file is read once into a reused buffer by a
// bounded pool of workers. One Aho-Corasick pass finds the rules' keywords
// (ASCII case-insensitively, without a lower-cased copy); a rule's patterns
// then run only over the lines holding its keyword hits (plus the rule's
// window_lines after them, for matches that span lines), and an anchored
// rule's patterns are tried only at the keyword positions themselves. A rule
// whose keywords a file lacks costs nothing, and one whose keyword occurs
// once in a large file costs a line. Every match a rule can make must
// therefore contain one of its keywords (at its start, for an anchored
// rule); the rule examples test that. Line numbers are
// computed for matches only.
package builtin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"runtime"
	"slices"
	"sync"

	"github.com/vega-sec/vega/adapters/engine"
)

// Name is the engine name reported in every Finding.
const Name = "builtin"

// Limits of a scan.
const (
	// MaxFileSize is the default size above which a file is skipped:
	// larger files are almost always generated, minified or data.
	MaxFileSize = 2 << 20
	// BinarySniffSize is how much of a file's head is searched for a NUL
	// byte, whose presence marks the file as binary and skips it.
	BinarySniffSize = 8 << 10
)

// DefaultSkipDirs are the directory names skipped at any depth unless
// WithSkipDirs says otherwise: version-control metadata and vendored
// third-party code, which the repository's owners do not maintain.
var DefaultSkipDirs = []string{".git", "node_modules", "vendor"}

var _ engine.Engine = (*Engine)(nil)

// Engine is the builtin rule engine. It is immutable after New and safe for
// concurrent use: several Scans may run at once.
type Engine struct {
	fp          *engine.Fingerprinter
	log         *slog.Logger
	workers     int
	maxFileSize int64
	skipDirs    []string
	rules       []*rule
	keywords    *keywordSet
	kwRules     [][]int // keyword ID → indexes of the rules that use it
	pool        sync.Pool
}

type config struct {
	log         *slog.Logger
	workers     int
	maxFileSize int64
	skipDirs    []string
}

// Option configures New. An option given an invalid value makes New fail.
type Option func(*config) error

// WithLogger sets the logger for skipped files and scan summaries; nil
// discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l != nil {
			c.log = l
		}
		return nil
	}
}

// WithWorkers sets how many files are scanned at once (default GOMAXPROCS).
// n must be at least 1.
func WithWorkers(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("workers %d: must be at least 1", n)
		}
		c.workers = n
		return nil
	}
}

// WithMaxFileSize sets the size above which a file is skipped (default
// MaxFileSize). n must be positive.
func WithMaxFileSize(n int64) Option {
	return func(c *config) error {
		if n < 1 {
			return fmt.Errorf("max file size %d: must be positive", n)
		}
		c.maxFileSize = n
		return nil
	}
}

// WithSkipDirs replaces DefaultSkipDirs: directories with one of these base
// names are not entered. No names means no directory is skipped by name.
func WithSkipDirs(names ...string) Option {
	return func(c *config) error {
		for _, n := range names {
			if n == "" || n == "." || n == ".." || path.Base(n) != n {
				return fmt.Errorf("skip dir %q: must be a plain directory name", n)
			}
		}
		c.skipDirs = slices.Clone(names)
		return nil
	}
}

// New returns a builtin engine that fingerprints its findings with fp. It
// fails when fp is nil, an option is invalid or (a build defect that the
// package tests catch) an embedded rule does not compile.
func New(fp *engine.Fingerprinter, opts ...Option) (*Engine, error) {
	if fp == nil {
		return nil, errors.New("new builtin engine: nil fingerprinter")
	}
	c := config{
		log:         slog.New(slog.DiscardHandler),
		workers:     runtime.GOMAXPROCS(0),
		maxFileSize: MaxFileSize,
		skipDirs:    DefaultSkipDirs,
	}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, fmt.Errorf("new builtin engine: %w", err)
		}
	}
	rules, err := loadRules()
	if err != nil {
		return nil, fmt.Errorf("new builtin engine: %w", err)
	}
	e := &Engine{
		fp: fp, log: c.log, workers: c.workers, maxFileSize: c.maxFileSize,
		skipDirs: c.skipDirs, rules: rules,
	}
	ids := map[string]int{}
	var kws []string
	for i, r := range rules {
		for _, kw := range r.Keywords {
			id, ok := ids[kw]
			if !ok {
				id = len(kws)
				ids[kw] = id
				kws = append(kws, kw)
				e.kwRules = append(e.kwRules, nil)
			}
			if !slices.Contains(e.kwRules[id], i) {
				e.kwRules[id] = append(e.kwRules[id], i)
			}
		}
	}
	if e.keywords, err = newKeywordSet(kws); err != nil {
		return nil, fmt.Errorf("new builtin engine: %w", err)
	}
	e.pool.New = func() any { return newScanner(e) }
	return e, nil
}

// Name returns Name.
func (e *Engine) Name() string { return Name }

// Rules returns a copy of every rule, in pack then file order.
func (e *Engine) Rules() []Rule {
	out := make([]Rule, len(e.rules))
	for i, r := range e.rules {
		out[i] = r.public()
	}
	return out
}

// ScanContent runs every rule that applies to a file at the repo-relative
// path p over content, as Scan would for that file but with no target
// filters, and returns the findings in file order. It does no I/O and is
// safe for concurrent use.
func (e *Engine) ScanContent(p string, content []byte) []engine.Finding {
	sc := e.pool.Get().(*scanner)
	defer e.pool.Put(sc)
	return sc.scan(p, content, nil)
}

// Scan walks t.Root and reports every finding that passes t's filters.
// emit is never called concurrently; the findings of one file are emitted
// together in file order, files in no fixed order. A file that cannot be
// read is skipped and logged, not an error. Scan returns an error wrapping
// engine.ErrInvalidTarget for a bad target, the error from opening the root,
// ctx's error when cancelled (checked between files), or the first error
// emit returns.
func (e *Engine) Scan(ctx context.Context, t engine.Target, emit func(engine.Finding) error) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("builtin scan: %w", err)
	}
	root, err := os.OpenRoot(t.Root)
	if err != nil {
		return fmt.Errorf("builtin scan: open root: %w", err)
	}
	defer root.Close()

	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	paths := make(chan string, 4*e.workers)
	results := make(chan []engine.Finding, 2*e.workers)
	var walkErr error
	go func() {
		defer close(paths)
		walkErr = e.walk(ctx, root, t, paths)
	}()
	var wg sync.WaitGroup
	for range e.workers {
		wg.Go(func() {
			sc := e.pool.Get().(*scanner)
			defer e.pool.Put(sc)
			for p := range paths {
				if ctx.Err() != nil {
					continue // drain so the walker can finish
				}
				found, err := sc.scanFile(root, p, &t)
				if err != nil {
					e.log.LogAttrs(ctx, slog.LevelWarn, "builtin: file skipped", slog.String("file", p), slog.Any("error", err))
					continue
				}
				if len(found) > 0 {
					select {
					case results <- found:
					case <-ctx.Done():
					}
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	var emitErr error
	for found := range results {
		if emitErr != nil {
			continue
		}
		for _, f := range found {
			if err := emit(f); err != nil {
				emitErr = fmt.Errorf("builtin scan: emit: %w", err)
				cancel()
				break
			}
		}
	}
	// results is closed: every worker and the walker have returned.
	switch {
	case emitErr != nil:
		return emitErr
	case walkErr != nil:
		return fmt.Errorf("builtin scan: %w", walkErr)
	case parent.Err() != nil:
		// Cancelled after the walk: workers skipped the files left.
		return fmt.Errorf("builtin scan: %w", parent.Err())
	}
	return nil
}

// walk sends every regular file under root that t admits to paths. It
// returns ctx's error when cancelled and an error only when the root itself
// cannot be read; an unreadable subdirectory is logged and skipped.
func (e *Engine) walk(ctx context.Context, root *os.Root, t engine.Target, paths chan<- string) error {
	return fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			if p == "." {
				return fmt.Errorf("walk %s: %w", t.Root, err)
			}
			e.log.LogAttrs(ctx, slog.LevelWarn, "builtin: path skipped", slog.String("path", p), slog.Any("error", err))
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != "." && (slices.Contains(e.skipDirs, d.Name()) || engine.Match(t.Exclude, p)) {
				return fs.SkipDir
			}
			return nil
		}
		// Symlinks and special files are never followed or read.
		if !d.Type().IsRegular() {
			return nil
		}
		if engine.Match(t.Exclude, p) || (len(t.Include) > 0 && !engine.Match(t.Include, p)) {
			return nil
		}
		select {
		case paths <- p:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

// errSkipped marks a file deliberately left unscanned; it is not logged.
var errSkipped = errors.New("skipped")

// readFile reads the regular file p under root into sc.buf, reusing it. It
// returns errSkipped for a file that is too large or not regular.
func (sc *scanner) readFile(root *os.Root, p string) ([]byte, error) {
	f, err := root.Open(p)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", p, err)
	}
	if !st.Mode().IsRegular() || st.Size() > sc.e.maxFileSize {
		return nil, errSkipped
	}
	size := int(st.Size())
	if cap(sc.buf) < size+1 {
		sc.buf = make([]byte, size+1, max(size+1, 64<<10))
	}
	// Read one byte more than stat said, to notice a file that grew.
	n, err := io.ReadFull(f, sc.buf[:size+1])
	switch {
	case err == nil:
		return sc.buf[:size], nil // it grew while we read: scan what stat saw
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return sc.buf[:n], nil
	default:
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
}
