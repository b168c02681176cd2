package expr

import (
	"errors"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// segment is one ${{ }} of a template: [start, end) spans "${{ ... }}",
// inner is the expression between the braces.
type segment struct {
	start, end int
	inner      string
	innerOff   int
}

// errUnclosed is returned by scan for a ${{ without }}; off is where it starts.
type unclosedError struct{ off int }

func (e *unclosedError) Error() string {
	return "Unclosed expression: '${{' has no matching '}}'"
}

// scan finds the ${{ }} of s; a }} inside a quoted string does not close one.
func scan(s string) ([]segment, error) {
	var segs []segment
	i := 0
	for {
		j := strings.Index(s[i:], "${{")
		if j < 0 {
			return segs, nil
		}
		start := i + j
		k := start + 3
		inStr := false
		for ; k < len(s); k++ {
			if s[k] == '\'' {
				inStr = !inStr
			} else if !inStr && s[k] == '}' && k+1 < len(s) && s[k+1] == '}' {
				break
			}
		}
		if k >= len(s) {
			return segs, &unclosedError{off: start}
		}
		segs = append(segs, segment{start: start, end: k + 2, inner: s[start+3 : k], innerOff: start + 3})
		i = k + 2
	}
}

// Interpolate evaluates the ${{ }} of template s. A string that is exactly
// one ${{ x }} (surrounding whitespace allowed) yields x's value as is;
// otherwise every value is converted with ToString and spliced in.
func Interpolate(s string, c *Context) (any, error) {
	segs, err := scan(s)
	if err != nil {
		return nil, errs.E(op, errs.Invalid, "%v in %q", err, s)
	}
	if len(segs) == 0 {
		return s, nil
	}
	if len(segs) == 1 && strings.TrimSpace(s[:segs[0].start]) == "" && strings.TrimSpace(s[segs[0].end:]) == "" {
		return Eval(segs[0].inner, c)
	}
	var b strings.Builder
	last := 0
	for _, sg := range segs {
		v, err := Eval(sg.inner, c)
		if err != nil {
			return nil, err
		}
		b.WriteString(s[last:sg.start])
		b.WriteString(ToString(v))
		last = sg.end
	}
	b.WriteString(s[last:])
	return b.String(), nil
}

// EvalCondition evaluates an if: condition, with or without ${{ }}. An
// empty condition means success(); one without a status function means
// success() && (cond). The result is the value's truthiness.
func EvalCondition(cond string, c *Context) (bool, error) {
	if c == nil {
		c = &Context{}
	}
	src := strings.TrimSpace(cond)
	if strings.Contains(src, "${{") {
		segs, err := scan(src)
		if err != nil {
			return false, errs.E(op, errs.Invalid, "%v in %q", err, cond)
		}
		if len(segs) != 1 || segs[0].start != 0 || segs[0].end != len(src) {
			// A template with text around its expressions is a non-empty string.
			v, err := Interpolate(src, c)
			if err != nil {
				return false, err
			}
			return successful(c) && Truthy(v), nil
		}
		src = strings.TrimSpace(segs[0].inner)
	}
	if src == "" {
		return successful(c), nil
	}
	e, err := Parse(src, contextNames(c))
	if err != nil {
		return false, err
	}
	if !e.UsesStatusFunc() && !successful(c) {
		return false, nil
	}
	v, err := e.Eval(c)
	if err != nil {
		return false, err
	}
	return Truthy(v), nil
}

func successful(c *Context) bool { return !c.Status.Failed && !c.Status.Cancelled }

// Check parses every ${{ }} of s, allowing any named-value, and returns the
// syntax errors with offsets into s. An unclosed ${{ is an error.
func Check(s string) []*SyntaxError {
	segs, err := scan(s)
	var out []*SyntaxError
	for _, sg := range segs {
		if _, se := parse(sg.inner, nil); se != nil {
			se.Offset += sg.innerOff
			out = append(out, se)
		}
	}
	var ue *unclosedError
	if errors.As(err, &ue) {
		out = append(out, &SyntaxError{Offset: ue.off, Stage: "parsing", Message: ue.Error()})
	}
	return out
}
