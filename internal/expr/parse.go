package expr

import (
	"fmt"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

type node interface{}

type (
	literal struct{ v any }
	// contextAccess reads a named value (github, env, ...).
	contextAccess struct{ name string }
	// index is a[b], a.b, a.* or a[*].
	index struct {
		obj, idx node // idx is nil for *
	}
	not    struct{ x node }
	binary struct {
		op   tokKind
		l, r node
	}
	logical struct {
		and  bool
		args []node
	}
	grouping struct{ x node }
	call     struct {
		name string // lower case
		args []node
	}
)

// Expr is a parsed expression.
type Expr struct {
	src  string
	root node // nil for the empty expression
}

// String returns the expression's source.
func (e *Expr) String() string { return e.src }

type funcInfo struct{ min, max int }

var funcs = map[string]funcInfo{
	"contains":   {2, 2},
	"startswith": {2, 2},
	"endswith":   {2, 2},
	"format":     {1, 255},
	"join":       {1, 2},
	"tojson":     {1, 1},
	"fromjson":   {1, 1},
	"hashfiles":  {1, 255},
	"case":       {3, 255},
	"success":    {0, 0},
	"always":     {0, 0},
	"cancelled":  {0, 0},
	"failure":    {0, 0},
}

var statusFuncs = map[string]bool{"success": true, "always": true, "cancelled": true, "failure": true}

// Parse parses src (without ${{ }}). names are the allowed named-values,
// compared without case; nil allows any name. Errors are *SyntaxError
// wrapped with kind errs.Invalid.
func Parse(src string, names []string) (*Expr, error) {
	e, se := parse(src, names)
	if se != nil {
		return nil, errs.Wrap("", errs.Invalid, se)
	}
	return e, nil
}

func parse(src string, names []string) (out *Expr, serr *SyntaxError) {
	toks, lerr := lex(src)
	if lerr != nil {
		return nil, lerr.(*SyntaxError)
	}
	p := &parser{src: src, toks: toks}
	if names != nil {
		p.names = map[string]bool{}
		for _, n := range names {
			p.names[strings.ToLower(n)] = true
		}
	}
	e := &Expr{src: src}
	if p.peek().kind == tEOF {
		return e, nil
	}
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*SyntaxError)
			if !ok {
				panic(r)
			}
			out, serr = nil, se
		}
	}()
	e.root = p.expression()
	if p.peek().kind != tEOF {
		p.fail("Unexpected symbol", p.peek())
	}
	return e, nil
}

// parser is a recursive-descent parser mirroring GitHub's, including where
// it counts depth, so that the depth limit trips on the same expressions.
type parser struct {
	src   string
	toks  []token
	pos   int
	depth int
	names map[string]bool
}

func (p *parser) fail(desc string, t token) {
	panic(syntaxError("parsing", p.src, t.off, "%s: '%s'", desc, t.text()))
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) prev() token { return p.toks[max(p.pos-1, 0)] }

func (p *parser) check(k tokKind) bool { return p.toks[p.pos].kind == k && k != tEOF }

func (p *parser) match(ks ...tokKind) bool {
	for _, k := range ks {
		if p.check(k) {
			p.pos++
			return true
		}
	}
	return false
}

func (p *parser) consume(k tokKind) {
	if !p.match(k) {
		p.fail("Unexpected symbol", p.peek())
	}
}

func (p *parser) incr() {
	p.depth++
	if p.depth > maxDepth {
		p.fail(fmt.Sprintf("Exceeded max expression depth %d", maxDepth), p.peek())
	}
}

func (p *parser) expression() node {
	p.incr()
	defer func() { p.depth-- }()
	return p.or()
}

func (p *parser) or() node {
	x := p.and()
	if !p.check(tOr) {
		return x
	}
	p.incr()
	defer func() { p.depth-- }()
	l := &logical{args: []node{x}}
	for p.match(tOr) {
		l.args = append(l.args, p.and())
	}
	return l
}

func (p *parser) and() node {
	x := p.equality()
	if !p.check(tAnd) {
		return x
	}
	p.incr()
	defer func() { p.depth-- }()
	l := &logical{and: true, args: []node{x}}
	for p.match(tAnd) {
		l.args = append(l.args, p.equality())
	}
	return l
}

func (p *parser) equality() node {
	x := p.comparison()
	for p.match(tNe, tEq) {
		op := p.prev().kind
		x = &binary{op: op, l: x, r: p.comparison()}
	}
	return x
}

func (p *parser) comparison() node {
	x := p.unary()
	for p.match(tGt, tGe, tLt, tLe) {
		op := p.prev().kind
		x = &binary{op: op, l: x, r: p.unary()}
	}
	return x
}

func (p *parser) unary() node {
	if p.match(tBang) {
		p.incr()
		x := p.unary()
		p.depth--
		return &not{x}
	}
	return p.postfix()
}

func (p *parser) postfix() node {
	x := p.call()
	switch x.(type) {
	case *grouping, *call, *contextAccess:
	default:
		return x
	}
	n := 0
	defer func() { p.depth -= n }()
	for {
		switch {
		case p.match(tLBracket):
			var idx node
			if !p.match(tStar) {
				idx = p.expression()
			}
			p.consume(tRBracket)
			p.incr()
			n++
			x = &index{obj: x, idx: idx}
		case p.match(tDot):
			p.incr()
			n++
			switch {
			case p.match(tIdent):
				x = &index{obj: x, idx: &literal{p.prev().lexeme}}
			case p.match(tStar):
				x = &index{obj: x}
			default:
				p.fail("Unexpected symbol", p.peek())
			}
		default:
			return x
		}
	}
}

func (p *parser) call() node {
	if !p.check(tIdent) {
		return p.primary()
	}
	id := p.peek()
	p.pos++
	if !p.match(tLParen) {
		if p.names != nil && !p.names[strings.ToLower(id.lexeme)] {
			p.fail("Unrecognized named-value", id)
		}
		return &contextAccess{name: id.lexeme}
	}
	c := &call{name: strings.ToLower(id.lexeme)}
	for !p.match(tRParen) {
		c.args = append(c.args, p.expression())
		if !p.check(tRParen) {
			p.consume(tComma)
		}
	}
	f, ok := funcs[c.name]
	switch {
	case !ok:
		p.fail("Unrecognized function", id)
	case len(c.args) < f.min:
		p.fail("Too few parameters supplied", id)
	case len(c.args) > f.max:
		p.fail("Too many parameters supplied", id)
	case c.name == "case" && len(c.args)%2 == 0:
		p.fail("Even number of parameters supplied, requires an odd number of parameters", id)
	}
	return c
}

func (p *parser) primary() node {
	switch {
	case p.match(tFalse):
		return &literal{false}
	case p.match(tTrue):
		return &literal{true}
	case p.match(tNull):
		return &literal{nil}
	case p.match(tNumber), p.match(tString):
		return &literal{p.prev().value}
	case p.match(tLParen):
		x := p.expression()
		if p.peek().kind == tEOF {
			p.fail("Unexpected end of expression", p.prev())
		}
		p.consume(tRParen)
		return &grouping{x}
	case p.peek().kind == tEOF:
		p.fail("Unexpected end of expression", p.prev())
	}
	p.fail("Unexpected symbol", p.peek())
	return nil
}

// UsesStatusFunc reports whether success(), failure(), cancelled() or
// always() appears in the expression.
func (e *Expr) UsesStatusFunc() bool {
	var walk func(n node) bool
	walk = func(n node) bool {
		switch x := n.(type) {
		case *call:
			if statusFuncs[x.name] {
				return true
			}
			for _, a := range x.args {
				if walk(a) {
					return true
				}
			}
		case *index:
			return walk(x.obj) || x.idx != nil && walk(x.idx)
		case *not:
			return walk(x.x)
		case *binary:
			return walk(x.l) || walk(x.r)
		case *logical:
			for _, a := range x.args {
				if walk(a) {
					return true
				}
			}
		case *grouping:
			return walk(x.x)
		}
		return false
	}
	return e != nil && e.root != nil && walk(e.root)
}
