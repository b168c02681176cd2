package workflow

import (
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// GitHub's parser charges every token it reads, and every file name it
// records, against a memory budget (MaxResultSize), with these costs: an
// object 24 bytes, a string 26 bytes more plus two bytes per UTF-16 unit.
const (
	objectBytes = 24
	stringBytes = 26
)

// NameBytes is what a file name costs in the budget.
func NameBytes(file string) int { return stringBytes + 2*utf16Len(file) }

// NodeBytes is what one YAML node (not its children) costs in the budget:
// a mapping, sequence, null, boolean or number an object; a string an
// object and its text; a whole ${{ }} value an object and its expression.
func NodeBytes(n *yaml.Node) int {
	if n.Kind != yaml.ScalarNode {
		return objectBytes
	}
	switch n.ShortTag() {
	case "!!null", "!!bool", "!!int", "!!float":
		return objectBytes
	}
	s := n.Value
	if isExprOnly(s) {
		t := strings.TrimSpace(s)
		s = strings.TrimSpace(t[3 : len(t)-2])
	}
	return objectBytes + stringBytes + 2*utf16Len(s)
}

// TreeBytes is what the nodes of a tree cost in the budget.
func TreeBytes(root *yaml.Node) int {
	total := 0
	walk(root, func(n *yaml.Node) bool {
		total += NodeBytes(n)
		return true
	})
	return total
}

// ResultBytes is what a file costs in the budget: its name and its tree.
func ResultBytes(file string, root *yaml.Node) int {
	return NameBytes(file) + TreeBytes(root)
}

// walk visits n and its descendants in document order while fn returns true.
func walk(n *yaml.Node, fn func(*yaml.Node) bool) bool {
	if n == nil {
		return true
	}
	if !fn(n) {
		return false
	}
	for _, c := range n.Content {
		if !walk(c, fn) {
			return false
		}
	}
	return true
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		if r >= 0x10000 && r <= utf8.MaxRune {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// checkSize reports, at the node where the budget runs out, a file that
// costs more than MaxResultSize.
func (p *parser) checkSize(root *yaml.Node) bool {
	total := NameBytes(p.file)
	ok := walk(root, func(n *yaml.Node) bool {
		total += NodeBytes(n)
		if total > p.limits.MaxResultSize {
			p.errAt(n, "Maximum object size exceeded")
			return false
		}
		return true
	})
	return ok
}
