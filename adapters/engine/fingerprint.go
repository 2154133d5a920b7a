package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// MinFingerprintKeySize is the shortest key NewFingerprinter accepts: a
// fingerprint of a weak secret must not be open to a dictionary attack, so
// the key has the strength of a SHA-256 output.
const MinFingerprintKeySize = 32

// fingerprintDomain separates Vega's fingerprint inputs from any other use of
// the same key and versions the encoding.
const fingerprintDomain = "vega.finding.fingerprint.v1"

// ErrShortKey is returned by NewFingerprinter for a key shorter than
// MinFingerprintKeySize.
var ErrShortKey = errors.New("fingerprint key too short")

// Fingerprinter computes finding fingerprints: HMAC-SHA-256, keyed per
// installation, over (rule, repo-relative path, whitespace-normalised
// matched text, occurrence index). Line numbers and descriptions are not
// inputs, so a finding keeps its fingerprint when code moves within its file
// or a rule's wording changes.
//
// A Fingerprinter is immutable and safe for concurrent use.
type Fingerprinter struct {
	key []byte
}

// NewFingerprinter returns a Fingerprinter keyed with a copy of key. It
// returns an error wrapping ErrShortKey when key is shorter than
// MinFingerprintKeySize.
func NewFingerprinter(key []byte) (*Fingerprinter, error) {
	if len(key) < MinFingerprintKeySize {
		return nil, fmt.Errorf("new fingerprinter: %w: %d bytes, need at least %d", ErrShortKey, len(key), MinFingerprintKeySize)
	}
	return &Fingerprinter{key: append([]byte(nil), key...)}, nil
}

// Fingerprint returns the lower-case hex HMAC-SHA-256 of the rule ID, the
// repo-relative forward-slash path, the matched text after NormalizeSpace,
// and the occurrence index of that (rule, path, normalised text) within the
// file, counted from 0 in file order. Each field is length-prefixed, so no two
// different inputs share an encoding.
func (f *Fingerprinter) Fingerprint(rule, path, matched string, occurrence int) string {
	m := hmac.New(sha256.New, f.key)
	var n [binary.MaxVarintLen64]byte
	field := func(s string) {
		m.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
		m.Write([]byte(s))
	}
	field(fingerprintDomain)
	field(rule)
	field(path)
	field(NormalizeSpace(matched))
	m.Write(n[:binary.PutVarint(n[:], int64(occurrence))])
	return hex.EncodeToString(m.Sum(nil))
}

// NormalizeSpace trims s and replaces every run of white space in it with
// one ASCII space, so that re-indenting or re-wrapping code does not change
// a fingerprint.
func NormalizeSpace(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return b.String()
}
