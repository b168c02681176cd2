package trigger

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

var testBody = map[string]any{
	"ref":     "refs/heads/master",
	"deleted": false,
	"size":    float64(2),
	"commits": []any{
		map[string]any{"id": "1", "message": "fix: deploy the thing"},
		map[string]any{"id": "2", "message": "docs"},
	},
	"repository": map[string]any{"full_name": "o/r", "private": true},
}

var testHeaders = map[string]string{"X-Github-Event": "push", "content-type": "application/json"}

func TestFilterEval(t *testing.T) {
	tests := []struct {
		src  string
		want bool
		err  string // non-empty: Eval fails with this in the message
	}{
		{`body.ref in ["refs/heads/master"]`, true, ""},
		{`body.ref in ["refs/heads/main"]`, false, ""},
		{`headers["X-Github-Event"] == "push"`, true, ""},
		{`headers["x-github-event"] == "push"`, true, ""},
		{`headers["Content-Type"] == "application/json"`, true, ""},
		{`"X-Hub-Signature" in headers`, false, ""},
		{`body.commits.exists(c, c.message.contains("deploy"))`, true, ""},
		{`body.commits.all(c, c.message.contains("deploy"))`, false, ""},
		{`body.ref.startsWith("refs/heads/") && !body.deleted`, true, ""},
		{`body.ref.matches("^refs/heads/(master|main)$")`, true, ""},
		{`body.size == 2 && body.size > 1`, true, ""},
		{`body.repository.private`, true, ""},
		{`has(body.pull_request)`, false, ""},
		{`body.pull_request.number == 1`, false, "no such key: pull_request"},
		{`body.ref`, false, "gave string, not a bool"},
		{`body.commits[5].id == "x"`, false, "index out of bounds"},
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			f, err := CompileFilter(tt.src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := f.Eval(testHeaders, testBody)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Eval = %v, %v; want error %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Eval = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestFilterNilInputs(t *testing.T) {
	f, err := CompileFilter(`size(headers) == 0 && size(body) == 0`)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := f.Eval(nil, nil); !ok || err != nil {
		t.Fatalf("Eval(nil, nil) = %v, %v", ok, err)
	}
}

func TestCompileFilterErrors(t *testing.T) {
	tests := []struct {
		src       string
		line, col int
		msg       string
	}{
		{`body.ref ==`, 1, 12, "Syntax error"},
		{`bdy.ref == "x"`, 1, 1, "undeclared reference to 'bdy'"},
		{"body.ref == \"x\" &&\n  nope", 2, 3, "undeclared reference to 'nope'"},
		{`"é" == x`, 1, 8, "undeclared reference to 'x'"},
		{`body.ref + 1`, 1, 1, "must be a bool"},
		{`"refs/heads/main"`, 1, 1, "of type string"},
		{`headers["a"]`, 1, 1, "of type string"},
		{`1 == "a"`, 1, 3, "no matching overload"},
		{``, 1, 1, "empty"},
		{"  \n ", 1, 1, "empty"},
		{strings.Repeat("a", MaxFilterLength+1), 1, 1, "limit is"},
		{strings.Repeat("(", 300) + "true" + strings.Repeat(")", 300), 1, 0, ""},
		{"\xff", 1, 1, "UTF-8"},
	}
	for _, tt := range tests {
		name := tt.src
		if len(name) > 30 {
			name = name[:30]
		}
		t.Run(name, func(t *testing.T) {
			_, err := CompileFilter(tt.src)
			if !errs.Is(err, errs.Invalid) {
				t.Fatalf("error %v, want invalid", err)
			}
			var fe *FilterError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T %v is no *FilterError", err, err)
			}
			if tt.col != 0 && (fe.Line != tt.line || fe.Col != tt.col) {
				t.Errorf("position %d:%d, want %d:%d (%v)", fe.Line, fe.Col, tt.line, tt.col, err)
			}
			if !strings.Contains(fe.Msg, tt.msg) {
				t.Errorf("message %q, want it to contain %q", fe.Msg, tt.msg)
			}
			if want := byteOffset(tt.src, fe.Line, fe.Col); fe.Offset != want || fe.Offset > len(tt.src) {
				t.Errorf("offset %d, want %d", fe.Offset, want)
			}
		})
	}
}

func TestByteOffset(t *testing.T) {
	src := "ab\nçd\n"
	for _, tt := range []struct{ line, col, want int }{{1, 1, 0}, {1, 3, 2}, {2, 1, 3}, {2, 2, 5}, {2, 9, 6}, {3, 1, 7}, {9, 1, 7}} {
		if got := byteOffset(src, tt.line, tt.col); got != tt.want {
			t.Errorf("byteOffset(%d:%d) = %d, want %d", tt.line, tt.col, got, tt.want)
		}
	}
}

// A comprehension of 10^6 steps must stop at the cost limit, quickly.
func TestFilterCostLimit(t *testing.T) {
	ten := "[1,2,3,4,5,6,7,8,9,10]"
	src := "true"
	for i := range 6 {
		src = fmt.Sprintf("%s.all(x%d, %s)", ten, i, src)
	}
	f, err := CompileFilter(src)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Eval(nil, nil)
	if err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Fatalf("Eval error %v, want the cost limit", err)
	}
	// The same nesting over a small list stays within the limit.
	small, err := CompileFilter(strings.ReplaceAll(src, ten, "[1,2]"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := small.Eval(nil, nil); !ok || err != nil {
		t.Fatalf("small Eval = %v, %v", ok, err)
	}
}

func TestCache(t *testing.T) {
	c := NewCache(2)
	a1, err := c.Compile("true")
	if err != nil {
		t.Fatal(err)
	}
	if a2, _ := c.Compile("true"); a2 != a1 {
		t.Errorf("second Compile did not reuse the filter")
	}
	if _, err := c.Compile("nope"); err == nil {
		t.Errorf("bad filter compiled")
	}
	if _, err := c.Compile("nope"); !errs.Is(err, errs.Invalid) {
		t.Errorf("cached error lost its kind: %v", err)
	}
	c.Compile("false") // evicts "true", the least recently used
	if c.Len() != 2 {
		t.Errorf("Len = %d, want 2", c.Len())
	}
	if a3, _ := c.Compile("true"); a3 == a1 {
		t.Errorf("evicted filter still cached")
	}

	// Concurrent compiles and evals (run with -race).
	c = NewCache(4)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			src := fmt.Sprintf(`body.size == %d.0`, i%6)
			f, err := c.Compile(src)
			if err != nil {
				t.Error(err)
				return
			}
			if got, err := f.Eval(testHeaders, testBody); err != nil || got != (i%6 == 2) {
				t.Errorf("%s = %v, %v", src, got, err)
			}
		})
	}
	wg.Wait()
	if c.Len() > 4 {
		t.Errorf("Len = %d, more than the bound", c.Len())
	}
}

// Real GitHub push payloads through a filter, as the server will see them.
func TestFilterCompatPushPayloads(t *testing.T) {
	dir := testenv.CompatDir(t, filepath.Join("webhooks", "github", "push"))
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		t.Fatalf("no payloads in %s", dir)
	}
	f, err := CompileFilter(`headers["X-GitHub-Event"] == "push" && body.ref.startsWith("refs/") &&
		body.repository.full_name.contains("/") &&
		(body.commits.exists(c, c.message != "") || size(body.commits) == 0)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.Unmarshal(data, &body); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		ok, err := f.Eval(map[string]string{"X-GitHub-Event": "push"}, body)
		if err != nil || !ok {
			t.Errorf("%s: Eval = %v, %v", filepath.Base(file), ok, err)
		}
		ref, _ := body["ref"].(string)
		g, err := CompileFilter(fmt.Sprintf("body.ref in [%q]", ref))
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := g.Eval(nil, body); !ok || err != nil {
			t.Errorf("%s: ref filter = %v, %v", filepath.Base(file), ok, err)
		}
	}
}
