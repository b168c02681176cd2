package lint

import (
	"errors"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/conveyor-ci/conveyor/internal/expr"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// MaxExpressionLength is GitHub's limit on a value holding expressions.
const MaxExpressionLength = 21000

// exprChecker checks one expression (without ${{ }}) given the named-values
// allowed there (nil: any). It returns the byte offset in src and a message.
type exprChecker func(src string, names []string) (offset int, msg string, ok bool)

// checkExpr is wired to internal/expr.
var checkExpr exprChecker = func(src string, names []string) (int, string, bool) {
	_, err := expr.Parse(src, names)
	if err == nil {
		return 0, "", true
	}
	var se *expr.SyntaxError
	if errors.As(err, &se) {
		return se.Offset, se.Message, false
	}
	return 0, err.Error(), false
}

// Named-values allowed in each place, as GitHub's workflow schema has them.
var (
	ctxWorkflow    = []string{"github", "inputs", "vars"}
	ctxWorkflowEnv = []string{"github", "inputs", "vars", "secrets"}
	ctxJobIf       = []string{"github", "inputs", "vars", "needs"}
	ctxStrategy    = []string{"github", "inputs", "vars", "needs"}
	ctxJob         = []string{"github", "inputs", "vars", "needs", "strategy", "matrix"}
	ctxJobSecrets  = []string{"github", "inputs", "vars", "needs", "strategy", "matrix", "secrets"}
	ctxJobDefaults = []string{"github", "inputs", "vars", "needs", "strategy", "matrix", "env"}
	ctxStepIf      = []string{"github", "inputs", "vars", "needs", "strategy", "matrix", "job", "runner", "env", "steps"}
	ctxStep        = []string{"github", "inputs", "vars", "needs", "strategy", "matrix", "job", "runner", "env", "steps", "secrets"}
)

// place says which named-values a value at path may use, whether it is an
// if: condition, and whether expressions are checked there at all.
func place(dialect string, path []string) (names []string, isIf, check bool) {
	at := func(i int) string {
		if i < len(path) {
			return path[i]
		}
		return ""
	}
	if dialect == "serverless-cd" {
		switch at(0) {
		case "steps":
			if at(2) == "if" {
				return ctxStepIf, true, true
			}
			return ctxStep, false, true
		case "env":
			return ctxWorkflowEnv, false, true
		}
		return nil, false, false
	}
	switch at(0) {
	case "on", "name", "permissions":
		return nil, false, false
	case "run-name", "concurrency", "defaults":
		return ctxWorkflow, false, true
	case "env":
		return ctxWorkflowEnv, false, true
	case "jobs":
	default:
		return nil, false, true
	}
	switch at(2) {
	case "if":
		return ctxJobIf, true, true
	case "strategy":
		return ctxStrategy, false, true
	case "env", "secrets", "container", "services":
		return ctxJobSecrets, false, true
	case "defaults":
		return ctxJobDefaults, false, true
	case "outputs":
		return ctxStep, false, true
	case "environment":
		if at(3) == "url" {
			return ctxStepIf, false, true
		}
		return ctxJob, false, true
	case "steps":
		if at(4) == "if" {
			return ctxStepIf, true, true
		}
		return ctxStep, false, true
	case "permissions", "needs", "uses":
		return nil, false, false
	}
	return ctxJob, false, true
}

// expressions checks every ${{ }} and if: of the file.
func (l *linter) expressions() {
	if l.w.Node == nil {
		return
	}
	l.walk(l.w.Node, nil, 0)
}

func (l *linter) walk(n *yaml.Node, path []string, keyCol int) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			l.walk(n.Content[i+1], append(path, k.Value), k.Column)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			l.walk(c, append(path, strconv.Itoa(i)), keyCol)
		}
	case yaml.ScalarNode:
		names, isIf, check := place(l.w.Dialect, path)
		if !check {
			return
		}
		if isIf {
			l.condition(n, names, keyCol)
			return
		}
		l.template(n, names, keyCol)
	}
}

// condition checks an if: value: a bare expression or one ${{ }}.
func (l *linter) condition(n *yaml.Node, names []string, keyCol int) {
	v := n.Value
	if strings.Contains(v, "${{") {
		t := strings.TrimSpace(v)
		if strings.HasPrefix(t, "${{") && strings.HasSuffix(t, "}}") && strings.Count(t, "${{") == 1 {
			l.template(n, names, keyCol)
			return
		}
		l.template(n, names, keyCol)
		return
	}
	if n.Tag == "!!bool" || n.ShortTag() == "!!bool" {
		return
	}
	if off, msg, ok := checkExpr(v, names); !ok && !jobStatusArgs(names, msg) {
		l.errPos(offsetPos(n, off, keyCol), "%s", msg)
	}
}

// jobStatusArgs reports an error GitHub does not raise: in a job's if:,
// success() and failure() take the ids of jobs it needs.
func jobStatusArgs(names []string, msg string) bool {
	if len(names) != len(ctxJobIf) || names[len(names)-1] != "needs" {
		return false
	}
	return strings.HasPrefix(msg, "Too many parameters supplied: 'success'") || strings.HasPrefix(msg, "Too many parameters supplied: 'failure'")
}

// template checks the ${{ }} of a string value.
func (l *linter) template(n *yaml.Node, names []string, keyCol int) {
	v := n.Value
	if !strings.Contains(v, "${{") {
		return
	}
	if len(v) > MaxExpressionLength {
		l.errPos(workflow.Pos{Line: n.Line, Col: n.Column}, "Exceeded max expression length %d", MaxExpressionLength)
		return
	}
	whole := false
	if t := strings.TrimSpace(v); strings.HasPrefix(t, "${{") && strings.HasSuffix(t, "}}") && strings.Count(t, "${{") == 1 {
		whole = true
	}
	i := 0
	for {
		j := strings.Index(v[i:], "${{")
		if j < 0 {
			return
		}
		start := i + j
		k := start + 3
		inStr := false
		for ; k < len(v); k++ {
			if v[k] == '\'' {
				inStr = !inStr
			} else if !inStr && v[k] == '}' && k+1 < len(v) && v[k+1] == '}' {
				break
			}
		}
		if k >= len(v) {
			l.errPos(offsetPos(n, start, keyCol), "The expression is not closed. An unescaped ${{ sequence was found, but the closing }} sequence was not found.")
			return
		}
		inner := v[start+3 : k]
		switch strings.TrimSpace(inner) {
		case "":
			l.errPos(offsetPos(n, start, keyCol), "An expression was expected")
		case "insert":
			if !whole {
				l.errPos(workflow.Pos{Line: n.Line, Col: n.Column}, "The directive 'insert' is not allowed in this context. Directives are not supported for expressions that are embedded within a string. Directives are only supported when the entire value is an expression.")
			}
		default:
			// GitHub's runner accepts any Unicode space around an expression.
			trimmed := strings.TrimLeftFunc(inner, unicode.IsSpace)
			lead := len(inner) - len(trimmed)
			trimmed = strings.TrimRightFunc(trimmed, unicode.IsSpace)
			if off, msg, ok := checkExpr(trimmed, names); !ok && !jobStatusArgs(names, msg) {
				l.errPos(offsetPos(n, start+3+lead+off, keyCol), "%s", msg)
			}
		}
		i = k + 2
	}
}

// offsetPos maps a byte offset in a scalar's value to a file position. It is
// exact for single-line plain and quoted scalars without escapes and for
// literal blocks indented as usual; otherwise a best estimate.
func offsetPos(n *yaml.Node, off, keyCol int) workflow.Pos {
	v := n.Value
	if off > len(v) {
		off = len(v)
	}
	if off < 0 {
		off = 0
	}
	before := v[:off]
	lineStart := strings.LastIndexByte(before, '\n') + 1
	col := len([]rune(before[lineStart:]))
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		indent := keyCol + 1
		if keyCol == 0 {
			indent = n.Column + 2
		}
		return workflow.Pos{Line: n.Line + 1 + strings.Count(before, "\n"), Col: indent + col + 1}
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if strings.Contains(v, "\n") {
			return workflow.Pos{Line: n.Line, Col: n.Column}
		}
		return workflow.Pos{Line: n.Line, Col: n.Column + 1 + col}
	}
	if strings.Contains(v, "\n") {
		return workflow.Pos{Line: n.Line, Col: n.Column}
	}
	return workflow.Pos{Line: n.Line, Col: n.Column + col}
}
