package logs

import (
	"math/bits"
	"sort"
	"strings"
)

// index finds every occurrence of a set of patterns in one pass over the
// text, whatever the number of patterns. Patterns of 4 bytes or more are
// keyed by their first 4 bytes: a bit set of hashed keys, sized to stay
// sparse, rejects almost every position with one load, one multiply and
// one bit test; a position that passes is checked against the patterns of
// its key. The few shorter patterns (secrets of 2 or 3 bytes) are searched
// one by one. Immutable once built.
type index struct {
	short   []string            // patterns under 4 bytes
	filter  []uint64            // bit per hashed key
	shift   uint                // 32 - log2(len(filter)*64)
	buckets map[uint32][]string // key → patterns, longest first
	few     []string            // the keys as text when there are few
}

// fewKeys is the most keys searched one by one with strings.Index (which
// skips through text with vector instructions) rather than by the filter.
const fewKeys = 6

func newIndex(patterns []string) *index {
	x := &index{buckets: map[uint32][]string{}}
	for _, p := range patterns {
		if len(p) < 4 {
			x.short = append(x.short, p)
			continue
		}
		k := key(p, 0)
		x.buckets[k] = append(x.buckets[k], p)
	}
	// At least 16 bits per key keeps the false positives near 6 %.
	nbits := 1 << 12
	for nbits < 16*len(x.buckets) {
		nbits <<= 1
	}
	x.filter = make([]uint64, nbits/64)
	x.shift = uint(32 - bits.TrailingZeros(uint(nbits)))
	for k, ps := range x.buckets {
		sort.Slice(ps, func(i, j int) bool { return len(ps[i]) > len(ps[j]) })
		h := x.hash(k)
		x.filter[h/64] |= 1 << (h % 64)
		if len(x.buckets) <= fewKeys {
			x.few = append(x.few, ps[len(ps)-1][:4])
		}
	}
	return x
}

func key(s string, i int) uint32 {
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

func (x *index) hash(k uint32) uint32 { return (k * 0x9E3779B1) >> x.shift }

// span is a byte range [start, end) of the text to mask.
type span struct{ start, end int }

// find returns the ranges of s covered by pattern occurrences, sorted and
// with overlapping ranges merged, so each becomes one Mask. Text without
// an occurrence costs no allocation.
func (x *index) find(s string) []span {
	var dst []span
	switch {
	case len(s) < 4:
	case x.few != nil:
		for _, k := range x.few {
			for off := 0; ; off++ {
				j := strings.Index(s[off:], k)
				if j < 0 {
					break
				}
				off += j
				dst = x.check(s, off, key(s, off), dst)
			}
		}
	case len(x.buckets) > 0:
		w := uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16
		for i := 0; i+4 <= len(s); i++ {
			w = w&0xFFFFFF | uint32(s[i+3])<<24
			if h := x.hash(w); x.filter[h/64]&(1<<(h%64)) != 0 {
				dst = x.check(s, i, w, dst)
			}
			w >>= 8
		}
	}
	for _, p := range x.short {
		for off := 0; ; {
			j := strings.Index(s[off:], p)
			if j < 0 {
				break
			}
			dst = append(dst, span{off + j, off + j + len(p)})
			off += j + 1
		}
	}
	if len(dst) > 1 {
		dst = merge(dst)
	}
	return dst
}

// check appends the longest pattern of key w found at s[i:].
func (x *index) check(s string, i int, w uint32, dst []span) []span {
	for _, p := range x.buckets[w] {
		if strings.HasPrefix(s[i:], p) {
			return append(dst, span{i, i + len(p)})
		}
	}
	return dst
}

// merge sorts spans and joins the overlapping ones (touching ones stay
// apart, so two secrets side by side show as two masks). It works in place.
func merge(sp []span) []span {
	sort.Slice(sp, func(i, j int) bool { return sp[i].start < sp[j].start })
	out := sp[:1]
	for _, s := range sp[1:] {
		last := &out[len(out)-1]
		if s.start < last.end {
			last.end = max(last.end, s.end)
			continue
		}
		out = append(out, s)
	}
	return out
}

// replace returns s with each span replaced by Mask.
func replace(s string, sp []span) string {
	var b strings.Builder
	b.Grow(len(s))
	at := 0
	for _, r := range sp {
		b.WriteString(s[at:r.start])
		b.WriteString(Mask)
		at = r.end
	}
	b.WriteString(s[at:])
	return b.String()
}
