package expr

import (
	"github.com/conveyor-ci/conveyor/internal/testenv"

	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

type compatCase struct {
	Expr     string          `json:"expr"`
	Contexts json.RawMessage `json:"contexts"`
	Result   *struct {
		Kind  string          `json:"kind"`
		Value json.RawMessage `json:"value"`
	} `json:"result"`
	Err *struct {
		Kind  string `json:"kind"`
		Value string `json:"value"`
	} `json:"err"`
	Options struct {
		Skip []string `json:"skip"`
	} `json:"options"`
}

// compatDir is where the shared conformance material lives.
func compatDir() string {
	if d := os.Getenv("CONVEYOR_COMPAT_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "compat")
}

// TestConformance runs actions/languageservices' expression cases.
// Cases skipped for "typescript" only are run anyway: the skip is about
// that implementation's line-relative positions, not GitHub's semantics.
func TestConformance(t *testing.T) {
	dir := filepath.Join(compatDir(), "expressions")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		t.Skip("expression conformance cases not found in " + dir + " (set CONVEYOR_COMPAT_DIR)")
	}
	passed, total := 0, 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var suites map[string][]compatCase
		if err := json.Unmarshal(data, &suites); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		names := make([]string, 0, len(suites))
		for n := range suites {
			names = append(names, n)
		}
		sort.Strings(names)
		base := strings.TrimSuffix(filepath.Base(f), ".json")
		for _, n := range names {
			for i, c := range suites[n] {
				if skipped(c.Options.Skip) {
					t.Logf("%s/%s/%d skipped by the case's options: %v", base, n, i, c.Options.Skip)
					continue
				}
				total++
				ok := t.Run(fmt.Sprintf("%s/%s/%d", base, n, i), func(t *testing.T) { runCompat(t, c) })
				if ok {
					passed++
				}
			}
		}
	}
	msg := fmt.Sprintf("expressions conformance: %d/%d passed", passed, total)
	t.Log(msg)
	testenv.Report(t, msg)
}

// skipped honours skips that name Go or every implementation.
func skipped(skip []string) bool {
	for _, s := range skip {
		switch strings.ToLower(s) {
		case "go", "golang", "all":
			return true
		}
	}
	return false
}

func runCompat(t *testing.T, c compatCase) {
	t.Helper()
	ctx := &Context{Values: map[string]any{}}
	var names []string
	if len(c.Contexts) > 0 && string(c.Contexts) != "null" {
		v, err := decodeJSON(string(c.Contexts))
		if err != nil {
			t.Fatalf("contexts: %v", err)
		}
		obj := v.(*Object)
		for _, k := range obj.Keys() {
			val, _ := obj.Get(k)
			ctx.Values[k] = val
			names = append(names, k)
		}
	}
	if names == nil {
		names = []string{}
	}
	e, err := Parse(c.Expr, names)
	var v any
	if err == nil {
		v, err = e.Eval(ctx)
	}
	if c.Err != nil {
		if err == nil {
			t.Fatalf("%q: want %s error %q, got %s %s", c.Expr, c.Err.Kind, c.Err.Value, KindOf(v), ToJSON(v))
		}
		var se *SyntaxError
		stage := "evaluation"
		if errors.As(err, &se) {
			stage = se.Stage
		}
		if stage != c.Err.Kind || !strings.Contains(err.Error(), c.Err.Value) {
			t.Fatalf("%q: want %s error %q, got %s error %q", c.Expr, c.Err.Kind, c.Err.Value, stage, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("%q: unexpected error: %v", c.Expr, err)
	}
	if KindOf(v) != c.Result.Kind {
		t.Fatalf("%q: kind %s (%s), want %s (%s)", c.Expr, KindOf(v), ToJSON(v), c.Result.Kind, c.Result.Value)
	}
	want, err := decodeJSON(string(c.Result.Value))
	if err != nil {
		t.Fatalf("result: %v", err)
	}
	if !sameJSON(v, want) {
		t.Fatalf("%q: got %s, want %s", c.Expr, ToJSON(v), ToJSON(want))
	}
}

// sameJSON compares values structurally; numbers as floats (NaN equals NaN,
// as both stringify to null).
func sameJSON(a, b any) bool {
	a, b = norm(a), norm(b)
	if kindOf(a) != kindOf(b) {
		return false
	}
	switch x := a.(type) {
	case float64:
		y := b.(float64)
		if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) {
			return ToJSON(x) == ToJSON(y)
		}
		return x == y
	case []any, filtered:
		xa, ya := asSlice(x), asSlice(b)
		if len(xa) != len(ya) {
			return false
		}
		for i := range xa {
			if !sameJSON(xa[i], ya[i]) {
				return false
			}
		}
		return true
	case map[string]any, *Object:
		xk, xg := objectEntries(x)
		yk, yg := objectEntries(b)
		if len(xk) != len(yk) {
			return false
		}
		for i := range xk {
			if xk[i] != yk[i] || !sameJSON(xg(xk[i]), yg(yk[i])) {
				return false
			}
		}
		return true
	}
	return a == b
}
