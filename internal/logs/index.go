package logs

import (
	"sort"
	"strings"
)

// index finds every occurrence of a set of patterns in one pass over the
// text, whatever the number of patterns. Patterns of 4 bytes or more are
// keyed by their first 4 bytes: a bit set of hashed keys (2^18 bits)
// rejects almost every position with one load, one multiply and
// one bit test; a position that passes is checked against the patterns of
// its key, found by their first 8 bytes when they have as many (tokens of
// one kind share a prefix: ghp_, AKIA, xoxb-). The few shorter patterns
// (secrets of 2 or 3 bytes) are searched one by one. Immutable once built.
type index struct {
	short   []string             // patterns under 4 bytes
	filter  *[filterWords]uint64 // bit per hashed key
	buckets map[uint32]*bucket   // by the first 4 bytes
	few     []string             // the keys as text when there are few
}

// bucket holds the patterns that share their first 4 bytes.
type bucket struct {
	long  map[uint64][]string // 8 bytes or more, by their first 8, longest first
	short []string            // 4 to 7 bytes, longest first
}

// The filter has a fixed size, so that its index needs no bounds check:
// 2^18 bits (32 KB) keep false positives under 4 % up to 10,000 keys (the
// encoded forms of about a thousand secrets).
const (
	filterBits  = 18
	filterWords = 1 << filterBits / 64
)

// fewKeys is the most keys searched one by one with strings.Index (which
// skips through text with vector instructions) rather than by the filter.
const fewKeys = 6

func newIndex(patterns []string) *index {
	x := &index{buckets: map[uint32]*bucket{}}
	// Longest first, so the first pattern found at a place is the longest.
	sort.Slice(patterns, func(i, j int) bool { return len(patterns[i]) > len(patterns[j]) })
	for _, p := range patterns {
		if len(p) < 4 {
			x.short = append(x.short, p)
			continue
		}
		k := key(p, 0)
		b := x.buckets[k]
		if b == nil {
			b = &bucket{long: map[uint64][]string{}}
			x.buckets[k] = b
		}
		if len(p) < 8 {
			b.short = append(b.short, p)
			continue
		}
		k8 := key8(p, 0)
		b.long[k8] = append(b.long[k8], p)
	}
	x.filter = new([filterWords]uint64)
	for k := range x.buckets {
		h := hash(k)
		x.filter[h/64] |= 1 << (h % 64)
		if len(x.buckets) <= fewKeys {
			x.few = append(x.few, string([]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}))
		}
	}
	return x
}

func key(s string, i int) uint32 {
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

func key8(s string, i int) uint64 {
	return uint64(key(s, i)) | uint64(key(s, i+4))<<32
}

func hash(k uint32) uint32 { return (k * 0x9E3779B1) >> (32 - filterBits) }

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
		// w holds the 4 bytes ending at i, the key of position i-3.
		f := x.filter
		w := uint32(s[0])<<8 | uint32(s[1])<<16 | uint32(s[2])<<24
		for i := 3; i < len(s); i++ {
			w = w>>8 | uint32(s[i])<<24
			if h := hash(w); f[h/64]&(1<<(h%64)) != 0 {
				dst = x.check(s, i-3, w, dst)
			}
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
	b := x.buckets[w]
	if b == nil {
		return dst
	}
	if i+8 <= len(s) && len(b.long) > 0 {
		for _, p := range b.long[key8(s, i)] {
			if strings.HasPrefix(s[i:], p) {
				return append(dst, span{i, i + len(p)})
			}
		}
	}
	for _, p := range b.short {
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
