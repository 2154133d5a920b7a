package eventstore_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/vega-sec/vega/eventstore"
)

// canonicalSeeds are documents that exercise every branch of the fast
// canonicalizer and every case where it must hand over to the reference.
var canonicalSeeds = []string{
	`{}`, `[]`, `""`, `0`, `-0`, `-0.0`, `1`, `-1`, `123456789012345`, `1234567890123456`, `12345678901234567890`,
	`9007199254740993`, `1.5`, `1e2`, `1E+2`, `1e-7`, `0.000001`, `1e21`, `1e400`, `-1e400`, `1e-400`, `4.50`,
	`01`, `1.`, `.1`, `-`, `+1`, `1e`, `0x10`, `Infinity`, `NaN`,
	`true`, `false`, `null`, `tru`, `nul`, `True`,
	`"a\"b\\c\/d\b\f\n\r\t"`, `"\u0041\u00e9\u20ac\ud83d\ude00"`, `"\u001f\u007f\u2028"`, `"\ud800"`, `"\udc00"`,
	`"\ud800\u0041"`, `"\ud83d\ude00\ud83d"`, `"\u0000"`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"\x01\"", "\"\xff\"", `"é€😀"`,
	`{"b":1,"a":2}`, `{"a":1,"a":2}`, `{"a":1,"b":2,"a":3}`, `{"a":"\u0000","a":1}`, `{"a":1,"a":"\u0000"}`,
	`{"\u0061":1,"a":2}`, `{"€":1,"😀":2,"z":3,"":4}`, `{"ab":1,"a":2,"abc":3,"b":{"y":[1,{"d":1,"c":2}],"x":null}}`,
	`{"a\n":1,"a\t":2,"a":3}`, `{"\ud800":1}`, `{"a" : [ 1 , 2 ] }`, " \t\r\n{\"a\":1} \n",
	`{"a":1} x`, `{"a":1}]`, `1 x`, `1x`, `{} {}`, `[1] 2`, `"a" "b"`, `{"a":1,}`, `[1,]`, `[,1]`, `{"a"}`,
	`{"a":}`, `{a:1}`, `{"a":1 "b":2}`, `[1 2]`, `{`, `[`, `"abc`, ``, ` `, "\ufeff{}",
	`{"fence":1,"phase":"scanning","progress":42,"file":"src/main/java/com/example/App.java","at":"2026-11-29T18:00:00Z"}`,
	strings.Repeat("[", 600) + strings.Repeat("]", 600),
	strings.Repeat(`{"a":`, 600) + "1" + strings.Repeat("}", 600),
	strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
}

// checkCanonicalize compares Canonicalize with the reference implementation
// (encoding/json then re-encoding) on one document: the same bytes, or an
// error from both; and a fast-path result must always be the reference's.
func checkCanonicalize(t *testing.T, doc []byte) {
	t.Helper()
	want, wantErr := eventstore.CanonicalizeReference(doc)
	got, err := eventstore.Canonicalize(doc)
	if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("Canonicalize(%q) = %q, %v; reference gives %q, %v", doc, got, err, want, wantErr)
	}
	if fast, ok := eventstore.CanonicalizeFast(doc); ok && (wantErr != nil || !bytes.Equal(fast, want)) {
		t.Fatalf("fast path on %q = %q; reference gives %q, %v", doc, fast, want, wantErr)
	}
}

func TestCanonicalizeMatchesReference(t *testing.T) {
	t.Parallel()
	for _, doc := range canonicalSeeds {
		checkCanonicalize(t, []byte(doc))
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		checkCanonicalize(t, randomJSON(r, 0))
	}
}

// The fast path must take the documents the store sees most, or it is no
// faster.
func TestCanonicalizeFastPathTakesCommonDocuments(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		`{"fence":1,"phase":"scanning","progress":42,"file":"src/main/java/com/example/App.java","at":"2026-11-29T18:00:00Z"}`,
		`{"z":[1.5,-2,"\n\u00e9"],"a":{"c":null,"b":true}}`,
	} {
		if _, ok := eventstore.CanonicalizeFast([]byte(doc)); !ok {
			t.Errorf("fast path refused %s", doc)
		}
	}
}

// randomJSON builds a document from pieces that stress the canonical form:
// member order, duplicate names, escapes, surrogates, number spellings, and
// now and then a broken piece.
func randomJSON(r *rand.Rand, depth int) []byte {
	var b bytes.Buffer
	writeRandom(&b, r, depth)
	if r.IntN(20) == 0 {
		return mutate(r, b.Bytes())
	}
	return b.Bytes()
}

var (
	randomStrings = []string{`""`, `"a"`, `"b"`, `"A"`, `"ab"`, `"\u0061"`, `"é"`, `"€"`, `"😀"`, `"\ud83d\ude00"`, `"\uffff"`,
		`"\ue000"`, `"\n"`, `"\u001f"`, `"\""`, `"\\"`, `"\/"`, `"\u2028"`, `"\ud800"`, `"\u0000"`, `"\t x"`}
	randomNumbers = []string{`0`, `-0`, `1`, `-17`, `1.0`, `0.1`, `1e3`, `1E-3`, `2.5e+10`, `123456789012345`, `1234567890123456789`,
		`1e21`, `1e20`, `1e-6`, `1e-7`, `5e-324`, `1.7976931348623157e308`, `1e309`, `-1e-400`, `0.30000000000000004`}
	randomSpace = []string{``, ``, ``, ` `, "\n", "\t ", "\r\n"}
)

func writeRandom(b *bytes.Buffer, r *rand.Rand, depth int) {
	b.WriteString(randomSpace[r.IntN(len(randomSpace))])
	k := r.IntN(10)
	if depth > 4 {
		k = 4 + r.IntN(6)
	}
	switch k {
	case 0, 1:
		b.WriteByte('{')
		n := r.IntN(5)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(randomStrings[r.IntN(len(randomStrings))])
			b.WriteString(randomSpace[r.IntN(len(randomSpace))] + ":")
			writeRandom(b, r, depth+1)
		}
		b.WriteByte('}')
	case 2, 3:
		b.WriteByte('[')
		n := r.IntN(4)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			writeRandom(b, r, depth+1)
		}
		b.WriteByte(']')
	case 4, 5:
		b.WriteString(randomStrings[r.IntN(len(randomStrings))])
	case 6, 7:
		b.WriteString(randomNumbers[r.IntN(len(randomNumbers))])
	case 8:
		b.WriteString([]string{"true", "false", "null"}[r.IntN(3)])
	default:
		fmt.Fprintf(b, "%d", r.Int64()>>r.IntN(64))
	}
	b.WriteString(randomSpace[r.IntN(len(randomSpace))])
}

// mutate breaks a document: a byte dropped, changed or added.
func mutate(r *rand.Rand, doc []byte) []byte {
	if len(doc) == 0 {
		return []byte{byte(r.IntN(256))}
	}
	i := r.IntN(len(doc))
	out := append([]byte(nil), doc...)
	switch r.IntN(3) {
	case 0:
		return append(out[:i], out[i+1:]...)
	case 1:
		const pieces = `{}[],:"\ 0-e.x`
		out[i] = pieces[r.IntN(len(pieces))]
		return out
	default:
		const pieces = `{}[],:"\ 1`
		return append(out[:i], append([]byte{pieces[r.IntN(len(pieces))]}, out[i:]...)...)
	}
}

// FuzzCanonicalize compares Canonicalize with the reference implementation
// on arbitrary input: `go test -fuzz FuzzCanonicalize ./eventstore`.
func FuzzCanonicalize(f *testing.F) {
	for _, doc := range canonicalSeeds {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkCanonicalize(t, doc)
	})
}

func TestCanonicalMetadataMatchesReference(t *testing.T) {
	t.Parallel()
	values := []string{"", "a", "01JBENCH0000000000000000000", "<&>", "é€😀", "\u2028", "\n\"\\", "\x00", "\xff\xfe", "a\xc3"}
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		pick := func() string { return values[r.IntN(len(values))] + values[r.IntN(len(values))] }
		m := eventstore.Metadata{CorrelationID: pick(), CausationID: pick(), Actor: pick(), TraceParent: pick()}
		want, wantErr := eventstore.CanonicalMetadataReference(m)
		got, err := eventstore.CanonicalMetadata(m)
		if (err == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("canonical metadata of %+v = %q, %v; reference gives %q, %v", m, got, err, want, wantErr)
		}
	}
}

func BenchmarkCanonicalize(b *testing.B) {
	doc := []byte(`{"fence":1,"phase":"scanning","progress":42,"file":"src/main/java/com/example/App.java","at":"2026-11-29T18:00:00Z"}`)
	for _, c := range []struct {
		name string
		fn   func([]byte) ([]byte, error)
	}{{"fast", eventstore.Canonicalize}, {"reference", eventstore.CanonicalizeReference}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.fn(doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
