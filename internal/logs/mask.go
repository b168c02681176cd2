// Package logs holds what every log line goes through before it is shown or
// stored: secret masking and line splitting with bounded memory.
package logs

import (
	"sort"
	"strings"
	"sync"
)

// Mask is the placeholder that replaces a secret.
const Mask = "***"

// Masker replaces registered secrets in text. Safe for concurrent use.
// Multi-line secrets are registered line by line as well, so a secret split
// across output lines is still hidden.
type Masker struct {
	mu       sync.RWMutex
	secrets  map[string]bool
	replacer *strings.Replacer
	list     []string // the secrets, longest first; replaced, never changed
}

// NewMasker returns an empty masker.
func NewMasker() *Masker { return &Masker{secrets: map[string]bool{}} }

// Add registers a secret value (and each of its lines, trimmed). Values
// shorter than two characters after trimming are ignored, as GitHub does for
// one-character values, which would hide every occurrence of a letter.
func (m *Masker) Add(secret string) {
	if m == nil {
		return
	}
	vals := []string{secret}
	if strings.ContainsAny(secret, "\r\n") {
		vals = append(vals, strings.FieldsFunc(secret, func(r rune) bool { return r == '\n' || r == '\r' })...)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	changed := false
	for _, v := range vals {
		v = strings.TrimSpace(v)
		if len(v) < 2 || m.secrets[v] {
			continue
		}
		m.secrets[v] = true
		changed = true
	}
	if changed {
		m.rebuild()
	}
}

func (m *Masker) rebuild() {
	list := make([]string, 0, len(m.secrets))
	for s := range m.secrets {
		list = append(list, s)
	}
	// Longest first, so a secret that contains another is hidden whole.
	sort.Slice(list, func(i, j int) bool {
		if len(list[i]) != len(list[j]) {
			return len(list[i]) > len(list[j])
		}
		return list[i] < list[j]
	})
	pairs := make([]string, 0, 2*len(list))
	for _, s := range list {
		pairs = append(pairs, s, Mask)
	}
	m.list = list
	m.replacer = strings.NewReplacer(pairs...)
}

// Apply returns s with every registered secret replaced by Mask.
func (m *Masker) Apply(s string) string {
	if m == nil {
		return s
	}
	m.mu.RLock()
	r, list := m.replacer, m.list
	m.mu.RUnlock()
	if r == nil || !holdsAny(s, list) {
		return s
	}
	return r.Replace(s)
}

// holdsAny reports whether s contains one of list. With several secrets it
// is much cheaper than a replacer that finds nothing (strings.Replacer's
// generic algorithm costs a trie lookup per byte).
func holdsAny(s string, list []string) bool {
	for _, x := range list {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// ApplyLines masks every line of lines in place, as Apply on each would.
// With no secret registered it does nothing; otherwise it first looks for
// the secrets in all the lines at once and masks line by line only when
// one occurs, so output without secrets costs a search, not a replacement
// per line.
func (m *Masker) ApplyLines(lines []string) {
	if m == nil || len(lines) == 0 {
		return
	}
	m.mu.RLock()
	r, list := m.replacer, m.list
	m.mu.RUnlock()
	if r == nil {
		return
	}
	// A secret in a line is in the lines joined; when none is in the
	// joined text, replacing would change nothing.
	if len(lines) > 1 && !holdsAny(strings.Join(lines, "\n"), list) {
		return
	}
	for i, l := range lines {
		if holdsAny(l, list) {
			lines[i] = r.Replace(l)
		}
	}
}

// Len is the number of registered values.
func (m *Masker) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.secrets)
}
