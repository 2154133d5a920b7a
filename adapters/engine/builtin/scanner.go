package builtin

import (
	"bytes"
	"cmp"
	"errors"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/vega-sec/vega/adapters/engine"
)

// Snippet limits: a snippet shows at most this many lines and bytes of the
// matched lines, secrets redacted.
const (
	MaxSnippetLines = 8
	MaxSnippetBytes = 512
)

// redactedMark replaces the hidden part of a secret in a snippet.
const redactedMark = "****"

// scanner holds one worker's reusable buffers. It is not safe for concurrent
// use; the Engine pools them.
type scanner struct {
	e          *Engine
	buf        []byte
	applicable []bool
	hits       [][]int // rule index → offsets where its keyword hits start
	active     []int   // rule indexes with hits in this file
	raws       []rawMatch
	spans      []span
	occ        map[string]int
	data       []byte
}

// rawMatch is one pattern match before filtering; offsets are into the file.
type rawMatch struct {
	r              *rule
	start, end     int
	secStart, secE int // secret span, or -1, -1
	drop           bool
}

// span is a secret's place in the file and how much of it a snippet shows.
type span struct {
	start, end, keep int
}

func newScanner(e *Engine) *scanner {
	return &scanner{
		e:          e,
		applicable: make([]bool, len(e.rules)),
		hits:       make([][]int, len(e.rules)),
		occ:        map[string]int{},
	}
}

// scanFile reads and scans one file; binary, oversized and special files
// yield no findings and no error.
func (sc *scanner) scanFile(j fileJob, t *engine.Target) ([]engine.Finding, error) {
	data, err := sc.readFile(j)
	if errors.Is(err, errSkipped) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if bytes.IndexByte(data[:min(len(data), BinarySniffSize)], 0) >= 0 {
		return nil, nil
	}
	return sc.scan(j.path, data, t), nil
}

// scan runs the applicable rules over data; t nil means no target filter.
func (sc *scanner) scan(p string, data []byte, t *engine.Target) []engine.Finding {
	sc.data = data
	defer sc.reset()
	lang := Language(p)
	anyRule := false
	for i, r := range sc.e.rules {
		// Secret rules always run: their spans redact every snippet.
		ok := r.appliesTo(p, lang) && (t == nil || r.Secret || t.Wants(r.Category, r.Severity))
		sc.applicable[i] = ok
		anyRule = anyRule || ok
	}
	if !anyRule {
		return nil
	}
	sc.e.keywords.scan(data, sc.hit)
	for _, ri := range sc.active {
		sc.runRule(sc.e.rules[ri], sc.hits[ri])
	}
	if len(sc.raws) == 0 {
		return nil
	}
	sc.filter()
	return sc.findings(p, t)
}

func (sc *scanner) reset() {
	for _, ri := range sc.active {
		sc.hits[ri] = sc.hits[ri][:0]
	}
	sc.active = sc.active[:0]
	sc.raws = sc.raws[:0]
	sc.spans = sc.spans[:0]
	clear(sc.occ)
	sc.data = nil
}

// hit records a keyword occurrence for every applicable rule using it.
func (sc *scanner) hit(kw int32, start int) {
	for _, ri := range sc.e.kwRules[kw] {
		if !sc.applicable[ri] {
			continue
		}
		h := sc.hits[ri]
		if len(h) == 0 {
			sc.active = append(sc.active, ri)
		}
		sc.hits[ri] = append(h, start)
	}
}

// runRule runs r's patterns over the merged line windows around its keyword
// hits, or, for an anchored rule, at each hit.
func (sc *scanner) runRule(r *rule, hits []int) {
	data := sc.data
	if r.anchored {
		slices.Sort(hits)
		for i, p := range hits {
			if i > 0 && p == hits[i-1] {
				continue
			}
			le := lineEnd(data, p)
			for range r.windowLines {
				if le >= len(data) {
					break
				}
				le = lineEnd(data, le)
			}
			sc.runWindow(r, p, le)
		}
		return
	}
	ws, we := -1, -1
	lastLineEnd := -1
	for _, p := range hits {
		if p < lastLineEnd {
			continue // same line as the previous hit: same window
		}
		ls := lineStart(data, p)
		for range windowLinesBefore {
			if ls == 0 {
				break
			}
			ls = lineStart(data, ls-1)
		}
		le := lineEnd(data, p)
		lastLineEnd = le
		for range r.windowLines {
			if le >= len(data) {
				break
			}
			le = lineEnd(data, le)
		}
		if ws >= 0 && ls <= we {
			we = max(we, le)
			continue
		}
		if ws >= 0 {
			sc.runWindow(r, ws, we)
		}
		ws, we = ls, le
	}
	if ws >= 0 {
		sc.runWindow(r, ws, we)
	}
}

func (sc *scanner) runWindow(r *rule, ws, we int) {
	win := sc.data[ws:we]
	for i, re := range r.patterns {
		if !r.filters[i].admits(win, r.anchored) {
			continue
		}
		var locs [][]int
		if r.secretGroup > 0 {
			locs = re.FindAllSubmatchIndex(win, -1)
		} else {
			// Without a capture to report, the cheaper search will do.
			locs = re.FindAllIndex(win, -1)
		}
		for _, loc := range locs {
			if loc[1] == loc[0] {
				continue
			}
			m := rawMatch{r: r, start: ws + loc[0], end: ws + loc[1], secStart: -1, secE: -1}
			if g := r.secretGroup; g > 0 {
				if loc[2*g] >= 0 && loc[2*g+1] > loc[2*g] {
					m.secStart, m.secE = ws+loc[2*g], ws+loc[2*g+1]
				} else {
					m.secStart, m.secE = m.start, m.end
				}
			}
			sc.raws = append(sc.raws, m)
		}
	}
}

// filter applies last_match, allow lists, entropy, negative patterns,
// absent_after, overlap de-duplication and generic-rule suppression, and
// collects the secret spans that snippets redact.
func (sc *scanner) filter() {
	data := sc.data
	// File order, longest first at equal starts.
	slices.SortFunc(sc.raws, func(a, b rawMatch) int {
		return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(b.end, a.end), cmp.Compare(a.r.index, b.r.index))
	})
	// A last_match rule looks at its last match only, whatever the filters
	// below make of it.
	lastOf := map[*rule]int{}
	for i := range sc.raws {
		if r := sc.raws[i].r; r.lastMatch {
			if j, ok := lastOf[r]; ok {
				sc.raws[j].drop = true
			}
			lastOf[r] = i
		}
	}
	absentFrom := map[*rule]int{} // rule → start of the last absent_after match, or -1
	lastEnd := map[*rule]int{}
	for i := range sc.raws {
		m := &sc.raws[i]
		r := m.r
		if m.drop {
			continue
		}
		text := data[m.start:m.end]
		if m.secStart >= 0 {
			text = data[m.secStart:m.secE]
		}
		if matchAny(r.allow, text) || (r.entropy > 0 && entropy(text) < r.entropy) {
			m.drop = true
			continue
		}
		if len(r.negative) > 0 && matchAny(r.negative, data[lineStart(data, m.start):lineEnd(data, max(m.start, m.end-1))]) {
			m.drop = true
			continue
		}
		if r.absentAfter != nil {
			last, ok := absentFrom[r]
			if !ok {
				last = -1
				for _, loc := range r.absentAfter.FindAllIndex(data, -1) {
					last = loc[0]
				}
				absentFrom[r] = last
			}
			if last >= m.end {
				m.drop = true
				continue
			}
		}
		// Two patterns of one rule finding the same code report it once.
		if end, ok := lastEnd[r]; ok && m.start < end {
			m.drop = true
			continue
		}
		lastEnd[r] = m.end
	}
	// Secret spans; a generic rule's secret found by a specific rule too is
	// that rule's finding alone.
	for i := range sc.raws {
		m := &sc.raws[i]
		if !m.drop && m.secStart >= 0 && !m.r.generic {
			sc.spans = append(sc.spans, span{m.secStart, m.secE, m.r.redactKeep})
		}
	}
	for i := range sc.raws {
		m := &sc.raws[i]
		if m.drop || m.secStart < 0 || !m.r.generic {
			continue
		}
		for _, s := range sc.spans {
			if m.secStart < s.end && s.start < m.secE {
				m.drop = true
				break
			}
		}
		if !m.drop {
			sc.spans = append(sc.spans, span{m.secStart, m.secE, m.r.redactKeep})
		}
	}
	// Sorted, merged spans for redaction.
	slices.SortFunc(sc.spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	merged := sc.spans[:0]
	for _, s := range sc.spans {
		if n := len(merged); n > 0 && s.start < merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, s.end)
			merged[n-1].keep = min(merged[n-1].keep, s.keep)
			continue
		}
		merged = append(merged, s)
	}
	sc.spans = merged
}

// findings turns the surviving matches into Findings in file order.
func (sc *scanner) findings(p string, t *engine.Target) []engine.Finding {
	data := sc.data
	var out []engine.Finding
	line, lineOff := 1, 0
	for i := range sc.raws {
		m := &sc.raws[i]
		if m.drop {
			continue
		}
		// Lines of the match without its leading and trailing white space.
		start, end := m.start, m.end
		for start < end-1 && isSpace(data[start]) {
			start++
		}
		for end > start+1 && isSpace(data[end-1]) {
			end--
		}
		if start >= lineOff {
			line += bytes.Count(data[lineOff:start], nl)
		} else {
			line -= bytes.Count(data[start:lineOff], nl)
		}
		lineOff = start
		endLine := line + bytes.Count(data[start:end-1], nl)

		matched := string(data[m.start:m.end])
		if m.secStart >= 0 {
			matched = string(data[m.secStart:m.secE])
		}
		key := m.r.ID + "\x00" + engine.NormalizeSpace(matched)
		occ := sc.occ[key]
		sc.occ[key] = occ + 1
		if t != nil && !t.Wants(m.r.Category, m.r.Severity) {
			continue
		}
		out = append(out, engine.Finding{
			RuleID:      m.r.ID,
			Title:       m.r.Title,
			Severity:    m.r.Severity,
			CWE:         m.r.CWE,
			Category:    m.r.Category,
			Engine:      Name,
			File:        p,
			StartLine:   line,
			EndLine:     endLine,
			Snippet:     sc.snippet(lineStart(data, start), lineEnd(data, end-1)),
			Message:     m.r.Message,
			Remediation: m.r.Remediation,
			Confidence:  m.r.Confidence,
			Fingerprint: sc.e.fp.Fingerprint(m.r.ID, p, matched, occ),
			Match:       matched,
		})
	}
	return out
}

// snippet returns data[a:b] with every secret span redacted, capped at
// MaxSnippetLines lines and MaxSnippetBytes bytes.
func (sc *scanner) snippet(a, b int) string {
	data := sc.data
	var sb strings.Builder
	pos := a
	i := sort.Search(len(sc.spans), func(i int) bool { return sc.spans[i].end > a })
	for ; i < len(sc.spans) && sc.spans[i].start < b; i++ {
		s := sc.spans[i]
		from := max(s.start, a)
		sb.Write(data[pos:from])
		if s.start >= a {
			sb.WriteString(redactPrefix(data[s.start:s.end], s.keep))
		}
		sb.WriteString(redactedMark)
		pos = min(s.end, b)
	}
	sb.Write(data[pos:b])
	return capSnippet(sb.String())
}

// redactPrefix returns the part of a secret a snippet may show: keep
// characters, but never more than a quarter of the secret.
func redactPrefix(secret []byte, keep int) string {
	keep = min(keep, utf8.RuneCount(secret)/4)
	n := 0
	for i := 0; i < keep; i++ {
		_, size := utf8.DecodeRune(secret[n:])
		n += size
	}
	return string(secret[:n])
}

func capSnippet(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\r", ""), "\uFFFD")
	s = strings.TrimRight(s, " \t\n")
	cut := false
	for i, n := 0, 0; i < len(s); i++ {
		if s[i] == '\n' {
			if n++; n == MaxSnippetLines {
				s, cut = s[:i], true
				break
			}
		}
	}
	if len(s) > MaxSnippetBytes {
		i := MaxSnippetBytes
		for i > 0 && !utf8.RuneStart(s[i]) {
			i--
		}
		s, cut = s[:i], true
	}
	if cut {
		s += "…"
	}
	return s
}

var nl = []byte{'\n'}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// lineStart returns the offset of the start of the line holding offset p.
func lineStart(data []byte, p int) int {
	return bytes.LastIndexByte(data[:p], '\n') + 1
}

// lineEnd returns the offset just past the newline ending the line holding
// offset p, or len(data).
func lineEnd(data []byte, p int) int {
	if i := bytes.IndexByte(data[p:], '\n'); i >= 0 {
		return p + i + 1
	}
	return len(data)
}

func matchAny(res []*regexp.Regexp, b []byte) bool {
	for _, re := range res {
		if re.Match(b) {
			return true
		}
	}
	return false
}

// entropy returns the Shannon entropy of b in bits per byte.
func entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	h := 0.0
	n := float64(len(b))
	for _, c := range counts {
		if c > 0 {
			f := float64(c) / n
			h -= f * math.Log2(f)
		}
	}
	return h
}
