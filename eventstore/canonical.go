package eventstore

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Canonicalize returns the RFC 8785 (JSON Canonicalization Scheme) form of a
// JSON document: object members sorted by their UTF-16 code units, no
// insignificant white space, numbers in their ECMAScript form, strings with
// the minimal escaping. Two documents that differ only in member order,
// spacing or number spelling have the same canonical form, which is why the
// hash chain hashes it and never the bytes a database hands back (PostgreSQL's
// jsonb reorders members).
//
// Strings with U+0000 are refused: PostgreSQL's jsonb cannot hold them, and
// both stores must accept the same documents.
func Canonicalize(doc []byte) ([]byte, error) {
	if out, ok := canonicalizeFast(doc); ok {
		return out, nil
	}
	return canonicalizeSlow(doc)
}

// canonicalizeSlow is the reference implementation: encoding/json decodes
// the document, writeCanonical re-encodes it. canonicalizeFast defers to it
// for every document it does not accept outright, so errors, and the
// decoder's own leniencies (duplicate members, where the last wins; lone
// surrogate escapes, which become U+FFFD; text after the first value that
// is not itself a value), stay exactly as they were.
func canonicalizeSlow(doc []byte) ([]byte, error) {
	if !utf8.Valid(doc) {
		return nil, errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("not valid JSON: text after the value")
	}
	var buf bytes.Buffer
	buf.Grow(len(doc))
	if err := writeCanonical(&buf, v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeCanonical(buf *bytes.Buffer, v any) error {
	switch v := v.(type) {
	case nil:
		buf.WriteString("null")
	case bool:
		if v {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return fmt.Errorf("number %s: %w", v, err)
		}
		s, err := es6Number(f)
		if err != nil {
			return fmt.Errorf("number %s: %w", v, err)
		}
		buf.WriteString(s)
	case string:
		return writeCanonicalString(buf, v)
	case []any:
		buf.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonical(buf, e); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareUTF16)
		buf.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeCanonicalString(buf, k); err != nil {
				return err
			}
			buf.WriteByte(':')
			if err := writeCanonical(buf, v[k]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	default:
		return fmt.Errorf("unexpected JSON value %T", v)
	}
	return nil
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785 says.
func compareUTF16(a, b string) int {
	if isASCII(a) && isASCII(b) {
		return strings.Compare(a, b)
	}
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	return slices.Compare(ua, ub)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

func writeCanonicalString(buf *bytes.Buffer, s string) error {
	buf.WriteByte('"')
	for _, r := range s {
		switch {
		case r == 0:
			return errors.New("strings may not contain U+0000")
		case r == '"':
			buf.WriteString(`\"`)
		case r == '\\':
			buf.WriteString(`\\`)
		case r == '\b':
			buf.WriteString(`\b`)
		case r == '\f':
			buf.WriteString(`\f`)
		case r == '\n':
			buf.WriteString(`\n`)
		case r == '\r':
			buf.WriteString(`\r`)
		case r == '\t':
			buf.WriteString(`\t`)
		case r < 0x20:
			buf.WriteString(`\u00`)
			buf.WriteByte(hexDigits[r>>4])
			buf.WriteByte(hexDigits[r&0xf])
		default:
			buf.WriteRune(r)
		}
	}
	buf.WriteByte('"')
	return nil
}

// es6Number formats f as ECMAScript's Number.prototype.toString does, which
// is what RFC 8785 requires.
func es6Number(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", errors.New("NaN and infinities are not JSON")
	}
	if f == 0 {
		return "0", nil
	}
	sign := ""
	if f < 0 {
		f, sign = -f, "-"
	}
	format := byte('e')
	if f < 1e21 && f >= 1e-6 {
		format = 'f'
	}
	s := strconv.FormatFloat(f, format, -1, 64)
	if i := strings.IndexByte(s, 'e'); i > 0 {
		// Go writes e+06 or e-07; ECMAScript writes e+6 and e-7.
		if s[i+2] == '0' {
			s = s[:i+2] + s[i+3:]
		}
	}
	return sign + s, nil
}

// fastMaxDepth bounds the nesting canonicalizeFast handles itself; deeper
// documents go to encoding/json, whose own limit (10,000) then applies.
const fastMaxDepth = 512

// canonicalizeFast is a single pass over the document: it validates,
// unescapes and re-emits as it goes, writing each object's members in input
// order and reordering them in place only when their keys are out of order.
// It reports false for anything it does not accept outright (any error,
// duplicate member names, lone surrogates, trailing text, deep nesting), and
// Canonicalize then asks canonicalizeSlow, which is the reference.
func canonicalizeFast(doc []byte) ([]byte, bool) {
	if !utf8.Valid(doc) {
		return nil, false
	}
	c := canonicalizer{in: doc, out: make([]byte, 0, len(doc))}
	var keys [256]byte
	var members [16]member
	c.keys, c.members = keys[:0], members[:0]
	c.skipSpace()
	if !c.value(0) {
		return nil, false
	}
	c.skipSpace()
	if c.pos != len(c.in) {
		return nil, false
	}
	return c.out, true
}

type canonicalizer struct {
	in  []byte
	pos int
	out []byte
	// keys holds the unescaped names of the members of the objects being
	// written; members is a stack of those members, innermost object last.
	keys    []byte
	members []member
	scratch []byte
}

// member is one written object member: its unescaped name in keys and its
// canonical text (name, colon, value) in out.
type member struct {
	keyStart, keyEnd int
	start, end       int
}

func (c *canonicalizer) skipSpace() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canonicalizer) value(depth int) bool {
	if c.pos >= len(c.in) {
		return false
	}
	switch b := c.in[c.pos]; {
	case b == '{':
		return depth < fastMaxDepth && c.object(depth+1)
	case b == '[':
		return depth < fastMaxDepth && c.array(depth+1)
	case b == '"':
		start := len(c.out)
		if !c.str() {
			return false
		}
		// Re-escape in canonical form unless the unescaped text, written
		// to out by str, needs no escaping (the usual case).
		return c.escapeFrom(start)
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	default:
		return c.number()
	}
}

func (c *canonicalizer) literal(lit string) bool {
	if len(c.in)-c.pos < len(lit) || string(c.in[c.pos:c.pos+len(lit)]) != lit {
		return false
	}
	c.pos += len(lit)
	c.out = append(c.out, lit...)
	return true
}

func (c *canonicalizer) object(depth int) bool {
	c.pos++ // {
	c.out = append(c.out, '{')
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		c.out = append(c.out, '}')
		return true
	}
	base := len(c.members)
	keysBase := len(c.keys)
	defer func() {
		c.members = c.members[:base]
		c.keys = c.keys[:keysBase]
	}()
	sorted := true
	for {
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return false
		}
		if len(c.members) > base {
			c.out = append(c.out, ',')
		}
		m := member{start: len(c.out)}
		// Unescape the name into out, keep a copy for sorting, then
		// escape it in canonical form in place.
		if !c.str() {
			return false
		}
		m.keyStart = len(c.keys)
		c.keys = append(c.keys, c.out[m.start:]...)
		m.keyEnd = len(c.keys)
		if !c.escapeFrom(m.start) {
			return false
		}
		if len(c.members) > base {
			prev := c.members[len(c.members)-1]
			switch compareUTF16Bytes(c.keys[prev.keyStart:prev.keyEnd], c.keys[m.keyStart:m.keyEnd]) {
			case 0:
				return false // a duplicate: encoding/json keeps the last
			case 1:
				sorted = false
			}
		}
		c.skipSpace()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return false
		}
		c.pos++
		c.out = append(c.out, ':')
		c.skipSpace()
		if !c.value(depth) {
			return false
		}
		m.end = len(c.out)
		c.members = append(c.members, m)
		c.skipSpace()
		if c.pos >= len(c.in) {
			return false
		}
		if c.in[c.pos] == ',' {
			c.pos++
			c.skipSpace()
			continue
		}
		if c.in[c.pos] != '}' {
			return false
		}
		c.pos++
		break
	}
	if !sorted && !c.sortMembers(c.members[base:]) {
		return false
	}
	c.out = append(c.out, '}')
	return true
}

// sortMembers rewrites the members, which end out, in UTF-16 order of their
// names. It reports false for duplicate names.
func (c *canonicalizer) sortMembers(ms []member) bool {
	slices.SortFunc(ms, func(a, b member) int {
		return compareUTF16Bytes(c.keys[a.keyStart:a.keyEnd], c.keys[b.keyStart:b.keyEnd])
	})
	for i := 1; i < len(ms); i++ {
		if compareUTF16Bytes(c.keys[ms[i-1].keyStart:ms[i-1].keyEnd], c.keys[ms[i].keyStart:ms[i].keyEnd]) == 0 {
			return false
		}
	}
	region := ms[0].start
	for _, m := range ms {
		region = min(region, m.start)
	}
	c.scratch = append(c.scratch[:0], c.out[region:]...)
	c.out = c.out[:region]
	for i, m := range ms {
		if i > 0 {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, c.scratch[m.start-region:m.end-region]...)
	}
	return true
}

func (c *canonicalizer) array(depth int) bool {
	c.pos++ // [
	c.out = append(c.out, '[')
	c.skipSpace()
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		c.out = append(c.out, ']')
		return true
	}
	for {
		if !c.value(depth) {
			return false
		}
		c.skipSpace()
		if c.pos >= len(c.in) {
			return false
		}
		if c.in[c.pos] == ',' {
			c.pos++
			c.out = append(c.out, ',')
			c.skipSpace()
			continue
		}
		if c.in[c.pos] != ']' {
			return false
		}
		c.pos++
		c.out = append(c.out, ']')
		return true
	}
}

// str reads a string at pos and appends its unescaped text (without quotes)
// to out. It refuses control characters, bad escapes, lone surrogates and
// U+0000, which Canonicalize refuses or encoding/json rewrites.
func (c *canonicalizer) str() bool {
	c.pos++ // "
	for {
		start := c.pos
		for c.pos < len(c.in) {
			b := c.in[c.pos]
			if b == '"' || b == '\\' || b < 0x20 {
				break
			}
			c.pos++
		}
		c.out = append(c.out, c.in[start:c.pos]...)
		if c.pos >= len(c.in) || c.in[c.pos] < 0x20 {
			return false
		}
		if c.in[c.pos] == '"' {
			c.pos++
			return true
		}
		// An escape.
		if c.pos+1 >= len(c.in) {
			return false
		}
		e := c.in[c.pos+1]
		c.pos += 2
		switch e {
		case '"', '\\', '/':
			c.out = append(c.out, e)
		case 'b':
			c.out = append(c.out, '\b')
		case 'f':
			c.out = append(c.out, '\f')
		case 'n':
			c.out = append(c.out, '\n')
		case 'r':
			c.out = append(c.out, '\r')
		case 't':
			c.out = append(c.out, '\t')
		case 'u':
			r, ok := c.hex4()
			if !ok {
				return false
			}
			if utf16.IsSurrogate(r) {
				if r >= 0xdc00 || len(c.in)-c.pos < 6 || c.in[c.pos] != '\\' || c.in[c.pos+1] != 'u' {
					return false
				}
				c.pos += 2
				r2, ok := c.hex4()
				if !ok || r2 < 0xdc00 || r2 > 0xdfff {
					return false
				}
				r = utf16.DecodeRune(r, r2)
			}
			if r == 0 {
				return false
			}
			c.out = utf8.AppendRune(c.out, r)
		default:
			return false
		}
	}
}

func (c *canonicalizer) hex4() (rune, bool) {
	if len(c.in)-c.pos < 4 {
		return 0, false
	}
	var r rune
	for _, b := range c.in[c.pos : c.pos+4] {
		switch {
		case '0' <= b && b <= '9':
			b -= '0'
		case 'a' <= b && b <= 'f':
			b -= 'a' - 10
		case 'A' <= b && b <= 'F':
			b -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(b)
	}
	c.pos += 4
	return r, true
}

// escapeFrom quotes the unescaped text out[start:] in place, with the
// escaping writeCanonicalString uses.
func (c *canonicalizer) escapeFrom(start int) bool {
	text := c.out[start:]
	plain := true
	for _, b := range text {
		if b < 0x20 || b == '"' || b == '\\' {
			plain = false
			break
		}
	}
	if plain {
		c.out = append(c.out, '"')
		copy(c.out[start+1:], c.out[start:len(c.out)-1])
		c.out[start] = '"'
		c.out = append(c.out, '"')
		return true
	}
	c.scratch = append(c.scratch[:0], text...)
	c.out = append(c.out[:start], '"')
	for _, b := range c.scratch {
		switch {
		case b == 0:
			return false
		case b == '"':
			c.out = append(c.out, '\\', '"')
		case b == '\\':
			c.out = append(c.out, '\\', '\\')
		case b == '\b':
			c.out = append(c.out, '\\', 'b')
		case b == '\f':
			c.out = append(c.out, '\\', 'f')
		case b == '\n':
			c.out = append(c.out, '\\', 'n')
		case b == '\r':
			c.out = append(c.out, '\\', 'r')
		case b == '\t':
			c.out = append(c.out, '\\', 't')
		case b < 0x20:
			c.out = append(c.out, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
		default:
			c.out = append(c.out, b)
		}
	}
	c.out = append(c.out, '"')
	return true
}

// fastIntDigits is the most digits of an integer that is copied as written:
// below 2^53 every integer is exact and ECMAScript prints its digits.
const fastIntDigits = 15

// number reads a number with JSON's grammar and writes its ECMAScript form.
func (c *canonicalizer) number() bool {
	start := c.pos
	if c.pos < len(c.in) && c.in[c.pos] == '-' {
		c.pos++
	}
	intStart := c.pos
	switch {
	case c.pos < len(c.in) && c.in[c.pos] == '0':
		c.pos++
	case c.pos < len(c.in) && '1' <= c.in[c.pos] && c.in[c.pos] <= '9':
		for c.pos < len(c.in) && '0' <= c.in[c.pos] && c.in[c.pos] <= '9' {
			c.pos++
		}
	default:
		return false
	}
	intEnd := c.pos
	integer := true
	if c.pos < len(c.in) && c.in[c.pos] == '.' {
		integer = false
		c.pos++
		if !c.digits() {
			return false
		}
	}
	if c.pos < len(c.in) && (c.in[c.pos] == 'e' || c.in[c.pos] == 'E') {
		integer = false
		c.pos++
		if c.pos < len(c.in) && (c.in[c.pos] == '+' || c.in[c.pos] == '-') {
			c.pos++
		}
		if !c.digits() {
			return false
		}
	}
	text := c.in[start:c.pos]
	if integer && intEnd-intStart <= fastIntDigits {
		if string(text) == "-0" {
			text = text[1:]
		}
		c.out = append(c.out, text...)
		return true
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return false
	}
	s, err := es6Number(f)
	if err != nil {
		return false
	}
	c.out = append(c.out, s...)
	return true
}

func (c *canonicalizer) digits() bool {
	start := c.pos
	for c.pos < len(c.in) && '0' <= c.in[c.pos] && c.in[c.pos] <= '9' {
		c.pos++
	}
	return c.pos > start
}

// compareUTF16Bytes is compareUTF16 for valid UTF-8 byte strings. UTF-8
// byte order is code point order, which is UTF-16 order except that code
// points from U+10000 (two surrogates, from 0xD800) sort before U+E000 to
// U+FFFF in UTF-16.
func compareUTF16Bytes(a, b []byte) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	if i == n {
		return cmp.Compare(len(a), len(b))
	}
	if a[i] < utf8.RuneSelf && b[i] < utf8.RuneSelf {
		return cmp.Compare(a[i], b[i])
	}
	// Back up to the start of the rune that differs.
	for i > 0 && !utf8.RuneStart(a[i]) {
		i--
	}
	ra, _ := utf8.DecodeRune(a[i:])
	rb, _ := utf8.DecodeRune(b[i:])
	return cmp.Compare(utf16Key(ra), utf16Key(rb))
}

// utf16Key orders runes as their first UTF-16 code units do, breaking ties
// (two runes with the same high surrogate) by the rune itself.
func utf16Key(r rune) rune {
	if r >= 0x10000 {
		return 0xd800<<11 | r // below any BMP rune from U+E000, above U+D7FF
	}
	if r >= 0xe000 {
		return r << 11
	}
	return r
}
