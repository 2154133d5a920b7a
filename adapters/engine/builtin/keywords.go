package builtin

import "fmt"

// keywordSet finds every occurrence of a set of lower-case ASCII keywords in
// a buffer, ASCII case-insensitively, in one pass: an Aho-Corasick automaton
// compiled to a DFA over byte classes. Folding case in the class table spares
// a lower-cased copy of every file. A keywordSet is immutable once built and
// safe for concurrent use.
type keywordSet struct {
	class  [256]uint8
	nclass int
	// trans[s+class[b]] is the next state for state s (premultiplied by
	// nclass) on byte b; matchFlag marks states where a keyword ends.
	trans []uint32
	// out[s/nclass] lists the keywords ending in state s, suffixes included.
	out [][]int32
	// length[kw] is keyword kw's length in bytes.
	length []int
}

const matchFlag = 1 << 31

// maxKeywordStates bounds the automaton so that state numbers premultiplied by
// the class count stay clear of matchFlag.
const maxKeywordStates = 1 << 16

func newKeywordSet(keywords []string) (*keywordSet, error) {
	ks := &keywordSet{}
	// Byte classes: one per distinct keyword byte, upper-case ASCII
	// folded onto lower case, class 0 for every byte in no keyword.
	for _, kw := range keywords {
		if kw == "" {
			return nil, fmt.Errorf("keyword %q: empty", kw)
		}
		for i := 0; i < len(kw); i++ {
			c := kw[i]
			if c < 0x20 || c > 0x7e || ('A' <= c && c <= 'Z') {
				return nil, fmt.Errorf("keyword %q: not lower-case printable ASCII", kw)
			}
			if ks.class[c] == 0 {
				ks.nclass++
				if ks.nclass > 255 {
					return nil, fmt.Errorf("keyword %q: too many distinct bytes", kw)
				}
				ks.class[c] = uint8(ks.nclass)
				if 'a' <= c && c <= 'z' {
					ks.class[c-'a'+'A'] = uint8(ks.nclass)
				}
			}
		}
	}
	ks.nclass++
	nc := ks.nclass

	// Trie, with goto[s*nc+c] = child or -1.
	gotoT := make([]int32, nc)
	for i := range gotoT {
		gotoT[i] = -1
	}
	out := [][]int32{nil}
	for id, kw := range keywords {
		ks.length = append(ks.length, len(kw))
		s := int32(0)
		for i := 0; i < len(kw); i++ {
			c := int(ks.class[kw[i]])
			next := gotoT[int(s)*nc+c]
			if next < 0 {
				next = int32(len(out))
				if next >= maxKeywordStates {
					return nil, fmt.Errorf("keywords: more than %d automaton states", maxKeywordStates)
				}
				out = append(out, nil)
				for range nc {
					gotoT = append(gotoT, -1)
				}
				gotoT[int(s)*nc+c] = next
			}
			s = next
		}
		out[s] = append(out[s], int32(id))
	}

	// Breadth-first: fail links, merged outputs, and the full DFA.
	n := len(out)
	fail := make([]int32, n)
	dfa := make([]int32, n*nc)
	queue := make([]int32, 0, n)
	for c := range nc {
		if next := gotoT[c]; next > 0 {
			dfa[c] = next
			queue = append(queue, next)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		out[s] = append(out[s], out[fail[s]]...)
		for c := range nc {
			next := gotoT[int(s)*nc+c]
			if next < 0 {
				dfa[int(s)*nc+c] = dfa[int(fail[s])*nc+c]
				continue
			}
			fail[next] = dfa[int(fail[s])*nc+c]
			dfa[int(s)*nc+c] = next
			queue = append(queue, next)
		}
	}
	ks.trans = make([]uint32, n*nc)
	for i, next := range dfa {
		v := uint32(int(next) * nc)
		if len(out[next]) > 0 {
			v |= matchFlag
		}
		ks.trans[i] = v
	}
	ks.out = out
	return ks, nil
}

// scan calls hit with the keyword ID and the offset of its start for every
// keyword occurrence in buf, in increasing order of the offset of its end.
func (ks *keywordSet) scan(buf []byte, hit func(kw int32, start int)) {
	trans, class := ks.trans, &ks.class
	s := uint32(0)
	for i, b := range buf {
		s = trans[s+uint32(class[b])]
		if s&matchFlag != 0 {
			s &^= matchFlag
			for _, kw := range ks.out[int(s)/ks.nclass] {
				hit(kw, i+1-ks.length[kw])
			}
		}
	}
}
