package builtin

import (
	"bytes"
	"regexp/syntax"
	"slices"
	"strings"
	"unicode/utf8"
)

// Prefilter limits: how many literals an exact set may hold before the
// analysis gives it up, and the most characters a class may hold to be
// expanded into literals.
const (
	maxExactSet   = 64
	maxClassRunes = 4
)

// lit is a literal that every match of a pattern (or of one part of it)
// contains. fold says it is compared ASCII case-insensitively; its text is
// then lower case.
type lit struct {
	s    string
	b    []byte // s, for a case-sensitive search without a conversion
	fold bool
}

// prefilter is a necessary condition for a pattern to match a text: for
// every one of its sets, the text contains at least one of the set's
// literals. A text that fails it cannot match the pattern, so the pattern
// need not run over it. An empty prefilter admits every text.
//
// Case-insensitive literals are compared ASCII case-insensitively, like
// the keywords: a match that spells an ASCII letter with a non-ASCII case
// variant (the Kelvin sign for k, the long s for s) is missed, as it
// already is by the keyword pass.
type prefilter [][]lit

// patternFilter is what a pattern's text must hold for it to match there:
// sets, and for a pattern anchored at the start of its text, prefix (when
// not nil), the literals of which the text starts with one.
type patternFilter struct {
	sets   prefilter
	prefix []lit
}

// newPatternFilter derives the filter of a pattern of a rule with these
// keywords. Sets that every text holding one of the keywords meets are left
// out: the patterns only ever see such texts.
func newPatternFilter(expr string, keywords []string) (patternFilter, error) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return patternFilter{}, err
	}
	re = re.Simplify()
	var f patternFilter
	for _, set := range newPrefilter(re) {
		if !impliedByKeywords(set, keywords) {
			f.sets = append(f.sets, set)
		}
	}
	if p := minimalPrefixes(prefixes(re)); p != nil && !prefixImpliedByKeywords(p, keywords) {
		f.prefix = p
	}
	for _, set := range f.sets {
		for i := range set {
			set[i].b = []byte(set[i].s)
		}
	}
	return f, nil
}

// admits reports whether a pattern may match in text; anchored says the
// match must start at text's start.
func (f *patternFilter) admits(text []byte, anchored bool) bool {
	if anchored && f.prefix != nil && !hasAnyPrefix(text, f.prefix) {
		return false
	}
	return f.sets.admits(text)
}

// impliedByKeywords reports whether every keyword contains one of the
// set's literals, compared as the literal says.
func impliedByKeywords(set []lit, keywords []string) bool {
	for _, kw := range keywords {
		found := false
		for _, l := range set {
			if l.fold && strings.Contains(kw, l.s) || !l.fold && isLowerASCII(l.s) && strings.Contains(kw, l.s) && !hasLetter(l.s) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// prefixImpliedByKeywords reports whether every keyword starts with one of
// the prefixes: an anchored pattern, tried only where a keyword starts,
// then needs no prefix check.
func prefixImpliedByKeywords(prefix []lit, keywords []string) bool {
	for _, kw := range keywords {
		if !slices.ContainsFunc(prefix, func(l lit) bool {
			return strings.HasPrefix(kw, l.s) && (l.fold || !hasLetter(l.s))
		}) {
			return false
		}
	}
	return true
}

func isLowerASCII(s string) bool { return strings.ToLower(s) == s }

func hasLetter(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' })
}

// prefixes returns literals of which every match of re starts with one,
// or nil when none is known.
func prefixes(re *syntax.Regexp) []lit {
	switch re.Op {
	case syntax.OpCapture:
		return prefixes(re.Sub[0])
	case syntax.OpConcat:
		cur := emptyExact
		for _, sub := range re.Sub {
			x := analyze(sub)
			if x.exact == nil {
				if p := prefixes(sub); p != nil {
					if c := cross(cur, p); c != nil {
						cur = c
					}
				}
				break
			}
			c := cross(cur, x.exact)
			if c == nil {
				break
			}
			cur = c
		}
		return cur
	case syntax.OpAlternate:
		var out []lit
		for _, sub := range re.Sub {
			p := prefixes(sub)
			if p == nil || len(out)+len(p) > maxExactSet {
				return nil
			}
			out = append(out, p...)
		}
		return out
	}
	return analyze(re).exact
}

// minimalPrefixes drops prefixes that start with another of the set and
// returns nil when one is empty.
func minimalPrefixes(set []lit) []lit { return dropCovered(set, strings.HasPrefix) }

func hasAnyPrefix(text []byte, set []lit) bool {
	for _, l := range set {
		if len(text) < len(l.s) {
			continue
		}
		if l.fold {
			if equalFold(text[:len(l.s)], l.s) {
				return true
			}
		} else if string(text[:len(l.s)]) == l.s {
			return true
		}
	}
	return false
}

// equalFold reports whether b equals the lower-case s ASCII
// case-insensitively.
func equalFold(b []byte, s string) bool {
	for i := range len(s) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// newPrefilter derives the prefilter of a parsed pattern.
func newPrefilter(re *syntax.Regexp) prefilter {
	inf := analyze(re)
	sets := inf.req
	if inf.exact != nil {
		sets = append(sets, inf.exact)
	}
	var pf prefilter
	for _, s := range sets {
		s = minimalSet(s)
		if s == nil || slices.ContainsFunc(pf, func(t []lit) bool { return sameSet(s, t) }) {
			continue
		}
		pf = append(pf, s)
	}
	// The most selective sets first.
	slices.SortStableFunc(pf, func(a, b []lit) int { return selectivity(b) - selectivity(a) })
	return pf
}

// admits reports whether text passes every set.
func (pf prefilter) admits(text []byte) bool {
	for _, set := range pf {
		if !containsAny(text, set) {
			return false
		}
	}
	return true
}

func containsAny(text []byte, set []lit) bool {
	for _, l := range set {
		if l.fold {
			if indexFold(text, l.s) >= 0 {
				return true
			}
		} else if bytes.Contains(text, l.b) {
			return true
		}
	}
	return false
}

// indexFold returns the index of the first ASCII case-insensitive
// occurrence of the lower-case lit in text, or -1.
func indexFold(text []byte, lit string) int {
	if len(lit) == 0 {
		return 0
	}
	c0 := lit[0]
	up := c0
	if 'a' <= c0 && c0 <= 'z' {
		up = c0 - 'a' + 'A'
	}
	for i := 0; i+len(lit) <= len(text); i++ {
		c := text[i]
		if c != c0 && c != up {
			continue
		}
		ok := true
		for j := 1; j < len(lit); j++ {
			c := text[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lit[j] {
				ok = false
				break
			}
		}
		if ok {
			return i
		}
	}
	return -1
}

// minimalSet drops literals that contain another literal of the set (the
// shorter one is found wherever the longer is) and returns nil for a set
// that admits everything (it holds the empty literal).
func minimalSet(set []lit) []lit { return dropCovered(set, strings.Contains) }

// dropCovered returns set without the literals a that another literal b
// covers, covers(a, b) (b no longer than a; of two equal ones the first is
// kept), or nil when set holds the empty literal. b covers a only when b's
// comparison is at least as loose as a's: a case-folding b is compared
// with a lowered, an exact b only with an exact a.
func dropCovered(set []lit, covers func(s, sub string) bool) []lit {
	var out []lit
	for i, a := range set {
		if a.s == "" {
			return nil
		}
		redundant := false
		for j, b := range set {
			if i == j || len(b.s) > len(a.s) || (len(b.s) == len(a.s) && j > i) {
				continue
			}
			if b.fold && covers(strings.ToLower(a.s), b.s) || !b.fold && !a.fold && covers(a.s, b.s) {
				redundant = true
				break
			}
		}
		if !redundant {
			out = append(out, a)
		}
	}
	return out
}

func sameSet(a, b []lit) bool {
	return slices.EqualFunc(a, b, func(x, y lit) bool { return x.s == y.s && x.fold == y.fold })
}

// selectivity ranks a set: longer literals are rarer, and every literal
// more is one more chance to be found.
func selectivity(set []lit) int { return 8*shortest(set) - len(set) }

func shortest(set []lit) int {
	n := len(set[0].s)
	for _, l := range set[1:] {
		n = min(n, len(l.s))
	}
	return n
}

// info is what the analysis knows of a sub-expression: exact, when not
// nil, is every string it can match; req are sets of which every match
// contains at least one literal each.
type info struct {
	exact []lit
	req   [][]lit
}

var emptyExact = []lit{{}}

func analyze(re *syntax.Regexp) info {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText,
		syntax.OpEndText, syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return info{exact: emptyExact}
	case syntax.OpLiteral:
		s := string(re.Rune)
		if re.Flags&syntax.FoldCase != 0 {
			return info{exact: []lit{{s: strings.ToLower(s), fold: true}}}
		}
		return info{exact: []lit{{s: s}}}
	case syntax.OpCharClass:
		return info{exact: classLits(re.Rune)}
	case syntax.OpCapture:
		return analyze(re.Sub[0])
	case syntax.OpQuest:
		sub := analyze(re.Sub[0])
		if sub.exact != nil && len(sub.exact) < maxExactSet {
			return info{exact: append(slices.Clone(sub.exact), lit{})}
		}
		return info{}
	case syntax.OpStar:
		return info{}
	case syntax.OpPlus:
		return required(analyze(re.Sub[0]))
	case syntax.OpRepeat:
		if re.Min == 0 {
			return info{}
		}
		return required(analyze(re.Sub[0]))
	case syntax.OpConcat:
		return analyzeConcat(re.Sub)
	case syntax.OpAlternate:
		return analyzeAlternate(re.Sub)
	}
	return info{} // any character and the like: nothing known
}

// required turns what is known of x into requirements only.
func required(x info) info {
	r := info{req: x.req}
	if x.exact != nil {
		r.req = append(slices.Clone(r.req), x.exact)
	}
	return r
}

// classLits returns the characters of a small class as literals, or nil.
func classLits(ranges []rune) []lit {
	n := 0
	for i := 0; i+1 < len(ranges); i += 2 {
		n += int(ranges[i+1]-ranges[i]) + 1
		if n > maxClassRunes {
			return nil
		}
	}
	var out []lit
	for i := 0; i+1 < len(ranges); i += 2 {
		for r := ranges[i]; r <= ranges[i+1]; r++ {
			if r == utf8.RuneError {
				return nil
			}
			out = append(out, lit{s: string(r)})
		}
	}
	return out
}

func analyzeConcat(subs []*syntax.Regexp) info {
	var out info
	cur := emptyExact // the exact strings of the run of exact children so far
	flush := func() {
		if cur != nil {
			out.req = append(out.req, cur)
		}
	}
	for _, sub := range subs {
		x := analyze(sub)
		out.req = append(out.req, x.req...)
		if x.exact == nil {
			flush()
			cur = nil
			continue
		}
		if cur == nil {
			cur = x.exact
			continue
		}
		if p := cross(cur, x.exact); p != nil {
			cur = p
			continue
		}
		flush()
		cur = x.exact
	}
	if cur != nil && len(out.req) == 0 {
		// Every child was exact and the product stayed small.
		return info{exact: cur}
	}
	flush()
	return out
}

// cross returns every concatenation of a string of a with one of b, or nil
// when there would be too many.
func cross(a, b []lit) []lit {
	if len(a)*len(b) > maxExactSet {
		return nil
	}
	out := make([]lit, 0, len(a)*len(b))
	for _, x := range a {
		for _, y := range b {
			switch {
			case x.fold == y.fold:
				out = append(out, lit{s: x.s + y.s, fold: x.fold})
			default:
				// A case-sensitive part is also matched loosely.
				out = append(out, lit{s: strings.ToLower(x.s + y.s), fold: true})
			}
		}
	}
	return out
}

func analyzeAlternate(subs []*syntax.Regexp) info {
	infos := make([]info, len(subs))
	exact := true
	n := 0
	for i, s := range subs {
		infos[i] = analyze(s)
		if infos[i].exact == nil {
			exact = false
		}
		n += len(infos[i].exact)
	}
	if exact && n <= maxExactSet {
		var out []lit
		for _, x := range infos {
			out = append(out, x.exact...)
		}
		return info{exact: out}
	}
	// Each branch must contribute one set; their union is required.
	var union []lit
	for _, x := range infos {
		best := bestSet(x)
		if best == nil {
			return info{}
		}
		union = append(union, best...)
	}
	return info{req: [][]lit{union}}
}

// bestSet returns the most selective requirement of x, or nil when it
// has none.
func bestSet(x info) []lit {
	var best []lit
	score := 0
	consider := func(s []lit) {
		s = minimalSet(s)
		if s == nil {
			return
		}
		if sc := selectivity(s); sc > score || best == nil {
			best, score = s, sc
		}
	}
	if x.exact != nil {
		consider(x.exact)
	}
	for _, s := range x.req {
		consider(s)
	}
	return best
}
