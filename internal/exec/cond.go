package exec

import (
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/expr"
)

// contextNames are the named values every expression may use; contexts not
// available in a place are present as null.
var contextNames = []string{"github", "env", "vars", "job", "jobs", "steps", "runner", "secrets", "strategy", "matrix", "needs", "inputs"}

// newContext returns an expression context with every standard name present.
func newContext(values map[string]any) *expr.Context {
	v := make(map[string]any, len(contextNames))
	for _, n := range contextNames {
		v[n] = nil
	}
	for k, x := range values {
		v[k] = x
	}
	return &expr.Context{Values: v}
}

// stripBraces removes one ${{ }} around a whole condition.
func stripBraces(cond string) string {
	s := strings.TrimSpace(cond)
	if strings.HasPrefix(s, "${{") && strings.HasSuffix(s, "}}") && strings.Count(s, "${{") == 1 {
		return strings.TrimSpace(s[3 : len(s)-2])
	}
	return s
}

// evalIf evaluates an if: condition. ok says whether the implicit success()
// holds (no earlier failure, not cancelled, all needs succeeded): it decides
// conditions that use no status function, as GitHub does.
func evalIf(cond string, c *expr.Context, ok bool) (bool, error) {
	src := stripBraces(cond)
	if src == "" {
		return ok, nil
	}
	e, err := expr.Parse(src, contextNames)
	if err != nil {
		return false, errs.Wrap("if: "+cond, errs.Invalid, err)
	}
	if !e.UsesStatusFunc() && !ok {
		return false, nil
	}
	v, err := e.Eval(c)
	if err != nil {
		return false, errs.Wrap("if: "+cond, errs.Invalid, err)
	}
	return expr.Truthy(v), nil
}

// interp evaluates a string that may hold ${{ }} into a string.
func interp(s string, c *expr.Context) (string, error) {
	if !strings.Contains(s, "${{") {
		return s, nil
	}
	v, err := expr.Interpolate(s, c)
	if err != nil {
		return "", err
	}
	return expr.ToString(v), nil
}

// interpValue evaluates a string that may hold ${{ }} into a value.
func interpValue(s string, c *expr.Context) (any, error) {
	if !strings.Contains(s, "${{") {
		return s, nil
	}
	return expr.Interpolate(s, c)
}

// boolValue reads a boolean setting written as true/false or as an
// expression; a plain string counts as true only when it says "true".
func boolValue(s string, c *expr.Context) bool {
	v, err := interpValue(s, c)
	if err != nil {
		return false
	}
	if str, ok := v.(string); ok {
		return strings.EqualFold(strings.TrimSpace(str), "true")
	}
	return expr.Truthy(v)
}
