package expr

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

func testContext() *Context {
	return &Context{Values: map[string]any{
		"github": map[string]any{"ref": "refs/heads/main", "event": map[string]any{"number": 7.0}},
		"matrix": map[string]any{"os": "linux", "list": []any{"a", "b"}},
		"env":    map[string]any{"Name": "World"},
		"steps": map[string]any{
			"one": map[string]any{"outputs": map[string]any{"v": "1"}},
			"two": map[string]any{"outputs": map[string]any{"v": "2"}},
		},
	}}
}

func TestEval(t *testing.T) {
	tests := []struct {
		src  string
		want any
	}{
		{"", nil},
		{"null", nil},
		{"0xff", 255.0},
		{"1e3", 1000.0},
		{"-2.5", -2.5},
		{"'it''s'", "it's"},
		{"GitHub.REF", "refs/heads/main"},
		{"github['ref']", "refs/heads/main"},
		{"github.event.number", 7.0},
		{"github.nosuch.deeper", nil},
		{"matrix.list[1]", "b"},
		{"matrix.list['1']", "b"},
		{"matrix.list[5]", nil},
		{"env.name", "World"},
		{"'a' && 'b'", "b"},
		{"'' || 'fallback'", "fallback"},
		{"0 && unknown.x", 0.0}, // names are not restricted in this table
		{"!''", true},
		{"'ABC' == 'abc'", true},
		{"'1' == 1", true},
		{"null == 0", true},
		{"true == 1", true},
		{"NaN == NaN", false},
		{"'a' < 'B'", true},
		{"'x' < 1", false},
		{"1 <= '1'", true},
		{"contains('Hello', 'ELL')", true},
		{"contains(matrix.list, 'A')", true},
		{"startsWith('Hello', 'he')", true},
		{"endsWith('Hello', 'LO')", true},
		{"format('{0} {{x}} {1}', 'a', 2)", "a {x} 2"},
		{"join(matrix.list)", "a,b"},
		{"join(matrix.list, ' | ')", "a | b"},
		{"join(steps.*.outputs.v, '+')", "1+2"},
		{"toJSON(matrix.list)", "[\n  \"a\",\n  \"b\"\n]"},
		{"fromJSON('{\"b\":1,\"a\":[true]}').A[0]", true},
		{"toJSON(fromJSON('{\"z\":1,\"a\":{\"y\":null}}'))", "{\n  \"z\": 1,\n  \"a\": {\n    \"y\": null\n  }\n}"},
		{"format('{0}', 0.1)", "0.1"},
		{"format('{0}', 1e21)", "1e+21"},
		{"success()", true},
		{"always()", true},
		{"failure() || cancelled()", false},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			e, err := Parse(tt.src, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Eval(testContext())
			if err != nil {
				t.Fatal(err)
			}
			if ToJSON(got) != ToJSON(tt.want) || KindOf(got) != KindOf(tt.want) {
				t.Errorf("got %s %s, want %s %s", KindOf(got), ToJSON(got), KindOf(tt.want), ToJSON(tt.want))
			}
		})
	}
}

func TestEvalErrors(t *testing.T) {
	tests := []struct {
		src, msg string
		stage    string // "" for an evaluation error
	}{
		{"1 <", "Unexpected end of expression: '<'. Located at position 3 within expression: 1 <", "parsing"},
		{"x.foo", "Unrecognized named-value: 'x'. Located at position 1 within expression: x.foo", "parsing"},
		{"'open", "Unexpected symbol: ''open'", "lexing"},
		{"1 = 2", "Unexpected symbol: '='", "lexing"},
		{"nofn()", "Unrecognized function: 'nofn'", "parsing"},
		{"contains(1)", "Too few parameters supplied: 'contains'", "parsing"},
		{"tojson(1, 2)", "Too many parameters supplied: 'tojson'", "parsing"},
		{strings.Repeat("!", 51) + "true", "Exceeded max expression depth 50", "parsing"},
		{strings.Repeat("a", maxLength+1), "Exceeded max expression length", "lexing"},
		{"format('{1}', 1)", "The following format string references more arguments than were supplied: {1}", ""},
		{"format('{x}', 1)", "The following format string is invalid: {x}", ""},
		{"format('}', 1)", "The following format string is invalid: }", ""},
		{"fromJSON('{')", "Error parsing JSON", ""},
		{"fromJSON('  ')", "empty input", ""},
		{"hashFiles('*.go')", "hashFiles", ""},
		{"case(1, 2, 3)", "case predicate", ""},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			_, err := Eval(tt.src, testContext())
			if err == nil {
				t.Fatal("no error")
			}
			if !errs.Is(err, errs.Invalid) {
				t.Errorf("kind %v, want invalid", errs.KindOf(err))
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want it to contain %q", err, tt.msg)
			}
			var se *SyntaxError
			if errors.As(err, &se) != (tt.stage != "") || se != nil && se.Stage != tt.stage {
				t.Errorf("syntax error %+v, want stage %q", se, tt.stage)
			}
		})
	}
}

func TestToString(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{nil, ""}, {true, "true"}, {false, "false"}, {0.0, "0"}, {math.Copysign(0, -1), "0"},
		{1.5, "1.5"}, {-123456.789, "-123456.789"}, {0.84551240822557006, "0.84551240822557"},
		{1e21, "1e+21"}, {1e-7, "1e-7"}, {100.0, "100"}, {math.NaN(), "NaN"}, {math.Inf(-1), "-Infinity"},
		{3, "3"}, {"s", "s"}, {[]any{}, "Array"}, {map[string]any{}, "Object"}, {NewObject(), "Object"},
	}
	for _, tt := range tests {
		if got := ToString(tt.v); got != tt.want {
			t.Errorf("ToString(%#v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestTruthyAndKind(t *testing.T) {
	tests := []struct {
		v      any
		truthy bool
		kind   string
	}{
		{nil, false, "Null"}, {false, false, "Boolean"}, {true, true, "Boolean"},
		{0.0, false, "Number"}, {math.NaN(), false, "Number"}, {-1.0, true, "Number"},
		{"", false, "String"}, {"0", true, "String"}, {[]any{}, true, "Array"},
		{map[string]any{}, true, "Object"}, {NewObject(), true, "Object"},
	}
	for _, tt := range tests {
		if Truthy(tt.v) != tt.truthy || KindOf(tt.v) != tt.kind {
			t.Errorf("%#v: truthy %v kind %s, want %v %s", tt.v, Truthy(tt.v), KindOf(tt.v), tt.truthy, tt.kind)
		}
	}
}

func TestJSNumber(t *testing.T) {
	tests := []struct {
		s    string
		want float64
	}{
		{"", 0}, {"  12 ", 12}, {"0x1F", 31}, {"0o17", 15}, {"0b101", 5}, {".5", 0.5}, {"5.", 5},
		{"-1e2", -100}, {"+Infinity", math.Inf(1)}, {"1e999", math.Inf(1)},
	}
	for _, tt := range tests {
		if got := jsNumber(tt.s); got != tt.want {
			t.Errorf("jsNumber(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
	for _, s := range []string{"abc", "-0x1", "1_0", "Inf", "1e", "0x", "."} {
		if got := jsNumber(s); !math.IsNaN(got) {
			t.Errorf("jsNumber(%q) = %v, want NaN", s, got)
		}
	}
}

func TestObjectOrderAndCase(t *testing.T) {
	o := NewObject()
	if err := o.UnmarshalJSON([]byte(`{"b": 1, "A": {"y": 2, "x": 3}, "c": [1]}`)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(o.Keys(), ","); got != "b,A,c" {
		t.Errorf("keys %s", got)
	}
	if v, ok := o.Get("a"); !ok || KindOf(v) != "Object" {
		t.Errorf("case-insensitive Get: %v %v", v, ok)
	}
	if got := CompactJSON(o); got != `{"b":1,"A":{"y":2,"x":3},"c":[1]}` {
		t.Errorf("CompactJSON %s", got)
	}
	got, err := Eval("a.* == a.*", &Context{Values: map[string]any{"a": o}})
	if err != nil || got != false {
		t.Errorf("filtered arrays are distinct: %v %v", got, err)
	}
	got, err = Eval("a == a", &Context{Values: map[string]any{"a": o}})
	if err != nil || got != true {
		t.Errorf("an object equals itself: %v %v", got, err)
	}
}

func TestInterpolate(t *testing.T) {
	c := testContext()
	tests := []struct {
		s    string
		want any
	}{
		{"plain", "plain"},
		{"${{ matrix.list }}", []any{"a", "b"}},
		{"  ${{ github.event.number }}\n", 7.0},
		{"Hello ${{ env.name }}!", "Hello World!"},
		{"${{ 1 }}${{ 2 }}", "12"},
		{"${{ format('}}{0}', 'x') }}-", "}x-"},
		{"${{ matrix.list }} x", "Array x"},
		{"${{ null }}!", "!"},
	}
	for _, tt := range tests {
		got, err := Interpolate(tt.s, c)
		if err != nil {
			t.Errorf("%q: %v", tt.s, err)
			continue
		}
		if ToJSON(got) != ToJSON(tt.want) {
			t.Errorf("%q: got %s, want %s", tt.s, ToJSON(got), ToJSON(tt.want))
		}
	}
	if _, err := Interpolate("a ${{ 1", c); !errs.Is(err, errs.Invalid) {
		t.Errorf("unclosed: %v", err)
	}
}

func TestEvalCondition(t *testing.T) {
	ok := &Context{Values: map[string]any{"env": map[string]any{"x": "1"}}}
	failed := &Context{Values: ok.Values, Status: Status{Failed: true}}
	cancelled := &Context{Values: ok.Values, Status: Status{Cancelled: true}}
	tests := []struct {
		cond string
		c    *Context
		want bool
	}{
		{"", ok, true},
		{"", failed, false},
		{"env.x == 1", ok, true},
		{"${{ env.x == 1 }}", ok, true},
		{"env.x == 1", failed, false},
		{"always()", failed, true},
		{"failure()", failed, true},
		{"failure()", ok, false},
		{"cancelled()", cancelled, true},
		{"success()", cancelled, false},
		{"${{ false }}", ok, false},
		{"0", ok, false},
		{"'false'", ok, true}, // a non-empty string is true
		{"always() && env.x == '2'", failed, false},
	}
	for _, tt := range tests {
		got, err := EvalCondition(tt.cond, tt.c)
		if err != nil {
			t.Errorf("%q: %v", tt.cond, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%q with %+v: %v, want %v", tt.cond, tt.c.Status, got, tt.want)
		}
	}
	if _, err := EvalCondition("nosuch.x", ok); !errs.Is(err, errs.Invalid) {
		t.Errorf("unknown context: %v", err)
	}
}

func TestUsesStatusFunc(t *testing.T) {
	for src, want := range map[string]bool{
		"": false, "a == 1": false, "always()": true, "!Failure()": true,
		"x[success()]": true, "format('{0}', cancelled())": true, "'success()'": false,
	} {
		e, err := Parse(src, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.UsesStatusFunc(); got != want {
			t.Errorf("%q: %v, want %v", src, got, want)
		}
	}
}

func TestCheck(t *testing.T) {
	s := "ok ${{ github.ref }} bad ${{ 1 < }} ${{ 'x' }} open ${{ a"
	got := Check(s)
	if len(got) != 2 {
		t.Fatalf("got %d errors: %+v", len(got), got)
	}
	if want := strings.Index(s, "<"); got[0].Offset != want || !strings.Contains(got[0].Message, "Unexpected end of expression") {
		t.Errorf("first error %+v, want offset %d", got[0], want)
	}
	if want := strings.LastIndex(s, "${{"); got[1].Offset != want || !strings.Contains(got[1].Message, "Unclosed") {
		t.Errorf("second error %+v, want offset %d", got[1], want)
	}
	if errs := Check("no expressions, ${{ 'a }}' }}"); len(errs) != 0 {
		t.Errorf("unexpected errors %+v", errs)
	}
}

func TestHashFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.sum", "sum")
	write("a/go.sum", "asum")
	write("a/b/go.sum", "bsum")
	write("a/readme.md", "doc")
	want := func(contents ...string) string {
		total := sha256.New()
		for _, c := range contents {
			h := sha256.Sum256([]byte(c))
			total.Write(h[:])
		}
		return hex.EncodeToString(total.Sum(nil))
	}
	tests := []struct {
		pats []string
		want string
	}{
		{[]string{"**/go.sum"}, want("bsum", "asum", "sum")}, // sorted: a/b/go.sum, a/go.sum, go.sum
		{[]string{"go.sum"}, want("sum")},
		{[]string{"**/go.sum", "!a/b/**"}, want("asum", "sum")},
		{[]string{"a"}, want("bsum", "asum", "doc")}, // a directory includes its files
		{[]string{"nothing*"}, ""},
		{[]string{"!**", "go.sum"}, want("sum")},
	}
	for _, tt := range tests {
		got, err := HashFiles(dir, tt.pats)
		if err != nil {
			t.Errorf("%v: %v", tt.pats, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%v: %s, want %s", tt.pats, got, tt.want)
		}
	}
	got, err := Eval("hashFiles('**/*.md')", &Context{HashFiles: HashFilesIn(dir)})
	if err != nil || got != want("doc") {
		t.Errorf("hashFiles via Eval: %v %v", got, err)
	}
}
