package trigger

import (
	"fmt"
	"net/textproto"
	"strings"
	"sync"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/lru"
)

// Bounds of a CEL filter. The server evaluates filters for every event it
// receives, from payloads others write, so both compile and eval are bounded.
const (
	// MaxFilterLength is the longest filter source, in code points.
	MaxFilterLength = 10000
	// FilterCostLimit is cel-go's runtime cost budget per evaluation (about
	// one unit per operation; a million comprehension steps fail).
	FilterCostLimit = 1_000_000
	// maxFilterNodes bounds the checked expression, macro expansions included.
	maxFilterNodes = 10000
	// maxFilterDepth bounds parser recursion.
	maxFilterDepth = 100
)

// Filter is a compiled CEL filter: Conveyor's on.<event>.filter and the
// serverless-cd dialect's triggers filter. It sees two variables:
//
//	headers  map(string, string)  the webhook request headers
//	body     dyn                  the decoded JSON payload
//
// and the standard CEL library only. A Filter is safe for concurrent use.
type Filter struct {
	src string
	prg cel.Program
}

// String is the filter source.
func (f *Filter) String() string { return f.src }

// FilterError is a filter that does not compile, with the position of the
// first problem within the filter source.
type FilterError struct {
	// Line and Col are 1-based; Col counts code points, as editors do.
	Line, Col int
	// Offset is the byte offset of Line:Col in the source.
	Offset int
	Msg    string
}

func (e *FilterError) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg) }

// env is the one CEL environment of filters; building it is expensive and
// it is immutable once built.
var env = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable("body", cel.DynType),
		cel.ParserExpressionSizeLimit(MaxFilterLength),
		cel.ParserRecursionLimit(maxFilterDepth),
		cel.ExpressionNodeLimit(maxFilterNodes),
	)
})

// CompileFilter parses and type-checks a filter. It must be of type bool
// or dyn (body.draft, a JSON field, is dyn: its value must then be a bool
// when evaluated). Errors are errs.Invalid wrapping a *FilterError.
func CompileFilter(src string) (*Filter, error) {
	const op = "trigger.CompileFilter"
	fail := func(line, col int, format string, args ...any) error {
		return errs.Wrap(op, errs.Invalid, &FilterError{Line: line, Col: col, Offset: byteOffset(src, line, col), Msg: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(src) == "" {
		return nil, fail(1, 1, "the filter is empty")
	}
	if !utf8.ValidString(src) {
		return nil, fail(1, 1, "the filter is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(src); n > MaxFilterLength {
		return nil, fail(1, 1, "the filter is %d characters long; the limit is %d", n, MaxFilterLength)
	}
	e, err := env()
	if err != nil {
		return nil, errs.Wrap(op, errs.Other, err)
	}
	ast, iss := e.Compile(src)
	if iss.Err() != nil {
		line, col, msg := firstIssue(iss)
		return nil, fail(line, col, "%s", msg)
	}
	switch t := ast.OutputType(); {
	case t.IsExactType(cel.BoolType), t.IsExactType(cel.DynType):
	default:
		return nil, fail(1, 1, "the filter is of type %s; it must be a bool", cel.FormatCELType(t))
	}
	prg, err := e.Program(ast,
		cel.CostLimit(FilterCostLimit),
		cel.EvalOptions(cel.OptOptimize),
	)
	if err != nil {
		return nil, fail(1, 1, "%v", err)
	}
	return &Filter{src: src, prg: prg}, nil
}

// firstIssue is the first of iss's errors that has a position (1-based
// line and column), or its first error at 1:1 when none has one: CEL's
// macro errors (a non-name as the variable of exists) come with column
// -1 and point at no place.
func firstIssue(iss *cel.Issues) (line, col int, msg string) {
	es := iss.Errors()
	for _, e := range es {
		if l := e.Location; l != nil && l.Line() >= 1 && l.Column() >= 0 {
			return l.Line(), l.Column() + 1, e.Message
		}
	}
	if len(es) > 0 {
		return 1, 1, es[0].Message
	}
	return 1, 1, iss.Err().Error()
}

// byteOffset is the byte offset of a 1-based line and code-point column.
func byteOffset(src string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(src[off:], '\n')
		if i < 0 {
			return len(src)
		}
		off += i + 1
	}
	for c := 1; c < col && off < len(src) && src[off] != '\n'; c++ {
		_, n := utf8.DecodeRuneInString(src[off:])
		off += n
	}
	return off
}

// Eval runs the filter over a request's headers and decoded JSON body (as
// encoding/json decodes into map[string]any, without UseNumber). Header
// names are looked up as given, canonical (X-Github-Event) and lower case
// (x-github-event): each header appears under all three keys. An error
// (no such key, a non-bool result, the cost limit) means the filter did not
// say true; callers treat it as false and report it.
func (f *Filter) Eval(headers map[string]string, body map[string]any) (bool, error) {
	h := make(map[string]string, 3*len(headers))
	for k, v := range headers {
		h[k] = v
		h[textproto.CanonicalMIMEHeaderKey(k)] = v
		h[strings.ToLower(k)] = v
	}
	if body == nil {
		body = map[string]any{}
	}
	out, _, err := f.prg.Eval(map[string]any{"headers": h, "body": body})
	if err != nil {
		return false, errs.Wrap("", errs.Invalid, err)
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, errs.E("", errs.Invalid, "the filter gave %s, not a bool", out.Type())
	}
	return bool(b), nil
}

// Cache holds compiled filters by source, least recently used out first,
// because the server evaluates the same few filters for every event. It
// remembers compile errors too. The zero Cache is not usable: use NewCache.
// A Cache is safe for concurrent use.
type Cache struct {
	filters *lru.Cache[string, compiled]
}

type compiled struct {
	f   *Filter
	err error
}

// NewCache returns a cache of at most n filters (at least 1).
func NewCache(n int) *Cache {
	return &Cache{filters: lru.New[string, compiled](n)}
}

// Compile returns the compiled filter for src, compiling it on a miss.
func (c *Cache) Compile(src string) (*Filter, error) {
	e := c.filters.Get(src, func() compiled {
		f, err := CompileFilter(src)
		return compiled{f: f, err: err}
	})
	return e.f, e.err
}

// Len is the number of filters held.
func (c *Cache) Len() int { return c.filters.Len() }
