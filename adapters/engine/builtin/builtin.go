// Package builtin is Vega's deterministic rule engine: regular-expression
// rules in four packs (secrets, injection, crypto, config), shipped as JSON
// data embedded in the binary, each rule carrying the positive and negative
// samples its tests run.
//
// How a scan works: the tree under Target.Root is walked once through an
// os.Root (so no path or symlink leads out of it; symlinks are not followed
// at all), skipping .git, node_modules and vendor directories, binary files
// (a NUL byte in the first BinarySniffSize bytes) and files larger than
// MaxFileSize. Each file is opened by name in its own directory (one openat,
// not one per path component), sized with one fstat of the open file and
// read once into a reused buffer by a bounded pool of workers (GOMAXPROCS by
// default). One Aho-Corasick pass finds the rules' keywords (ASCII case-
// insensitively, without a lower-cased copy); a rule's patterns then run
// only over the lines holding its keyword hits (plus the rule's window_lines
// after them, for matches that span lines), and an anchored rule's patterns
// are tried only at the keyword positions themselves. A rule whose keywords
// a file lacks costs nothing, and one whose keyword occurs once in a large
// file costs a line. Before a pattern runs over a window, its literal
// prefilter, derived from the pattern's syntax tree when the rules load,
// must admit the window: every literal set that each match of the pattern
// must hold one of, and for an anchored rule the literals a match starts
// with. Most windows fail it, so most patterns never run: a line with
// "Verify(" and no "InsecureSkipVerify" costs that rule a few substring
// searches, not eleven regular-expression runs. Every match a rule can make
// must therefore contain one of its keywords (at its start, for an anchored
// rule); the rule examples test that. Line numbers are computed for matches
// only.
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
	"strings"
	"sync"
	"sync/atomic"

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
	// minReadBuffer is the least a worker's read buffer grows to, so that
	// small files do not make it grow a little at a time.
	minReadBuffer = 64 << 10
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
	jobs := make(chan fileJob, 4*e.workers)
	results := make(chan []engine.Finding, 2*e.workers)
	var walkErr error
	go func() {
		defer close(jobs)
		walkErr = e.walk(ctx, root, t, jobs)
	}()
	var wg sync.WaitGroup
	for range e.workers {
		wg.Go(func() {
			sc := e.pool.Get().(*scanner)
			defer e.pool.Put(sc)
			for j := range jobs {
				if ctx.Err() != nil {
					j.dir.release() // drain so the walker can finish
					continue
				}
				found, err := sc.scanFile(j, &t)
				j.dir.release()
				if err != nil {
					e.log.LogAttrs(ctx, slog.LevelWarn, "builtin: file skipped", slog.String("file", j.path), slog.Any("error", err))
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

// fileJob is one file for a worker: its name in the directory dir and its
// repo-relative path.
type fileJob struct {
	dir        *dirRef
	name, path string
}

// dirRef is an open directory shared by the jobs of its files; the last
// one to release it closes it, so a scan holds few directories open at
// once. Opening a file by its name in its own directory costs one openat,
// where opening it by its path from the scan root costs one per path
// component.
type dirRef struct {
	root *os.Root
	refs atomic.Int64
	// owned says release closes root; the scan root is closed by Scan.
	owned bool
}

func (d *dirRef) release() {
	if d.refs.Add(-1) == 0 && d.owned {
		d.root.Close()
	}
}

// walk sends every regular file under root that t admits to jobs,
// depth-first in name order. It returns ctx's error when cancelled and an
// error only when the root itself cannot be read; an unreadable
// subdirectory is logged and skipped. Symlinks and special files are never
// followed or read.
func (e *Engine) walk(ctx context.Context, root *os.Root, t engine.Target, jobs chan<- fileJob) error {
	top := &dirRef{root: root}
	top.refs.Store(1)
	defer top.release()
	entries, err := readDir(root)
	if err != nil {
		return fmt.Errorf("walk %s: %w", t.Root, err)
	}
	return e.walkDir(ctx, top, "", entries, t, jobs)
}

func readDir(r *os.Root) ([]fs.DirEntry, error) {
	f, err := r.Open(".")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return entries, err
}

// walkDir sends the files of the directory d, at repo-relative path rel
// ("" for the root), holding entries, and walks its subdirectories.
func (e *Engine) walkDir(ctx context.Context, d *dirRef, rel string, entries []fs.DirEntry, t engine.Target, jobs chan<- fileJob) error {
	for _, ent := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := ent.Name()
		p := name
		if rel != "" {
			p = rel + "/" + name
		}
		if ent.IsDir() {
			if slices.Contains(e.skipDirs, name) || engine.Match(t.Exclude, p) {
				continue
			}
			if err := e.walkSub(ctx, d, p, name, t, jobs); err != nil {
				return err
			}
			continue
		}
		if !ent.Type().IsRegular() {
			continue
		}
		if engine.Match(t.Exclude, p) || (len(t.Include) > 0 && !engine.Match(t.Include, p)) {
			continue
		}
		d.refs.Add(1)
		select {
		case jobs <- fileJob{dir: d, name: name, path: p}:
		case <-ctx.Done():
			d.refs.Add(-1)
			return ctx.Err()
		}
	}
	return nil
}

// walkSub opens the subdirectory name of d (at path p) and walks it; it
// returns only ctx's error.
func (e *Engine) walkSub(ctx context.Context, d *dirRef, p, name string, t engine.Target, jobs chan<- fileJob) error {
	sub, err := d.root.OpenRoot(name)
	var entries []fs.DirEntry
	if err == nil {
		entries, err = readDir(sub)
		if err != nil {
			sub.Close()
		}
	}
	if err != nil {
		e.log.LogAttrs(ctx, slog.LevelWarn, "builtin: path skipped", slog.String("path", p), slog.Any("error", err))
		return nil
	}
	sd := &dirRef{root: sub, owned: true}
	sd.refs.Store(1) // the walk's own reference
	defer sd.release()
	return e.walkDir(ctx, sd, p, entries, t, jobs)
}

// errSkipped marks a file deliberately left unscanned; it is not logged.
var errSkipped = errors.New("skipped")

// readFile reads the regular file j into sc.buf, reusing it: one open in
// its directory, one fstat of the open file to size the read, and
// (normally) one read. It returns errSkipped for a file that is too large
// or not regular. A file that grows while it is read is scanned as stat
// saw it.
func (sc *scanner) readFile(j fileJob) ([]byte, error) {
	f, err := j.dir.root.Open(j.name)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", j.path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", j.path, err)
	}
	if !st.Mode().IsRegular() || st.Size() > sc.e.maxFileSize {
		return nil, errSkipped
	}
	size := int(st.Size())
	if cap(sc.buf) < size {
		sc.buf = make([]byte, size, max(size, minReadBuffer))
	}
	buf := sc.buf[:size]
	n := 0
	for n < size {
		m, err := f.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) || (err == nil && m == 0) {
			break // it shrank while we read: scan what is there
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", j.path, err)
		}
	}
	return buf[:n], nil
}
