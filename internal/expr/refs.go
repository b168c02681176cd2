package expr

import "strings"

// References lists the property paths the expression reads, lower case and
// dot-separated from the context name ("github.event.issue.title"); an
// index that is not a string literal (a number, an expression, *) shows
// as "*". Used by lint to see which data reaches a script.
func (e *Expr) References() []string {
	var out []string
	var walk func(n node)
	walk = func(n node) {
		switch x := n.(type) {
		case *contextAccess:
			out = append(out, strings.ToLower(x.name))
		case *index:
			if p, ok := refPath(x); ok {
				out = append(out, p)
				walkIndexArgs(x, walk)
				return
			}
			walk(x.obj)
			if x.idx != nil {
				walk(x.idx)
			}
		case *not:
			walk(x.x)
		case *binary:
			walk(x.l)
			walk(x.r)
		case *logical:
			for _, a := range x.args {
				walk(a)
			}
		case *grouping:
			walk(x.x)
		case *call:
			for _, a := range x.args {
				walk(a)
			}
		}
	}
	if e != nil && e.root != nil {
		walk(e.root)
	}
	return out
}

// refPath is the path of an index chain rooted at a context.
func refPath(n node) (string, bool) {
	switch x := n.(type) {
	case *contextAccess:
		return strings.ToLower(x.name), true
	case *index:
		base, ok := refPath(x.obj)
		if !ok {
			return "", false
		}
		seg := "*"
		if l, ok := x.idx.(*literal); ok {
			if s, ok := l.v.(string); ok {
				seg = strings.ToLower(s)
			}
		}
		return base + "." + seg, true
	}
	return "", false
}

// walkIndexArgs walks the non-literal indexes of a chain (a[b.c] reads b.c).
func walkIndexArgs(n *index, walk func(node)) {
	for cur := node(n); ; {
		ix, ok := cur.(*index)
		if !ok {
			return
		}
		switch ix.idx.(type) {
		case nil, *literal:
		default:
			walk(ix.idx)
		}
		cur = ix.obj
	}
}
