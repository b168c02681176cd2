package exec

import (
	"context"
	"fmt"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/conveyor-ci/conveyor/internal/actions"
	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/conveyor-ci/conveyor/internal/workflow"
)

// nodeTolerance is how many major versions below runs.using's a node may
// be and still run the action: one LTS line (node20 actions run on node 18,
// as Debian bookworm has it; node24 actions on node 20). A node of the
// version asked for, or newer, is preferred when the sandbox has one.
const nodeTolerance = 4

// nodeProbeTimeout bounds asking a node its version.
const nodeProbeTimeout = 30 * time.Second

// nodeProbe is what one node program said of itself in one sandbox.
type nodeProbe struct {
	prog    []string // as the sandbox names it (backend.Node.Argv)
	argv    []string // how to run it: prog, with a bare name made absolute
	version string   // e.g. v20.11.1
	major   int
	err     error // it did not run
}

// nodeCache keeps the probes of each sandbox until its teardown: a job
// asks once per program, not once per step.
type nodeCache struct {
	mu sync.Mutex
	m  map[backend.Sandbox]map[string]nodeProbe // by progKey
}

func progKey(prog []string) string { return strings.Join(prog, "\x00") }

func (c *nodeCache) get(sb backend.Sandbox, prog []string) (nodeProbe, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[sb][progKey(prog)]
	return p, ok
}

func (c *nodeCache) put(sb backend.Sandbox, p nodeProbe) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[backend.Sandbox]map[string]nodeProbe{}
	}
	if c.m[sb] == nil {
		c.m[sb] = map[string]nodeProbe{}
	}
	c.m[sb][progKey(p.prog)] = p
}

func (c *nodeCache) forget(sb backend.Sandbox) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, sb)
}

// nodeArgv is the argv that runs script (a sandbox path) of JavaScript
// action a with a node that fits its runs.using.
func (sr *stepRun) nodeArgv(ctx context.Context, a *workflow.Action, script string) ([]string, error) {
	node, err := sr.jr.node(ctx, sr.step.Uses, a.Runs.Using)
	if err != nil {
		return nil, err
	}
	return append(append([]string(nil), node...), script), nil
}

// nodeNeed reads runs.using nodeNN: the major version asked for and the
// least one accepted.
func nodeNeed(using string) (want, least int, ok bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(strings.ToLower(using), "node"))
	if err != nil || n <= 0 {
		return 0, 0, false
	}
	return n, n - nodeTolerance, true
}

// node returns the argv (before the script) of the node that runs action
// uses (runs.using using): of the sandbox's nodes (backend.NodeProvider),
// the first of the version asked for or newer, else the newest within
// nodeTolerance. A program found on PATH is named by its absolute path, so
// that a node a step put on PATH later does not take its place. The error
// names the action, what was found and the fix.
func (jr *jobRun) node(ctx context.Context, uses, using string) ([]string, error) {
	want, least, ok := nodeNeed(using)
	if !ok {
		return nil, errs.E("action", errs.Invalid, "%s: runs.using %q is not supported (want node12, node16, node20 or node24, composite or docker)", uses, using)
	}
	nodes := []backend.Node{{Argv: []string{"node"}}}
	if np, ok := jr.box.sb.(backend.NodeProvider); ok {
		var err error
		if nodes, err = np.Nodes(ctx); err != nil {
			jr.notice("Node.js: " + err.Error())
		}
	}
	var best *nodeProbe
	var found []string
	for _, n := range nodes {
		p := jr.probeNode(ctx, n)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		name := strings.Join(n.Argv, " ")
		switch {
		case p.err != nil:
			found = append(found, fmt.Sprintf("%s: %v", name, p.err))
			continue
		case p.major >= want:
			return p.argv, nil
		case p.major >= least && (best == nil || p.major > best.major):
			best = &p
		}
		found = append(found, fmt.Sprintf("%s: %s", name, p.version))
	}
	if best != nil {
		return best.argv, nil
	}
	return nil, errs.E("action", errs.Unavailable,
		"%s (runs.using: %s) needs Node.js %d (%d or newer may do), and no node here fits (%s). Fix: install Node.js %d or newer in the job's image or on the host, or run Conveyor with --node PATH (env CONVEYOR_NODE) naming one",
		uses, using, want, least, strings.Join(found, "; "), want)
}

// probeNode finds out node n's version (unless the backend knows it) and,
// for a bare name, its path in the sandbox, once per sandbox: `node
// --version` answers before the JavaScript engine starts (milliseconds,
// where `node -e` takes tens to hundreds).
func (jr *jobRun) probeNode(ctx context.Context, n backend.Node) nodeProbe {
	if p, ok := jr.e.nodes.get(jr.box.sb, n.Argv); ok {
		return p
	}
	p := nodeProbe{prog: n.Argv, argv: n.Argv, version: n.Version}
	if p.version == "" {
		text, err := jr.sandboxOutput(ctx, append(append([]string(nil), n.Argv...), "--version"))
		if err != nil {
			p.err = err
		}
		p.version = firstLine(text)
	}
	if p.err == nil {
		major, err := strconv.Atoi(strings.TrimPrefix(strings.SplitN(p.version, ".", 2)[0], "v"))
		if err != nil || !strings.HasPrefix(p.version, "v") {
			p.err = fmt.Errorf("not a node: --version said %q", p.version)
		}
		p.major = major
	}
	if p.err == nil && len(n.Argv) == 1 && !path.IsAbs(n.Argv[0]) {
		// Where PATH finds it now; without a shell, the bare name.
		if where, err := jr.sandboxOutput(ctx, []string{"sh", "-c", `command -v "$0"`, n.Argv[0]}); err == nil && path.IsAbs(firstLine(where)) {
			p.argv = []string{firstLine(where)}
		}
	}
	if ctx.Err() == nil {
		jr.e.nodes.put(jr.box.sb, p)
	}
	return p
}

// sandboxOutput runs argv in the job's sandbox with its base environment
// and returns the start of its output; a program that is missing or exits
// non-zero is an error.
func (jr *jobRun) sandboxOutput(ctx context.Context, argv []string) (string, error) {
	pctx, cancel := context.WithTimeout(ctx, nodeProbeTimeout)
	defer cancel()
	out := &syncBuffer{max: 4096}
	code, err := jr.box.sb.Exec(pctx, &backend.Process{Argv: argv, Env: map[string]string{}, Dir: jr.box.dirs.Sandbox, NoFiles: true}, out)
	text := strings.TrimSpace(out.String())
	switch {
	case err != nil && errs.KindOf(err) == errs.NotFound:
		return text, fmt.Errorf("not found")
	case err != nil:
		return text, err
	case code != 0:
		return text, fmt.Errorf("exit code %d: %s", code, firstLine(text))
	}
	return text, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// syncBuffer keeps the first max bytes written, safe for a writer that
// outlives the call it was given to.
type syncBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.max - len(s.b); n > 0 {
		s.b = append(s.b, p[:min(n, len(p))]...)
	}
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// checkNodeActions makes sure, before the first step, that a node fits
// every JavaScript action of the job's steps that the local repository
// holds (those inside its local composite actions too): a job that cannot
// run one fails before it starts, naming it. Actions not found here yet
// (made by a step), or that do not read, are left to their step.
func (jr *jobRun) checkNodeActions(ctx context.Context) error {
	root := jr.e.opts.RepoDir
	if root == "" {
		return nil
	}
	seen := map[string]bool{}
	var walk func(steps []*workflow.Step, depth int) error
	walk = func(steps []*workflow.Step, depth int) error {
		for _, s := range steps {
			rel, err := actions.LocalPath(s.Uses)
			if err != nil || seen[rel] || depth > 8 {
				continue
			}
			seen[rel] = true
			f, err := actions.ReadActionFile(root, rel)
			if err != nil {
				continue
			}
			a, probs := workflow.ParseAction(f.Data, path.Join(rel, f.Name))
			if len(probs) > 0 {
				continue
			}
			using := strings.ToLower(a.Runs.Using)
			switch {
			case using == "composite":
				if err := walk(a.Runs.Steps, depth+1); err != nil {
					return err
				}
			case strings.HasPrefix(using, "node"):
				if _, err := jr.node(ctx, s.Uses, using); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(jr.job.Steps, 0)
}

// toolCache is RUNNER_TOOL_CACHE as the sandbox sees it: the backend's
// machine-wide one, else a folder of the job's own.
func (jr *jobRun) toolCache() string {
	if jr.box.dirs.ToolCache != "" {
		return jr.box.dirs.ToolCache
	}
	return jr.sandboxPath("tool")
}

// runnerArch is RUNNER_ARCH (runner.arch) for this machine's architecture,
// in GitHub's names; sandboxes run on it.
func runnerArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "X64"
	case "386":
		return "X86"
	case "arm64":
		return "ARM64"
	case "arm":
		return "ARM"
	}
	return strings.ToUpper(runtime.GOARCH)
}
