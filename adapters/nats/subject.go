package nats

import (
	"fmt"
	"strings"

	"github.com/vega-sec/vega/eventstore"
)

// Subjects. An event is published to
//
//	<prefix>.<category>.<stream_id>.<type>
//
// for example vega.events.scan.scan-01J….ScanRequested. Each of the last
// three tokens goes through EncodeToken, because stream IDs may contain '.'
// and event types are free text, and a subject token cannot contain '.',
// '*', '>' or whitespace.

// EncodeToken maps s to a subject token, reversibly (DecodeToken): ASCII
// letters, digits, '-', '_' and ':' stay as they are; every other byte,
// '%' included, becomes %XX (upper-case hex). A stream ID "repo-a.b"
// becomes "repo-a%2Eb"; the usual "scan-01J…" and "ScanRequested" are
// unchanged. The empty string maps to "%" (a token cannot be empty).
func EncodeToken(s string) string {
	if s == "" {
		return "%"
	}
	if !needsEscape(s) {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plainByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xF])
	}
	return b.String()
}

// DecodeToken reverses EncodeToken; it fails on a token EncodeToken cannot
// produce.
func DecodeToken(tok string) (string, error) {
	if tok == "%" {
		return "", nil
	}
	if !strings.Contains(tok, "%") {
		if needsEscape(tok) {
			return "", fmt.Errorf("decode subject token %q: unescaped character", tok)
		}
		return tok, nil
	}
	var b strings.Builder
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c != '%' {
			if !plainByte(c) {
				return "", fmt.Errorf("decode subject token %q: unescaped character", tok)
			}
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(tok) {
			return "", fmt.Errorf("decode subject token %q: truncated escape", tok)
		}
		hi, ok1 := unhex(tok[i+1])
		lo, ok2 := unhex(tok[i+2])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("decode subject token %q: bad escape", tok)
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), nil
}

func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == ':'
}

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			return true
		}
	}
	return false
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Subject returns the subject of an event of the given stream and type.
func Subject(prefix string, stream eventstore.StreamID, eventType string) string {
	return prefix + "." + EncodeToken(stream.Category()) + "." + EncodeToken(string(stream)) + "." + EncodeToken(eventType)
}

// SubjectParts reverses Subject: it returns the stream ID and event type of
// an event subject under prefix.
func SubjectParts(prefix, subject string) (eventstore.StreamID, string, error) {
	rest, ok := strings.CutPrefix(subject, prefix+".")
	if !ok {
		return "", "", fmt.Errorf("parse subject %q: not under %q", subject, prefix)
	}
	toks := strings.Split(rest, ".")
	if len(toks) != 3 {
		return "", "", fmt.Errorf("parse subject %q: want <category>.<stream>.<type> after the prefix", subject)
	}
	stream, err := DecodeToken(toks[1])
	if err != nil {
		return "", "", fmt.Errorf("parse subject %q: %w", subject, err)
	}
	typ, err := DecodeToken(toks[2])
	if err != nil {
		return "", "", fmt.Errorf("parse subject %q: %w", subject, err)
	}
	return eventstore.StreamID(stream), typ, nil
}

// AllSubject is the filter that matches every event under prefix.
func AllSubject(prefix string) string { return prefix + ".>" }

// CategorySubject is the filter that matches every event of a stream
// category ("scan").
func CategorySubject(prefix, category string) string {
	return prefix + "." + EncodeToken(category) + ".>"
}

// StreamSubject is the filter that matches every event of one stream.
func StreamSubject(prefix string, stream eventstore.StreamID) string {
	return prefix + "." + EncodeToken(stream.Category()) + "." + EncodeToken(string(stream)) + ".*"
}

// TypeSubject is the filter that matches every event of one type in a
// category ("scan", "ScanRequested"); category "" matches any category.
func TypeSubject(prefix, category, eventType string) string {
	c := "*"
	if category != "" {
		c = EncodeToken(category)
	}
	return prefix + "." + c + ".*." + EncodeToken(eventType)
}
