package expr

import (
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	"", "1 == 1", "a.b.c", "a['b'][0]", "a.*.b", "a[*]", "!a && b || c", "(1 < 2) >= true",
	"format('{0}{{}}', 1)", "fromJSON('{\"a\":[1,2]}').a[1]", "toJSON(a)", "join(a.*, ', ')",
	"contains(a, 'x')", "startsWith('abc', 'A')", "0xff + 1e3", "-Infinity", "NaN != NaN",
	"'it''s'", "case(true, 1, 2)", "success() || failure()", "1 <", "'foo", "😊", "..a/b",
	"fromjson(tojson(fromjson('[[[[]]]]')))", "format('{0', 1)", "a.b.c.d.e[0][1][2]",
}

func fuzzContext() *Context {
	obj := NewObject()
	obj.Set("b", []any{1.0, "two", map[string]any{"b": true}})
	return &Context{Values: map[string]any{
		"a": map[string]any{"b": "x", "c": []any{1.0, 2.0, []any{}}, "d": nil},
		"b": obj.vals[0],
		"c": "str",
	}}
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		e, err := Parse(src, nil)
		if err == nil && e == nil {
			t.Fatal("nil expression without error")
		}
		Check("x ${{ " + src + " }} y")
		Check(src)
	})
}

func FuzzEval(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c := fuzzContext()
		c.Values["c"] = "str" // no cyclic values: toJSON of a cycle is the caller's problem
		v, err := Eval(src, c)
		if err == nil {
			_ = ToJSON(v)
			_ = ToString(v)
			_ = KindOf(v)
		}
		_, _ = EvalCondition(src, c)
		_, _ = Interpolate("a ${{ "+src+" }} b", c)
		if strings.Contains(src, "${{") {
			_, _ = Interpolate(src, c)
		}
	})
}
