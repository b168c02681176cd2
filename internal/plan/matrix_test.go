package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/expr"
)

func yamlNode(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return doc.Content[0]
}

// exprEval evaluates ${{ }} with the real expression engine over values.
func exprEval(values map[string]any) Evaluator {
	return func(s string) (any, error) {
		if !strings.Contains(s, "${{") {
			return s, nil
		}
		return expr.Interpolate(s, &expr.Context{Values: values})
	}
}

// canon turns combos into JSON lines "keys=a,b {values}" for comparison.
func canon(cs []Combo) []string {
	var out []string
	for _, c := range cs {
		b, _ := json.Marshal(c.Values)
		out = append(out, strings.Join(c.Keys, ",")+" "+string(b))
	}
	return out
}

func TestExpandMatrix(t *testing.T) {
	ctx := map[string]any{
		"github": map[string]any{"sha": "abc", "event_name": "push"},
		"needs":  map[string]any{"setup": map[string]any{"outputs": map[string]any{"targets": `["x","y"]`, "extra": `{"arch":["arm","amd"]}`, "inc": `[{"os":"bsd"}]`}}},
		"inputs": map[string]any{"key": "flavor"},
	}
	tests := []struct {
		name    string
		src     string
		eval    Evaluator
		want    []string
		wantErr string
	}{
		{
			name: "cartesian product in key order, first key outermost",
			src:  "os: [linux, mac]\nnode: [1, 2, 3]",
			want: []string{
				`os,node {"node":1,"os":"linux"}`, `os,node {"node":2,"os":"linux"}`, `os,node {"node":3,"os":"linux"}`,
				`os,node {"node":1,"os":"mac"}`, `os,node {"node":2,"os":"mac"}`, `os,node {"node":3,"os":"mac"}`,
			},
		},
		{
			name: "scalar types kept",
			src:  "b: [true, false]\nf: [1.5]\ns: ['1']\nn: [null]",
			want: []string{`b,f,s,n {"b":true,"f":1.5,"n":null,"s":"1"}`, `b,f,s,n {"b":false,"f":1.5,"n":null,"s":"1"}`},
		},
		{
			name: "exclude is a partial match",
			src:  "os: [linux, mac, win]\nnode: [1, 2]\nexclude:\n  - os: win\n  - os: mac\n    node: 1",
			want: []string{`os,node {"node":1,"os":"linux"}`, `os,node {"node":2,"os":"linux"}`, `os,node {"node":2,"os":"mac"}`},
		},
		{
			name: "exclude of a value that does not exist removes nothing",
			src:  "os: [linux]\nexclude:\n  - os: bsd\n  - arch: arm",
			want: []string{`os {"os":"linux"}`},
		},
		{
			name: "exclude matches objects partially",
			src:  "cfg:\n  - {os: linux, v: 1}\n  - {os: mac, v: 1}\nexclude:\n  - cfg: {os: mac}",
			want: []string{`cfg {"cfg":{"os":"linux","v":1}}`},
		},
		{
			// The example of the GitHub docs ("Expanding or adding matrix
			// configurations").
			name: "GitHub docs include example",
			src: `fruit: [apple, pear]
animal: [cat, dog]
include:
  - color: green
  - color: pink
    animal: cat
  - fruit: apple
    shape: circle
  - fruit: banana
  - fruit: banana
    animal: cat`,
			want: []string{
				`fruit,animal,color,shape {"animal":"cat","color":"pink","fruit":"apple","shape":"circle"}`,
				`fruit,animal,color,shape {"animal":"dog","color":"green","fruit":"apple","shape":"circle"}`,
				`fruit,animal,color {"animal":"cat","color":"pink","fruit":"pear"}`,
				`fruit,animal,color {"animal":"dog","color":"green","fruit":"pear"}`,
				`fruit {"fruit":"banana"}`,
				`fruit,animal {"animal":"cat","fruit":"banana"}`,
			},
		},
		{
			name: "include never overwrites an original value: a conflicting entry is a new combination",
			src:  "os: [linux]\nnode: [1]\ninclude:\n  - os: linux\n    node: 2",
			want: []string{`os,node {"node":1,"os":"linux"}`, `os,node {"node":2,"os":"linux"}`},
		},
		{
			name: "include adds keys to matching combinations only",
			src:  "os: [linux, win]\nnode: [1, 2]\ninclude:\n  - os: win\n    ext: .exe",
			want: []string{
				`os,node {"node":1,"os":"linux"}`, `os,node {"node":2,"os":"linux"}`,
				`os,node,ext {"ext":".exe","node":1,"os":"win"}`, `os,node,ext {"ext":".exe","node":2,"os":"win"}`,
			},
		},
		{
			name: "include is not matched against combinations it created",
			src:  "os: [linux]\ninclude:\n  - os: bsd\n  - os: bsd\n    x: 1",
			want: []string{`os {"os":"linux"}`, `os {"os":"bsd"}`, `os,x {"os":"bsd","x":1}`},
		},
		{
			name: "include after exclude can re-add an excluded combination",
			src:  "os: [linux, win]\nexclude:\n  - os: win\ninclude:\n  - os: win\n    extra: y",
			want: []string{`os {"os":"linux"}`, `os,extra {"extra":"y","os":"win"}`},
		},
		{
			name: "include-only matrix",
			src:  "include:\n  - site: prod\n    url: a\n  - site: dev",
			want: []string{`site,url {"site":"prod","url":"a"}`, `site {"site":"dev"}`},
		},
		{
			name:    "empty vector",
			src:     "os: []\nnode: [1]",
			wantErr: `matrix vector "os" does not contain any values`,
		},
		{
			name:    "vector that is not a list",
			src:     "os: linux",
			wantErr: `"os" must be a list`,
		},
		{
			name:    "include that is not a list",
			src:     "os: [a]\ninclude: {x: 1}",
			wantErr: `"include" must be a list`,
		},
		{
			name:    "expression refused by Literal",
			src:     "os: ${{ fromJSON('[1]') }}",
			eval:    Literal,
			wantErr: "expression needs a runtime context",
		},
		{
			name: "expression vector",
			src:  "target: ${{ fromJSON(needs.setup.outputs.targets) }}",
			want: []string{`target {"target":"x"}`, `target {"target":"y"}`},
		},
		{
			name: "expression sequence items are spliced, others kept",
			src:  "v: [a, '${{ fromJSON(needs.setup.outputs.targets) }}', '${{ github.sha }}', b]",
			want: []string{`v {"v":"a"}`, `v {"v":"x"}`, `v {"v":"y"}`, `v {"v":"abc"}`, `v {"v":"b"}`},
		},
		{
			name: "expression key",
			src:  "${{ inputs.key }}: [vanilla, chocolate]",
			want: []string{`flavor {"flavor":"vanilla"}`, `flavor {"flavor":"chocolate"}`},
		},
		{
			name: "insert merges an object's keys",
			src:  "os: [linux]\n${{ insert }}: ${{ fromJSON(needs.setup.outputs.extra) }}",
			want: []string{`os,arch {"arch":"arm","os":"linux"}`, `os,arch {"arch":"amd","os":"linux"}`},
		},
		{
			name: "expression include list",
			src:  "os: [linux]\ninclude: ${{ fromJSON(needs.setup.outputs.inc) }}",
			want: []string{`os {"os":"linux"}`, `os {"os":"bsd"}`},
		},
		{
			name: "whole matrix from an expression",
			src:  `${{ fromJSON('{"a":[1,2],"include":[{"a":1,"b":"x"}]}') }}`,
			want: []string{`a,b {"a":1,"b":"x"}`, `a {"a":2}`},
		},
		{
			name:    "whole matrix expression that is not an object",
			src:     `${{ fromJSON('[1,2]') }}`,
			wantErr: "must yield an object",
		},
		{
			name:    "matrix that is a list",
			src:     "- a\n- b",
			wantErr: "must be a mapping or an expression",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := tc.eval
			if ev == nil {
				ev = exprEval(ctx)
			}
			cs, err := ExpandMatrix(yamlNode(t, tc.src), ev)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q (combos %v)", err, tc.wantErr, canon(cs))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := canon(cs); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("combos:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestExpandMatrixNil(t *testing.T) {
	cs, err := ExpandMatrix(nil, Literal)
	if cs != nil || err != nil {
		t.Errorf("ExpandMatrix(nil) = %v, %v", cs, err)
	}
}

func TestComboSuffix(t *testing.T) {
	tests := []struct {
		c    Combo
		want string
	}{
		{Combo{}, ""},
		{Combo{Keys: []string{"os", "node"}, Values: map[string]any{"os": "linux", "node": float64(20)}}, " (linux, 20)"},
		{Combo{Keys: []string{"f", "b", "n"}, Values: map[string]any{"f": 1.5, "b": true, "n": nil}}, " (1.5, true, )"},
		{Combo{Keys: []string{"o"}, Values: map[string]any{"o": map[string]any{"a": float64(1)}}}, ` ({"a":1})`},
	}
	for _, tc := range tests {
		if got := tc.c.Suffix(); got != tc.want {
			t.Errorf("Suffix(%v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}

func TestHasExpressions(t *testing.T) {
	tests := map[string]bool{
		"os: [a, b]":                         false,
		"os: [a, '${{ x }}']":                true,
		"${{ insert }}: {}":                  true,
		"include:\n  - a: ${{ github.sha }}": true,
		"os: ['$ {{ not }}']":                false,
	}
	for src, want := range tests {
		if got := HasExpressions(yamlNode(t, src)); got != want {
			t.Errorf("HasExpressions(%q) = %v, want %v", src, got, want)
		}
	}
	if HasExpressions(nil) {
		t.Error("HasExpressions(nil) = true")
	}
}

// A matrix of more than MaxMatrixJobs jobs is refused without being
// built: its size is the product of its vectors, counted first.
func TestExpandMatrixLimit(t *testing.T) {
	ten := "[0,1,2,3,4,5,6,7,8,9]"
	var dims []string
	for i := range 24 {
		dims = append(dims, fmt.Sprintf("%c%d: %s", 'a'+i%12, i/12, ten))
	}
	for _, tc := range []struct {
		name, src string
		jobs      int64 // 0: no error
		before    bool
	}{
		{"100,000 legs", strings.Join(dims[:5], "\n"), 100000, false},
		{"10^12 legs", strings.Join(dims[:12], "\n"), 1_000_000_000_000, false},
		{"10^12 legs with exclude", strings.Join(dims[:12], "\n") + "\nexclude: [{a0: 1}]", 1_000_000_000_000, true},
		{"10^24 legs", strings.Join(dims, "\n"), math.MaxInt64, false},
		{"256", "x: " + ten + "\ny: [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25]\nexclude: [{y: 25}, {y: 24}, {y: 23}, {y: 22}]", 0, false},
		{"300 excluded to 250", "x: " + ten + "\ny: [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29]\nexclude: [{y: 0}, {y: 1}, {y: 2}, {y: 3}, {y: 4}]", 0, false},
		{"include past 256", "x: [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]\ny: [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]\ninclude: [{x: 99}]", 257, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			cs, err := ExpandMatrix(yamlNode(t, tc.src), Literal)
			runtime.ReadMemStats(&after)
			if tc.jobs == 0 {
				if err != nil || len(cs) > MaxMatrixJobs {
					t.Fatalf("%d combos, %v", len(cs), err)
				}
				return
			}
			var big *MatrixTooLarge
			if !errors.As(err, &big) || big.Jobs != tc.jobs || big.BeforeExclude != tc.before || !errs.Is(err, errs.Invalid) {
				t.Fatalf("err = %v (%+v), want %d jobs (before exclude %v)", err, big, tc.jobs, tc.before)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
				t.Errorf("refusing the matrix allocated %d bytes: it was built to be counted", n)
			}
		})
	}
}
