package workflow

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Limits bound what a file may hold; zero fields take the defaults.
type Limits struct {
	MaxDepth    int // nesting of mappings and sequences; default 64
	MaxFileSize int // bytes; default 1 MiB, GitHub's limit
	// MaxResultSize bounds the memory GitHub's parser charges for a file's
	// name and tokens (see ResultBytes), across the called reusable
	// workflows too; default 10 MiB, GitHub's.
	MaxResultSize int
	// MaxJobs bounds the jobs of a workflow, those of the reusable
	// workflows it calls included; default 0, no limit.
	MaxJobs int
	// MaxNestedCalls bounds how deep reusable workflows may call each
	// other; default 9 (ten levels of workflows, GitHub's limit).
	MaxNestedCalls int
	// Strict checks on: against the language service's
	// workflow-root-strict schema (unknown keys and values under any event
	// are errors), not GitHub's runtime workflow-root schema, which takes
	// any value under an event but workflow_call.
	Strict bool
}

// WithDefaults returns l with its zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = 64
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = 1 << 20
	}
	if l.MaxResultSize <= 0 {
		l.MaxResultSize = 10 << 20
	}
	if l.MaxNestedCalls <= 0 {
		l.MaxNestedCalls = 9
	}
	return l
}

// parser collects problems while reading one file.
type parser struct {
	file   string
	limits Limits
	probs  Problems
}

func posOf(n *yaml.Node) Pos {
	if n == nil {
		return Pos{Line: 1, Col: 1}
	}
	return Pos{Line: n.Line, Col: n.Column}
}

func (p *parser) errAt(n *yaml.Node, format string, args ...any) {
	p.errPos(posOf(n), format, args...)
}

func (p *parser) errPos(pos Pos, format string, args ...any) {
	if pos.Line < 1 {
		pos.Line = 1
	}
	if pos.Col < 1 {
		pos.Col = 1
	}
	p.probs = append(p.probs, &Problem{File: p.file, Pos: pos, Message: fmt.Sprintf(format, args...)})
}

// SortProblems orders problems by position, keeping the order of equal ones.
func SortProblems(ps Problems) {
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i].Pos, ps[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

var (
	yamlLineRE       = regexp.MustCompile(`line (\d+)(?:, column (\d+))?`)
	yamlLinePrefixRE = regexp.MustCompile(`^line \d+(?:, column \d+)?: `)
)

// load decodes data into a document node and checks what GitHub rejects at
// the YAML level: anchors, aliases, unsupported tags, too deep nesting.
// It returns the root mapping or nil.
func (p *parser) load(data []byte) (root *yaml.Node) {
	p.limits = p.limits.WithDefaults()
	if len(data) > p.limits.MaxFileSize {
		p.errPos(Pos{1, 1}, "The maximum file size of %d characters has been exceeded", p.limits.MaxFileSize)
		return nil
	}
	var doc yaml.Node
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("yaml: %v", r)
			}
		}()
		return yaml.Unmarshal(data, &doc)
	}()
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		pos := Pos{Line: 1, Col: 1}
		if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
			pos.Line, _ = strconv.Atoi(m[1])
			if m[2] != "" {
				pos.Col, _ = strconv.Atoi(m[2])
			}
		}
		msg = yamlLinePrefixRE.ReplaceAllString(msg, "")
		if at, what, ok := syntaxErrorAt(data); ok && at.Line >= pos.Line {
			pos, msg = at, what
		}
		p.errPos(pos, "YAML syntax error: %s", msg)
		return nil
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		p.errPos(Pos{1, 1}, "The file is empty")
		return nil
	}
	n := doc.Content[0]
	if !p.checkNodes(n, 1) {
		return nil
	}
	if !p.checkSize(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		if isNull(n) {
			p.errAt(n, "The file is empty")
		} else {
			p.errAt(n, "Unexpected value '%s': the file must be a mapping", ShortValue(n))
		}
		return nil
	}
	return n
}

// checkNodes reports anchors, aliases, explicit tags GitHub does not
// support and excessive depth. It returns false when the tree must not be read.
func (p *parser) checkNodes(n *yaml.Node, depth int) bool {
	if (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) && depth-1 >= p.limits.MaxDepth {
		p.errAt(n, "Maximum object depth exceeded")
		return false
	}
	ok := true
	if n.Anchor != "" {
		p.errAt(n, "Anchors are not currently supported. Remove the anchor '%s'", n.Anchor)
		ok = false
	}
	if n.Kind == yaml.AliasNode {
		p.errAt(n, "Anchors are not currently supported. Remove the alias '%s'", n.Value)
		return false
	}
	if n.Style&yaml.TaggedStyle != 0 {
		tag := n.ShortTag()
		switch {
		case n.Kind == yaml.ScalarNode && (tag == "!!bool" || tag == "!!int" || tag == "!!float"):
			if !validTagged(tag, n.Value) {
				p.errAt(n, "The value '%s' on line %d and column %d is invalid for the type 'tag:yaml.org,2002:%s'", n.Value, n.Line, n.Column, tag[2:])
				ok = false
			}
		case n.Kind == yaml.ScalarNode && (tag == "!!str" || tag == "!!null"):
		case n.Kind == yaml.MappingNode && tag == "!!map":
		case n.Kind == yaml.SequenceNode && tag == "!!seq":
		default:
			long := tag
			if strings.HasPrefix(tag, "!!") {
				long = "tag:yaml.org,2002:" + tag[2:]
			}
			p.errAt(n, "Unexpected tag '%s'", long)
			ok = false
		}
	}
	for _, c := range n.Content {
		if !p.checkNodes(c, depth+1) {
			ok = false
		}
	}
	return ok
}

func validTagged(tag, v string) bool {
	switch tag {
	case "!!bool":
		switch v {
		case "true", "True", "TRUE", "false", "False", "FALSE":
			return true
		}
		return false
	case "!!int":
		_, err := strconv.ParseInt(strings.ReplaceAll(v, "_", ""), 0, 64)
		return err == nil
	case "!!float":
		switch strings.ToLower(v) {
		case ".inf", "+.inf", "-.inf", ".nan":
			return true
		}
		_, err := strconv.ParseFloat(v, 64)
		return err == nil
	}
	return true
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// ShortValue renders a node for a message: a scalar's text, or "mapping" /
// "sequence".
func ShortValue(n *yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			return ""
		}
		return n.Value
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "sequence"
	}
	return ""
}

func isInsert(s string) bool {
	t := strings.TrimSpace(s)
	if !strings.HasPrefix(t, "${{") || !strings.HasSuffix(t, "}}") {
		return false
	}
	return strings.TrimSpace(t[3:len(t)-2]) == "insert"
}

func hasExpr(s string) bool { return strings.Contains(s, "${{") }

// str reads a scalar as written. Null reads as "". Mappings and sequences
// are reported.
func (p *parser) str(n *yaml.Node) (string, bool) {
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			return "", true
		}
		return n.Value, true
	case yaml.MappingNode:
		p.errAt(n, "A mapping was not expected")
	case yaml.SequenceNode:
		p.errAt(n, "A sequence was not expected")
	}
	return "", false
}

// literal reads a scalar that may not hold an expression.
func (p *parser) literal(n *yaml.Node) (string, bool) {
	s, ok := p.str(n)
	if ok && hasExpr(s) {
		p.errAt(n, "A template expression is not allowed in this context")
		return s, false
	}
	return s, ok
}

// boolOrExpr reads a boolean that may be an expression.
func (p *parser) boolOrExpr(n *yaml.Node) string {
	s, ok := p.str(n)
	if !ok || isExprOnly(s) || s == "" {
		return s
	}
	if _, ok := parseBool(s); !ok {
		p.errAt(n, "Unexpected value '%s'", s)
	}
	return s
}

func parseBool(s string) (bool, bool) {
	switch s {
	case "true", "True", "TRUE":
		return true, true
	case "false", "False", "FALSE":
		return false, true
	}
	return false, false
}

// numberOrExpr reads a number that may be an expression.
func (p *parser) numberOrExpr(n *yaml.Node) string {
	s, ok := p.str(n)
	if !ok || isExprOnly(s) || s == "" {
		return s
	}
	if _, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64); err != nil {
		if _, err := strconv.ParseInt(s, 0, 64); err != nil {
			p.errAt(n, "Unexpected value '%s'", s)
		}
	}
	return s
}

func isExprOnly(s string) bool {
	t := strings.TrimSpace(s)
	return strings.HasPrefix(t, "${{") && strings.HasSuffix(t, "}}")
}

// strList reads a string or a sequence of strings.
func (p *parser) strList(n *yaml.Node) []string {
	switch n.Kind {
	case yaml.ScalarNode:
		if isNull(n) {
			return nil
		}
		return []string{n.Value}
	case yaml.SequenceNode:
		var out []string
		for _, c := range n.Content {
			if s, ok := p.str(c); ok {
				out = append(out, s)
			}
		}
		return out
	case yaml.MappingNode:
		p.errAt(n, "A mapping was not expected")
	}
	return nil
}

// seqOfStr reads a sequence of strings (a lone string is accepted too).
func (p *parser) seqOfStr(n *yaml.Node) []string { return p.strList(n) }

// mapping calls fn for each entry of a mapping node, reporting duplicate
// keys, keys that are not plain strings and expressions in keys. When fold
// is set, keys compare case-insensitively (job ids, step ids). A non-mapping
// is reported and false returned. A null node is an empty mapping.
func (p *parser) mapping(n *yaml.Node, fold bool, fn func(key string, k, v *yaml.Node)) bool {
	if isNull(n) {
		return true
	}
	if n.Kind == yaml.MappingNode && fn == nil {
		p.errAt(n, "A mapping was not expected")
		return false
	}
	if n.Kind != yaml.MappingNode {
		switch n.Kind {
		case yaml.SequenceNode:
			p.errAt(n, "A sequence was not expected")
		default:
			if hasExpr(n.Value) {
				p.errAt(n, "A template expression is not allowed in this context")
			} else {
				p.errAt(n, "Unexpected value '%s'", ShortValue(n))
			}
		}
		return false
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errAt(k, "A mapping key must be a string")
			continue
		}
		key := k.Value
		if isNull(k) {
			key = ""
		}
		if isInsert(key) {
			// ${{ insert }} merges a mapping at run time; nothing to read now.
			continue
		}
		if hasExpr(key) {
			p.errAt(k, "A template expression is not allowed in this context")
			continue
		}
		id := key
		if fold {
			id = strings.ToLower(key)
		}
		if seen[id] {
			p.errAt(k, "'%s' is already defined", key)
			continue
		}
		seen[id] = true
		fn(key, k, v)
	}
	return true
}

// kvs reads a mapping of scalars (env, with, outputs, secrets).
func (p *parser) kvs(n *yaml.Node) []KV {
	var out []KV
	if !isNull(n) && n.Kind == yaml.ScalarNode && isExprOnly(n.Value) {
		// A whole mapping given as one expression: kept as a single entry
		// with an empty key for the executor to evaluate.
		return []KV{{Key: "", Value: n.Value, Pos: posOf(n), Node: n}}
	}
	p.mapping(n, false, func(key string, k, v *yaml.Node) {
		if key == "" {
			p.errAt(k, "Unexpected value ''")
			return
		}
		s, ok := p.str(v)
		if !ok {
			return
		}
		out = append(out, KV{Key: key, Value: s, Pos: posOf(v), Node: v})
	})
	return out
}

func (p *parser) unknown(key string, k *yaml.Node) {
	p.errAt(k, "Unexpected value '%s'", key)
}

// required reports keys missing from a mapping node.
func (p *parser) required(n *yaml.Node, have map[string]bool, keys ...string) {
	for _, k := range keys {
		if !have[k] {
			p.errAt(n, "Required property is missing: %s", k)
		}
	}
}
