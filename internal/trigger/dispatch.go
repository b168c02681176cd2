package trigger

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// DispatchInputs checks the inputs given to a workflow_dispatch against the
// trigger's declarations and returns every declared input with its value:
// the given one, else (also when given empty) the default, else the type's zero value (false for a
// boolean, 0 for a number, "" otherwise, as GitHub's inputs context has
// them). Booleans come back as "true" or "false".
//
// Errors are errs.Invalid and name the input: an undeclared input (GitHub
// answers 422 "Unexpected inputs provided"), a required input without a
// value, a boolean that is not true/false, a number that does not parse, a
// choice not among its options. t nil means the workflow has no
// workflow_dispatch trigger.
func DispatchInputs(t *workflow.Trigger, given map[string]string) (map[string]string, error) {
	const op = "trigger.DispatchInputs"
	if t == nil || t.Event != "workflow_dispatch" {
		return nil, errs.E(op, errs.Invalid, "workflow does not have 'workflow_dispatch' trigger")
	}
	var unknown []string
	for name := range given {
		if !slices.ContainsFunc(t.Inputs, func(in *workflow.Input) bool { return in.Name == name }) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, errs.E(op, errs.Invalid, "unexpected inputs provided: %s", strings.Join(unknown, ", "))
	}
	out := make(map[string]string, len(t.Inputs))
	for _, in := range t.Inputs {
		v := given[in.Name]
		if v == "" && in.HasDefault {
			v = in.Default
		}
		if v == "" {
			if in.Required {
				return nil, errs.E(op, errs.Invalid, "input %s is required", in.Name)
			}
			out[in.Name] = zeroInput(in.Type)
			continue
		}
		v, err := checkInput(in, v)
		if err != nil {
			return nil, errs.Wrap(op, errs.Invalid, err)
		}
		out[in.Name] = v
	}
	return out, nil
}

func zeroInput(typ string) string {
	switch typ {
	case "boolean":
		return "false"
	case "number":
		return "0"
	}
	return ""
}

// checkInput validates v against the input's type and returns it normalised.
func checkInput(in *workflow.Input, v string) (string, error) {
	switch in.Type {
	case "boolean":
		switch {
		case strings.EqualFold(v, "true"):
			return "true", nil
		case strings.EqualFold(v, "false"):
			return "false", nil
		}
		return "", errs.E("", errs.Invalid, "input %s must be true or false, not %q", in.Name, v)
	case "number":
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return "", errs.E("", errs.Invalid, "input %s must be a number, not %q", in.Name, v)
		}
		return strings.TrimSpace(v), nil
	case "choice":
		if !slices.Contains(in.Options, v) {
			return "", errs.E("", errs.Invalid, "input %s must be one of %s, not %q", in.Name, bracketed(in.Options), v)
		}
	}
	// string, environment (a name the run resolves later) and untyped.
	return v, nil
}
