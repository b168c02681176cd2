package expr

import (
	"strconv"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func (ev *evaluator) call(x *call) (any, error) {
	args := make([]any, len(x.args))
	for i, a := range x.args {
		v, err := ev.eval(a)
		if err != nil {
			return nil, err
		}
		args[i] = norm(v)
	}
	st := ev.c.Status
	switch x.name {
	case "success":
		return !st.Failed && !st.Cancelled, nil
	case "failure":
		return st.Failed, nil
	case "cancelled":
		return st.Cancelled, nil
	case "always":
		return true, nil
	case "contains":
		return contains(args[0], args[1]), nil
	case "startswith", "endswith":
		if !primitive(args[0]) || !primitive(args[1]) {
			return false, nil
		}
		s, p := upper(ToString(args[0])), upper(ToString(args[1]))
		if x.name == "startswith" {
			return strings.HasPrefix(s, p), nil
		}
		return strings.HasSuffix(s, p), nil
	case "format":
		return format(ToString(args[0]), args[1:])
	case "join":
		return join(args), nil
	case "tojson":
		return ToJSON(args[0]), nil
	case "fromjson":
		s := ToString(args[0])
		if strings.TrimFunc(s, isJSSpace) == "" {
			return nil, errs.E(op, errs.Invalid, "fromJSON: empty input")
		}
		v, err := decodeJSON(s)
		if err != nil {
			return nil, errs.E(op, errs.Invalid, "Error parsing JSON when evaluating fromJson: %v", err)
		}
		return v, nil
	case "hashfiles":
		if ev.c.HashFiles == nil {
			return nil, errs.E(op, errs.Invalid, "hashFiles is not available here")
		}
		pats := make([]string, len(args))
		for i, a := range args {
			pats[i] = ToString(a)
		}
		h, err := ev.c.HashFiles(pats)
		if err != nil {
			return nil, errs.Wrap(op, errs.KindOf(err), err)
		}
		return h, nil
	case "case":
		for i := 0; i+1 < len(args); i += 2 {
			b, ok := args[i].(bool)
			if !ok {
				return nil, errs.E(op, errs.Invalid, "case predicate must evaluate to a boolean value")
			}
			if b {
				return args[i+1], nil
			}
		}
		return args[len(args)-1], nil
	}
	return nil, errs.E(op, errs.Invalid, "unrecognized function %q", x.name)
}

func primitive(v any) bool {
	switch kindOf(v) {
	case kArray, kObject:
		return false
	}
	return true
}

func contains(hay, needle any) bool {
	if primitive(hay) {
		if !primitive(needle) {
			return false
		}
		return strings.Contains(strings.ToLower(ToString(hay)), strings.ToLower(ToString(needle)))
	}
	if kindOf(hay) == kArray {
		for _, v := range asSlice(hay) {
			if equals(needle, v) {
				return true
			}
		}
	}
	return false
}

func join(args []any) string {
	if primitive(args[0]) {
		return ToString(args[0])
	}
	if kindOf(args[0]) != kArray {
		return ""
	}
	sep := ","
	if len(args) > 1 && primitive(args[1]) {
		sep = ToString(args[1])
	}
	a := asSlice(args[0])
	parts := make([]string, len(a))
	for i, v := range a {
		parts[i] = ToString(v)
	}
	return strings.Join(parts, sep)
}

// format replaces {N} with the N-th argument; {{ and }} are literal braces.
func format(fs string, args []any) (any, error) {
	invalid := func() error {
		return errs.E(op, errs.Invalid, "The following format string is invalid: %s", fs)
	}
	var b strings.Builder
	i := 0
	for i < len(fs) {
		lb := indexFrom(fs, '{', i)
		rb := indexFrom(fs, '}', i)
		switch {
		case lb >= 0 && (rb < 0 || rb > lb):
			if lb+1 < len(fs) && fs[lb+1] == '{' {
				b.WriteString(fs[i : lb+1])
				i = lb + 2
				continue
			}
			if rb > lb+1 {
				j := lb + 1
				for j < len(fs) && fs[j] >= '0' && fs[j] <= '9' {
					j++
				}
				if j > lb+1 && j == rb {
					n, err := strconv.Atoi(fs[lb+1 : j])
					if err != nil || n >= len(args) {
						return nil, errs.E(op, errs.Invalid, "The following format string references more arguments than were supplied: %s", fs)
					}
					b.WriteString(fs[i:lb])
					b.WriteString(ToString(args[n]))
					i = rb + 1
					continue
				}
			}
			return nil, invalid()
		case rb >= 0:
			if rb+1 < len(fs) && fs[rb+1] == '}' {
				b.WriteString(fs[i : rb+1])
				i = rb + 2
				continue
			}
			return nil, invalid()
		default:
			b.WriteString(fs[i:])
			i = len(fs)
		}
	}
	return b.String(), nil
}

func indexFrom(s string, c byte, from int) int {
	j := strings.IndexByte(s[from:], c)
	if j < 0 {
		return -1
	}
	return from + j
}
