package expr

import (
	"math"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Context holds what an expression can see.
type Context struct {
	Values    map[string]any                          // contexts by name: github, env, vars, job, jobs, steps, runner, secrets, strategy, matrix, needs, inputs (lookup case-insensitive)
	Status    Status                                  // for success()/failure()/cancelled()
	HashFiles func(patterns []string) (string, error) // nil: hashFiles is an error
}

// Status is the state of the job so far, for the status functions.
type Status struct{ Failed, Cancelled bool }

const op = "expr"

// Eval evaluates the expression. The result is nil, bool, float64, string,
// []any, map[string]any or *Object.
func (e *Expr) Eval(c *Context) (any, error) {
	if c == nil {
		c = &Context{}
	}
	if e == nil || e.root == nil {
		return nil, nil
	}
	v, err := (&evaluator{c: c}).eval(e.root)
	if err != nil {
		return nil, err
	}
	return export(v), nil
}

// export turns internal values (filtered arrays) into public ones.
func export(v any) any {
	if f, ok := v.(filtered); ok {
		return []any(f)
	}
	return norm(v)
}

// Eval parses src allowing the names of c.Values and evaluates it.
func Eval(src string, c *Context) (any, error) {
	e, err := Parse(src, contextNames(c))
	if err != nil {
		return nil, err
	}
	return e.Eval(c)
}

func contextNames(c *Context) []string {
	names := []string{}
	if c != nil {
		for k := range c.Values {
			names = append(names, k)
		}
	}
	return names
}

type evaluator struct{ c *Context }

func (ev *evaluator) eval(n node) (any, error) {
	switch x := n.(type) {
	case *literal:
		return x.v, nil
	case *grouping:
		return ev.eval(x.x)
	case *not:
		v, err := ev.eval(x.x)
		if err != nil {
			return nil, err
		}
		return !Truthy(v), nil
	case *logical:
		var v any
		for _, a := range x.args {
			var err error
			if v, err = ev.eval(a); err != nil {
				return nil, err
			}
			if Truthy(v) != x.and {
				break
			}
		}
		return v, nil
	case *binary:
		l, err := ev.eval(x.l)
		if err != nil {
			return nil, err
		}
		r, err := ev.eval(x.r)
		if err != nil {
			return nil, err
		}
		switch x.op {
		case tEq:
			return equals(l, r), nil
		case tNe:
			return !equals(l, r), nil
		}
		c, ok := compare(l, r)
		switch x.op {
		case tLt:
			return ok && c < 0, nil
		case tLe:
			return equals(l, r) || ok && c < 0, nil
		case tGt:
			return ok && c > 0, nil
		case tGe:
			return equals(l, r) || ok && c > 0, nil
		}
	case *contextAccess:
		return ev.context(x.name), nil
	case *index:
		return ev.index(x)
	case *call:
		return ev.call(x)
	}
	return nil, errs.E(op, errs.Invalid, "unknown expression node %T", n)
}

func (ev *evaluator) context(name string) any {
	if v, ok := ev.c.Values[name]; ok {
		return norm(v)
	}
	for k, v := range ev.c.Values {
		if strings.EqualFold(k, name) {
			return norm(v)
		}
	}
	return nil
}

// key is an evaluated index: a string for objects, an integer for arrays.
type key struct {
	star   bool
	str    string
	hasStr bool
	num    int
	hasNum bool
}

func makeKey(v any) key {
	var k key
	v = norm(v)
	switch kindOf(v) {
	case kNull, kBool, kNumber, kString:
		k.str, k.hasStr = ToString(v), true
	}
	if f := toNumber(v); !math.IsNaN(f) && !math.IsInf(f, 0) && f >= 0 {
		f = math.Floor(f)
		if f <= math.MaxInt32 {
			k.num, k.hasNum = int(f), true
		} else {
			k.num, k.hasNum = math.MaxInt32, true // past the end of any array
		}
	}
	return k
}

func (ev *evaluator) index(x *index) (any, error) {
	k := key{star: x.idx == nil}
	if !k.star {
		iv, err := ev.eval(x.idx)
		if err != nil {
			return nil, err
		}
		k = makeKey(iv)
	}
	obj, err := ev.eval(x.obj)
	if err != nil {
		return nil, err
	}
	obj = norm(obj)
	if f, ok := obj.(filtered); ok {
		out := filtered{}
		for _, item := range f {
			item = norm(item)
			switch kindOf(item) {
			case kObject:
				if k.star {
					out = append(out, objectValues(item)...)
				} else if k.hasStr {
					if v, ok := lookup(item, k.str); ok {
						out = append(out, v)
					}
				}
			case kArray:
				a := asSlice(item)
				if k.star {
					out = append(out, a...)
				} else if k.hasNum && k.num < len(a) {
					out = append(out, a[k.num])
				}
			}
		}
		return out, nil
	}
	switch kindOf(obj) {
	case kArray:
		a := asSlice(obj)
		if k.star {
			return append(filtered{}, a...), nil
		}
		if k.hasNum && k.num < len(a) {
			return norm(a[k.num]), nil
		}
		return nil, nil
	case kObject:
		if k.star {
			return filtered(objectValues(obj)), nil
		}
		if k.hasStr {
			if v, ok := lookup(obj, k.str); ok {
				return norm(v), nil
			}
		}
		return nil, nil
	}
	if k.star {
		return filtered{}, nil
	}
	return nil, nil
}
