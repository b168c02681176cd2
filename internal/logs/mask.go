// Package logs holds what every log line goes through before it is shown or
// stored: secret masking and line splitting with bounded memory.
package logs

import (
	"strings"
	"sync"
)

// Mask is the placeholder that replaces a secret.
const Mask = "***"

// Masker replaces registered secrets in text, and the forms they are
// commonly printed in (see forms: base64 at every alignment, URL, JSON,
// XML, expression and shell escaping). Safe for concurrent use.
// Multi-line secrets are registered line by line as well, so a secret split
// across output lines is still hidden.
//
// All the patterns are searched in one pass (see index), so the cost of a
// line grows with its length, hardly with the number of secrets.
type Masker struct {
	mu       sync.RWMutex
	values   map[string]bool // what Add registered, trimmed
	patterns map[string]bool // values and their forms
	idx      *index          // nil when stale; rebuilt on the next use
}

// NewMasker returns an empty masker.
func NewMasker() *Masker {
	return &Masker{values: map[string]bool{}, patterns: map[string]bool{}}
}

// Add registers a secret value (and each of its lines, trimmed), with its
// encoded forms. Values shorter than two characters after trimming are
// ignored, as GitHub does for one-character values, which would hide every
// occurrence of a letter.
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
	for _, v := range vals {
		v = strings.TrimSpace(v)
		if len(v) < 2 || m.values[v] {
			continue
		}
		m.values[v] = true
		m.patterns[v] = true
		for _, f := range forms(v) {
			if len(f) >= 2 {
				m.patterns[f] = true
			}
		}
		m.idx = nil
	}
}

// index returns the current index, building it after an Add.
func (m *Masker) index() *index {
	m.mu.RLock()
	x, n := m.idx, len(m.patterns)
	m.mu.RUnlock()
	if x != nil || n == 0 {
		return x
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.idx == nil {
		list := make([]string, 0, len(m.patterns))
		for p := range m.patterns {
			list = append(list, p)
		}
		m.idx = newIndex(list)
	}
	return m.idx
}

// Apply returns s with every registered secret replaced by Mask.
// Overlapping occurrences become one Mask.
func (m *Masker) Apply(s string) string {
	if m == nil {
		return s
	}
	x := m.index()
	if x == nil {
		return s
	}
	sp := x.find(s)
	if len(sp) == 0 {
		return s
	}
	return replace(s, sp)
}

// ApplyLines masks every line of lines in place, as Apply on each would.
func (m *Masker) ApplyLines(lines []string) {
	if m == nil || len(lines) == 0 {
		return
	}
	x := m.index()
	if x == nil {
		return
	}
	for i, l := range lines {
		if sp := x.find(l); len(sp) > 0 {
			lines[i] = replace(l, sp)
		}
	}
}

// Len is the number of registered values (not counting their forms).
func (m *Masker) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.values)
}
