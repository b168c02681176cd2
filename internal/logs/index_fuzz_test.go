package logs

import (
	"strings"
	"testing"
)

// naiveFind is what index.find must return: every occurrence of every
// pattern, overlapping ones merged.
func naiveFind(s string, patterns []string) []span {
	var sp []span
	for _, p := range patterns {
		for i := 0; i+len(p) <= len(s); i++ {
			if strings.HasPrefix(s[i:], p) {
				sp = append(sp, span{i, i + len(p)})
			}
		}
	}
	if len(sp) > 1 {
		sp = merge(sp)
	}
	return sp
}

// FuzzMaskIndex compares the index with a plain search, for few patterns
// (the strings.Index path) and many (the filter path), patterns sharing
// prefixes and of every length from 2 bytes.
func FuzzMaskIndex(f *testing.F) {
	f.Add("a tok_secret b tok_sec c", "tok_secret", "tok_sec", "ok")
	f.Add("aaaaaaaaaa", "aaaa", "aaaaaaaaa", "aa")
	f.Add("xyzxyzxyz", "zxy", "yzxyzx", "xyzxyzxy")
	f.Fuzz(func(t *testing.T, text, a, b, c string) {
		var patterns []string
		for _, p := range []string{a, b, c} {
			if len(p) >= 2 {
				patterns = append(patterns, p)
			}
		}
		if len(patterns) == 0 {
			return
		}
		many := append([]string(nil), patterns...)
		for i := 0; i < 20; i++ { // enough keys to leave the few-keys path
			many = append(many, "pad"+string(rune('A'+i))+"-filler")
		}
		for _, ps := range [][]string{patterns, many} {
			want := naiveFind(text, ps)
			got := newIndex(append([]string(nil), ps...)).find(text)
			if len(got) != len(want) {
				t.Fatalf("%d patterns %q in %q: %v, want %v", len(ps), ps[:len(patterns)], text, got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%d patterns %q in %q: %v, want %v", len(ps), ps[:len(patterns)], text, got, want)
				}
			}
		}
	})
}
