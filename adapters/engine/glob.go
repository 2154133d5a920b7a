package engine

import (
	"strings"
	"unicode/utf8"
)

// Match reports whether path matches at least one of globs.
//
// Paths and globs are repo-relative with forward slashes. A glob is made of
// "/"-separated segments: a segment "**" matches zero or more whole path
// segments; within a segment "*" matches any run of characters other than
// "/", "?" matches exactly one such character, "\" makes the next character
// literal, and every other character matches itself. Matching is
// case-sensitive and anchored at both ends, so "*.go" matches only files at
// the root while "**/*.go" matches them at any depth; "vendor/**" matches
// "vendor" itself and everything beneath it. A nil or empty globs matches
// nothing. Match never fails: every string is a valid glob.
func Match(globs []string, path string) bool {
	for _, g := range globs {
		if matchSegments(g, path) {
			return true
		}
	}
	return false
}

// matchSegments matches glob against path segment by segment with the classic
// greedy wildcard algorithm, "**" playing the role of "*" over segments and
// every other segment matching exactly one path segment. Remembering only the
// last "**" is enough for that class of patterns, so the cost is
// O(len(glob segments) × len(path segments)) at worst, never exponential.
func matchSegments(glob, path string) bool {
	gs := strings.Split(glob, "/")
	ps := strings.Split(path, "/")
	gi, pi := 0, 0
	starG, starP := -1, 0
	for pi < len(ps) {
		switch {
		case gi < len(gs) && gs[gi] == "**":
			starG, starP = gi, pi
			gi++
		case gi < len(gs) && matchSegment(gs[gi], ps[pi]):
			gi++
			pi++
		case starG >= 0:
			starP++
			gi, pi = starG+1, starP
		default:
			return false
		}
	}
	for gi < len(gs) && gs[gi] == "**" {
		gi++
	}
	return gi == len(gs)
}

// matchSegment matches one glob segment against one path segment with the
// same greedy algorithm over runes, "*" being the only star.
func matchSegment(glob, name string) bool {
	gi, ni := 0, 0
	starG, starN := -1, 0
	for ni < len(name) {
		if gi < len(glob) {
			switch c := glob[gi]; c {
			case '*':
				starG, starN = gi, ni
				gi++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(name[ni:])
				gi++
				ni += n
				continue
			default:
				lit, gn := literal(glob[gi:])
				if strings.HasPrefix(name[ni:], lit) {
					gi += gn
					ni += len(lit)
					continue
				}
			}
		}
		if starG < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(name[starN:])
		starN += n
		gi, ni = starG+1, starN
	}
	for gi < len(glob) && glob[gi] == '*' {
		gi++
	}
	return gi == len(glob)
}

// literal returns the one character at the start of glob that must match
// literally, and how many bytes of glob it took ("\x" takes two).
func literal(glob string) (string, int) {
	if glob[0] == '\\' && len(glob) > 1 {
		_, n := utf8.DecodeRuneInString(glob[1:])
		return glob[1 : 1+n], 1 + n
	}
	_, n := utf8.DecodeRuneInString(glob)
	return glob[:n], n
}
