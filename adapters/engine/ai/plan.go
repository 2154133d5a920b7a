package ai

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/vega-sec/vega/adapters/engine"
	"github.com/vega-sec/vega/adapters/engine/builtin"
)

// Planner limits.
const (
	// DefaultMaxFileBytes is the size above which a file is not audited.
	DefaultMaxFileBytes = 256 << 10
	// DefaultMaxFiles caps the files one scan audits.
	DefaultMaxFiles = 200
	// PromptOverheadTokens is the planner's estimate of a chunk's fixed
	// prompt (instructions and threat profile).
	PromptOverheadTokens = 600
	// ExpectedAnswerTokens is the planner's estimate of one answer.
	ExpectedAnswerTokens = 400
	// avgLineBytes turns a chunk's lines into bytes for the estimate.
	avgLineBytes = 60
	// planSniffBytes is how much of a file's head is searched for a NUL
	// byte (binary files are skipped).
	planSniffBytes = 8 << 10
)

// skipDirs are never entered by the planner.
var skipDirs = []string{".git", "node_modules", "vendor", "dist", "build", "__pycache__"}

// relevance is what makes a file relevant to one threat-profile category.
type relevance struct {
	keywords  []string // matched case-insensitively in the content
	pathWords []string // matched in the lower-case path
	languages []string // builtin.Language names
}

// relevances maps each category to its signals.
var relevances = map[string]relevance{
	engine.CategorySecrets: {
		keywords:  []string{"password", "passwd", "secret", "token", "api_key", "apikey", "private_key", "credential", "begin rsa", "aws_access"},
		pathWords: []string{".env", "config", "settings", "secret", "credential", ".pem", ".key"},
		languages: []string{builtin.LangEnv, builtin.LangYAML, builtin.LangJSON, builtin.LangProperties},
	},
	engine.CategoryInjection: {
		keywords:  []string{"exec(", "eval(", "system(", "query(", "execute(", "subprocess", "popen", "select ", "innerhtml", "render(", "template", "shell"},
		pathWords: []string{"handler", "controller", "route", "view", "api", "db", "sql", "query"},
		languages: []string{builtin.LangPython, builtin.LangGo, builtin.LangJavaScript, builtin.LangTypeScript, builtin.LangJava},
	},
	engine.CategoryCrypto: {
		keywords:  []string{"md5", "sha1", "des", "ecb", "rc4", "insecureskipverify", "verify=false", "cipher", "random", "tls", "ssl", "hash"},
		pathWords: []string{"crypto", "auth", "token", "tls", "cert", "hash"},
		languages: []string{builtin.LangPython, builtin.LangGo, builtin.LangJavaScript, builtin.LangTypeScript, builtin.LangJava},
	},
	engine.CategoryConfig: {
		keywords:  []string{"debug", "cors", "allow_origin", "user root", "privileged", "0.0.0.0", "allowall", "permit"},
		pathWords: []string{"dockerfile", "compose", "config", "settings", ".yaml", ".yml", "k8s", "helm"},
		languages: []string{builtin.LangDockerfile, builtin.LangYAML, builtin.LangJSON, builtin.LangProperties},
	},
}

// PlannedFile is one file the planner chose, with its relevance score.
type PlannedFile struct {
	Path  string
	Size  int64
	Score float64
}

// PlanOptions bound a plan.
type PlanOptions struct {
	// MaxFileBytes skips larger files (0: DefaultMaxFileBytes).
	MaxFileBytes int64
	// MaxFiles caps the plan (0: DefaultMaxFiles).
	MaxFiles int
	// MaxTokens is the token budget the plan must fit (0: no limit): files
	// are taken by score while their estimated cost (content / 4, plus
	// PromptOverheadTokens and ExpectedAnswerTokens per chunk) fits.
	MaxTokens int64
	// ChunkLines is the audit's chunk size, for the estimate.
	ChunkLines int
}

// Plan walks t.Root (through an os.Root: no symlink is followed, no path
// leads out) and ranks the files t admits by relevance to t.Categories
// (all categories when empty): content keywords, path words and language,
// scaled down for size, so small files dense in signals come first. Files
// with no signal at all are not planned. It returns them in audit order,
// trimmed to the options' limits.
func Plan(ctx context.Context, t engine.Target, o PlanOptions) ([]PlannedFile, error) {
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	if o.ChunkLines <= 0 {
		o.ChunkLines = DefaultChunkLines
	}
	root, err := os.OpenRoot(t.Root)
	if err != nil {
		return nil, fmt.Errorf("plan: open root: %w", err)
	}
	defer root.Close()
	cats := t.Categories
	if len(cats) == 0 {
		cats = []string{engine.CategorySecrets, engine.CategoryInjection, engine.CategoryCrypto, engine.CategoryConfig}
	}
	var files []PlannedFile
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if err != nil {
			if p == "." {
				return err
			}
			return nil
		}
		if d.IsDir() {
			if p != "." && (slices.Contains(skipDirs, d.Name()) || engine.Match(t.Exclude, p)) {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || engine.Match(t.Exclude, p) || (len(t.Include) > 0 && !engine.Match(t.Include, p)) {
			return nil
		}
		content, err := readFile(root, p, o.MaxFileBytes)
		if err != nil || content == nil {
			return nil // unreadable, too large or binary: not audited
		}
		if s := score(p, content, cats); s > 0 {
			files = append(files, PlannedFile{Path: p, Size: int64(len(content)), Score: s})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("plan %s: %w", t.Root, err)
	}
	slices.SortStableFunc(files, func(a, b PlannedFile) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	var plan []PlannedFile
	var spent int64
	for _, f := range files {
		if len(plan) == o.MaxFiles {
			break
		}
		chunks := max(int64(math.Ceil(float64(f.Size)/float64(o.ChunkLines*avgLineBytes))), 1)
		cost := f.Size/4 + chunks*(PromptOverheadTokens+ExpectedAnswerTokens)
		if o.MaxTokens > 0 && spent+cost > o.MaxTokens {
			continue // a smaller file further down may still fit
		}
		spent += cost
		plan = append(plan, f)
	}
	return plan, nil
}

// score is a file's relevance to cats.
func score(p string, content []byte, cats []string) float64 {
	lowerPath := strings.ToLower(p)
	lang := builtin.Language(p)
	lower := bytes.ToLower(content)
	s := 0.0
	for _, c := range cats {
		r, ok := relevances[c]
		if !ok {
			continue
		}
		for _, kw := range r.keywords {
			s += math.Min(float64(bytes.Count(lower, []byte(kw))), 5)
		}
		for _, w := range r.pathWords {
			if strings.Contains(lowerPath, w) {
				s += 3
			}
		}
		if lang != "" && slices.Contains(r.languages, lang) {
			s++
		}
	}
	return s / (1 + math.Log2(1+float64(len(content))/4096))
}

// readFile returns the content of the regular file p, or nil for a file
// over max bytes or a binary one.
func readFile(root *os.Root, p string, max int64) ([]byte, error) {
	f, err := root.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() > max {
		return nil, err
	}
	content, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil || int64(len(content)) > max {
		return nil, err
	}
	if bytes.IndexByte(content[:min(len(content), planSniffBytes)], 0) >= 0 {
		return nil, nil
	}
	return content, nil
}
