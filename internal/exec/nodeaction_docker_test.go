package exec

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

// A local JavaScript action in a container that has node: main gets its
// inputs as INPUT_* and writes outputs and state; post runs at the end of
// the job with that state; pre is not run, as GitHub does not run it for
// local actions (it says so in a warning).
func TestNodeActionDocker(t *testing.T) {
	image := testenv.Image(t) // Debian with nodejs
	testenv.DockerAvailable(t)
	bin := buildRunner(t)
	d, err := docker.New(docker.Options{RunnerBinary: bin})
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	writeFiles(t, repo, map[string]string{
		".github/actions/js/action.yml": `name: js
inputs:
  who:
    description: who
    default: nobody
outputs:
  greeting:
    description: the greeting
runs:
  using: node20
  pre: pre.js
  main: main.js
  post: post.js
`,
		".github/actions/js/pre.js": `console.log("PRE RAN")`,
		".github/actions/js/main.js": `const fs = require("fs");
const who = process.env["INPUT_WHO"];
console.log("main says hello " + who + " from node " + process.version);
fs.appendFileSync(process.env.GITHUB_OUTPUT, "greeting=hello-" + who + "\n");
fs.appendFileSync(process.env.GITHUB_STATE, "saved=" + who + "-state\n");
`,
		".github/actions/js/post.js": `console.log("post sees " + process.env["STATE_saved"])`,
	})
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - id: js
        uses: ./.github/actions/js
        with:
          who: Ada
      - run: echo "got ${{ steps.js.outputs.greeting }}"
`
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, rec := run(t, ctx, src, Options{Backend: d, Platforms: map[string]string{"x": image}, RepoDir: repo})
	if resultOf(res, "j") != Success {
		t.Fatalf("results: %s\n%s", resultsString(res), rec.dump())
	}
	var lines []string
	for _, ev := range rec.events() {
		if ev.Job == "j" && (ev.Type == Output || ev.Type == Annotation) {
			lines = append(lines, ev.Level+":"+ev.Text)
		}
	}
	out := strings.Join(lines, "\n")
	for _, want := range []string{"main says hello Ada from node v", "got hello-Ada", "post sees Ada-state",
		"warning:`pre` execution is not supported for local action from './.github/actions/js'"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "PRE RAN") {
		t.Errorf("the pre script of a local action ran:\n%s", out)
	}
	if i, j := strings.Index(out, "got hello-Ada"), strings.Index(out, "post sees"); i < 0 || j < i {
		t.Errorf("post did not run after the job's steps:\n%s", out)
	}
}
