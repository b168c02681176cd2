package exec

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/conveyor-ci/conveyor/internal/actions"
	"github.com/conveyor-ci/conveyor/internal/backend/docker"
	"github.com/conveyor-ci/conveyor/internal/testenv"
)

func dockerForActions(t *testing.T) (*docker.Backend, string) {
	t.Helper()
	image := testenv.Image(t) // Debian with nodejs 18
	testenv.DockerAvailable(t)
	d, err := docker.New(docker.Options{RunnerBinary: buildRunner(t)})
	if err != nil {
		t.Fatal(err)
	}
	return d, image
}

// The real actions/github-script@v7 (runs.using node20) in the Debian
// test image, whose node is 18: GitHub would give it node 20; the image's
// node runs it (github-script's bundle needs nothing newer).
func TestGitHubScriptDocker(t *testing.T) {
	d, image := dockerForActions(t)
	c, err := actions.New(actions.Options{Dir: t.TempDir(), BaseURL: compatActions(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, rec := run(t, ctx, githubScriptWorkflow(), Options{Backend: d, Platforms: map[string]string{"x": image}, Actions: c})
	if resultOf(res, "j") != Success {
		t.Fatalf("results: %s\n%s", resultsString(res), rec.dump())
	}
	for _, want := range []string{"greeting=hello from octo/repo", `result={"answer":42}`, "node v18"} {
		if !strings.Contains(strings.Join(rec.output("j"), "\n"), want) {
			t.Errorf("missing %q in %q", want, rec.output("j"))
		}
	}
}

// Remote actions in a container: a JavaScript action with pre and post,
// and a docker action whose image is built from the action's Dockerfile.
func TestRemoteActionsDocker(t *testing.T) {
	d, image := dockerForActions(t)
	g := newGitRemotes(t)
	g.publish("acme/alpha", "v1", jsAction("alpha"))
	g.publish("acme/boxed", "v1", map[string]string{
		"action.yml": `name: boxed
inputs:
  word:
    default: plain
runs:
  using: docker
  image: Dockerfile
  pre-entrypoint: /pre.sh
  post-entrypoint: /post.sh
  args: ["${{ inputs.word }}"]
`,
		"Dockerfile": "FROM " + testenv.BusyboxImage(t) + "\nCOPY entry.sh pre.sh post.sh /\nRUN chmod +x /pre.sh /post.sh\nENTRYPOINT [\"sh\", \"/entry.sh\"]\n",
		"entry.sh":   "echo \"boxed says $1 with INPUT_WORD=$INPUT_WORD state=$STATE_boxpre\"\necho \"said=$1\" >> \"$GITHUB_OUTPUT\"\n",
		"pre.sh":     "#!/bin/sh\necho \"boxed pre $INPUT_WORD\"\necho boxpre=from-pre >> \"$GITHUB_STATE\"\n",
		"post.sh":    "#!/bin/sh\necho \"boxed post state=$STATE_boxpre\"\n",
	})
	src := `on: push
jobs:
  j:
    runs-on: x
    steps:
      - uses: acme/alpha@v1
        with:
          who: Linus
      - id: box
        uses: acme/boxed@v1
        with:
          word: loud
      - run: echo "box said ${{ steps.box.outputs.said }}"
`
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	res, rec := run(t, ctx, src, Options{Backend: d, Platforms: map[string]string{"x": image}, Actions: g.cache(t, t.TempDir(), false)})
	if resultOf(res, "j") != Success {
		t.Fatalf("results: %s\n%s", resultsString(res), rec.dump())
	}
	out := strings.Join(rec.output("j"), "\n")
	order := []string{"pre alpha who=Linus", "boxed pre loud", "main alpha who=Linus state=alpha-pre repo=acme/alpha ref=v1 path-ok=true",
		"boxed says loud with INPUT_WORD=loud state=from-pre", "box said loud", "boxed post state=from-pre", "post alpha state=alpha-pre,alpha-main"}
	last := -1
	for _, want := range order {
		i := strings.Index(out, want)
		if i < 0 || i < last {
			t.Fatalf("%q missing or out of order in\n%s", want, out)
		}
		last = i
	}
}
