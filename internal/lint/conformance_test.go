package lint

import (
	"github.com/conveyor-ci/conveyor/internal/testenv"

	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/conveyor-ci/conveyor/internal/workflow"
)

func compatDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CONVEYOR_COMPAT_DIR")
	if dir == "" {
		dir = "../../../shared/compat"
	}
	if _, err := os.Stat(filepath.Join(dir, "workflow-parser")); err != nil {
		t.Skipf("compat material not found in %s (set CONVEYOR_COMPAT_DIR)", dir)
	}
	return dir
}

type compatCase struct {
	workflow   string
	files      map[string]string // reusable workflows by uses
	wantErrors []string          // nil when the case must be accepted
	reject     bool
	limits     workflow.Limits
	policy     string
	skip       []string // implementations whose tests skip the case ("Go", "C#", "TypeScript")
}

var sepRE = regexp.MustCompile(`(?m)^---[ \t]*\r?$`)

func readCase(t *testing.T, path string) compatCase {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	parts := sepRE.Split(string(data), -1)
	if len(parts) < 3 {
		t.Fatalf("%s: %d sections", path, len(parts))
	}
	c := compatCase{workflow: strings.TrimPrefix(parts[1], "\n"), files: map[string]string{}}
	inSkip := false
	for _, l := range strings.Split(parts[0], "\n") {
		if item, ok := strings.CutPrefix(strings.TrimSpace(l), "- "); ok && inSkip {
			c.skip = append(c.skip, strings.TrimSpace(item))
			continue
		}
		k, v, _ := strings.Cut(l, ":")
		inSkip = strings.TrimSpace(k) == "skip"
		n, _ := strconv.Atoi(strings.TrimSpace(v))
		switch strings.TrimSpace(k) {
		case "max-depth":
			c.limits.MaxDepth = n
		case "max-file-size":
			c.limits.MaxFileSize = n
		case "max-result-size":
			c.limits.MaxResultSize = n
		case "max-job-limit":
			c.limits.MaxJobs = n
		case "max-nested-reusable-workflows-depth":
			c.limits.MaxNestedCalls = n
		case "permissions-policy":
			switch strings.TrimSpace(v) {
			case "LimitedRead":
				c.policy = PolicyLimitedRead
			case "Write":
				c.policy = PolicyWrite
			}
		}
	}
	extra := parts[2 : len(parts)-1]
	for i := 0; i+1 < len(extra); i += 2 {
		c.files[strings.TrimSpace(extra[i])] = strings.TrimPrefix(extra[i+1], "\n")
	}
	var exp struct {
		Errors []struct{ Message string } `json:"errors"`
	}
	if err := json.Unmarshal([]byte(parts[len(parts)-1]), &exp); err != nil {
		t.Fatalf("%s: expected JSON: %v", path, err)
	}
	if exp.Errors != nil {
		c.reject = true
		for _, e := range exp.Errors {
			c.wantErrors = append(c.wantErrors, e.Message)
		}
	}
	return c
}

var lineColRE = regexp.MustCompile(`\(Line: (\d+), Col: (\d+)\)`)

func TestWorkflowParserConformance(t *testing.T) {
	dir := filepath.Join(compatDir(t), "workflow-parser")
	files, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	skipped := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(dir, "skipped-tests.txt")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			skipped[l] = true
		}
	}
	var agree, total, linesOK, linesTotal int
	var differ []string
	for _, f := range files {
		name := filepath.Base(f)
		c := readCase(t, f)
		total++
		t.Run(strings.TrimSuffix(name, ".yml"), func(t *testing.T) {
			// A case GitHub's C# (runtime) parser skips holds the
			// language service's expectation: its strict schema.
			limits := c.limits
			limits.Strict = slices.Contains(c.skip, "C#")
			opts := Options{Resolve: func(uses string) ([]byte, bool) {
				s, ok := c.files[uses]
				return []byte(s), ok
			}, Limits: limits, PermissionsPolicy: c.policy}
			_, probs := BytesWith([]byte(c.workflow), ".github/workflows/"+name, opts)
			ok := (len(probs) > 0) == c.reject
			lines := map[int]bool{}
			for _, p := range probs {
				lines[p.Pos.Line] = true
			}
			for _, m := range c.wantErrors {
				if sm := lineColRE.FindStringSubmatch(m); sm != nil {
					linesTotal++
					l, _ := strconv.Atoi(sm[1])
					if lines[l] {
						linesOK++
					} else {
						ok = false
						t.Logf("missing line %d: %s", l, m)
					}
				}
			}
			if (len(probs) > 0) == c.reject {
				agree++
			}
			if !ok {
				differ = append(differ, name)
				mark := ""
				// GitHub's C# parser runs workflows: a case its tests skip
				// holds another implementation's expectation.
				excused := skipped[name] || slices.Contains(c.skip, "C#")
				switch {
				case skipped[name]:
					mark = " (skipped by GitHub's implementations)"
				case excused:
					mark = " (skipped by GitHub's C# parser)"
				}
				t.Logf("%s%s: want reject=%v %q; got %v", name, mark, c.reject, c.wantErrors, probs)
				// Every case agrees today: a new disagreement is a regression.
				if !excused {
					t.Fail()
				}
			}
		})
	}
	msg := fmt.Sprintf("workflow-parser conformance: %d/%d agree (accept/reject), %d/%d error lines match", agree, total, linesOK, linesTotal)
	t.Log(msg)
	testenv.Report(t, msg)
	if len(differ) > 0 {
		fmt.Printf("differ: %s\n", strings.Join(differ, " "))
	}
}
