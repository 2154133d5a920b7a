package archive

import (
	"strings"
	"unicode/utf8"
)

// cleanName validates an entry name as found in an archive and returns its
// canonical form: relative, "/"-separated, without empty or "." components
// and without a trailing slash. dir reports a trailing slash. An empty clean
// name means the archive root itself ("./"), which callers skip.
func cleanName(raw string, maxBytes int) (clean string, dir bool, err error) {
	if raw == "" {
		return "", false, refuse(ErrBadName, raw)
	}
	if len(raw) > maxBytes {
		return "", false, refuse(ErrNameTooLong, truncate(raw))
	}
	if !utf8.ValidString(raw) {
		return "", false, refuse(ErrBadName, strings.ToValidUTF8(raw, "\uFFFD"))
	}
	for _, r := range raw {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "", false, refuse(ErrBadName, raw)
		}
	}
	if strings.ContainsRune(raw, '\\') {
		return "", false, refuse(ErrBackslash, raw)
	}
	if strings.HasPrefix(raw, "/") {
		return "", false, refuse(ErrAbsolutePath, raw)
	}
	dir = strings.HasSuffix(raw, "/")
	parts := strings.Split(raw, "/")
	out := parts[:0]
	for _, p := range parts {
		switch p {
		case "", ".":
			continue
		case "..":
			return "", false, refuse(ErrParentPath, raw)
		}
		if len(p) > MaxComponentBytes {
			return "", false, refuse(ErrNameTooLong, truncate(raw))
		}
		out = append(out, p)
	}
	return strings.Join(out, "/"), dir, nil
}

// truncate keeps error messages about absurd names readable.
func truncate(s string) string {
	const max = 128
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}

// parentDirs calls fn for every proper ancestor of a clean path, nearest
// first.
func parentDirs(p string, fn func(string)) {
	for {
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return
		}
		p = p[:i]
		fn(p)
	}
}
