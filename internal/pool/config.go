package pool

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	goyaml "github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/conveyor-ci/conveyor/internal/errs"
)

// Kind is what a pool runs jobs on.
type Kind string

// The kinds of pools.
const (
	Kubernetes Kind = "kubernetes"
	Docker     Kind = "docker"
	Host       Kind = "host"
)

// Defaults of a pool's settings.
const (
	DefaultProbeInterval   = 15 * time.Second
	DefaultPendingDeadline = 3 * time.Minute
)

// Spec is one pool as the pools file describes it.
type Spec struct {
	Name string `yaml:"name"`
	Kind Kind   `yaml:"kind"`
	// Kubeconfig and Context reach a kubernetes pool's cluster ("": the
	// default loading rules, the current context); its pods go to
	// Namespace, or with NamespacePrefix to PREFIX + the organisation.
	Kubeconfig      string            `yaml:"kubeconfig"`
	Context         string            `yaml:"context"`
	Namespace       string            `yaml:"namespace"`
	NamespacePrefix string            `yaml:"namespace-prefix"`
	NodeSelector    map[string]string `yaml:"node-selector"`
	// Capacity is how many jobs the pool runs at once.
	Capacity int `yaml:"capacity"`
	// Labels are the runs-on labels it serves (empty: any).
	Labels []string `yaml:"labels"`
	// Burst pools take jobs only when the regular pools that match are
	// full or failing.
	Burst bool `yaml:"burst"`
	// Worker is a kubernetes pool's layout: "attach" (the server drives
	// each step over an attach stream), "pod" (the pod runs its steps
	// itself; the server needs the URL pods reach it at), or "" (the
	// server's --kube-worker).
	Worker string `yaml:"worker"`
	// ProbeInterval is how often the pool's health is checked;
	// PendingDeadline how long a kubernetes pod may stay Pending before
	// the pool counts as failing.
	ProbeInterval   time.Duration `yaml:"-"`
	PendingDeadline time.Duration `yaml:"-"`
}

// file is the pools file's shape.
type file struct {
	Pools []rawSpec `yaml:"pools"`
}

// rawSpec is a Spec as written: durations are read here, so that a bad
// one is reported at its position.
type rawSpec struct {
	Spec            `yaml:",inline"`
	ProbeInterval   string `yaml:"probe-interval"`
	PendingDeadline string `yaml:"pending-deadline"`
}

// durations fills the Spec's durations: the field at fault and why.
func (r *rawSpec) durations() (field, msg string) {
	for _, d := range []struct {
		name, in string
		to       *time.Duration
	}{{"probe-interval", r.ProbeInterval, &r.Spec.ProbeInterval}, {"pending-deadline", r.PendingDeadline, &r.Spec.PendingDeadline}} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			return d.name, fmt.Sprintf("%s %q: want a duration such as 30s or 2m", d.name, d.in)
		}
		*d.to = v
	}
	return "", ""
}

var validName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Load reads a pools file (see Parse).
func Load(path string) ([]Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Wrap("pools", errs.Invalid, err)
	}
	return Parse(data, path)
}

// Parse reads a pools file: a top-level `pools:` list. Errors say
// file:line:col and have kind Invalid; defaults are filled in.
func Parse(data []byte, name string) (specs []Spec, err error) {
	defer func() {
		if r := recover(); r != nil { // the YAML library on odd input
			specs, err = nil, errs.E("pools", errs.Invalid, "%s:1:1: unreadable YAML: %v", name, r)
		}
	}()
	root, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, yamlError(name, err)
	}
	var f file
	if err := goyaml.UnmarshalWithOptions(data, &f, goyaml.Strict()); err != nil {
		return nil, yamlError(name, err)
	}
	if len(f.Pools) == 0 {
		return nil, posError(name, root, "$", "no pools: want a top-level `pools:` list")
	}
	seen := map[string]bool{}
	for i := range f.Pools {
		p := &f.Pools[i].Spec
		path := fmt.Sprintf("$.pools[%d]", i)
		field, msg := f.Pools[i].durations()
		if msg == "" {
			field, msg = p.check()
		}
		if msg == "" && seen[p.Name] {
			field, msg = "name", fmt.Sprintf("pool %q is named twice", p.Name)
		}
		if msg != "" {
			if field != "" {
				path += "." + field
			}
			return nil, posError(name, root, path, msg)
		}
		seen[p.Name] = true
		p.defaults()
		specs = append(specs, *p)
	}
	return specs, nil
}

// check validates one pool: the field at fault ("" the pool) and why.
func (p *Spec) check() (field, msg string) {
	switch {
	case p.Name == "":
		return "", "a pool needs a name"
	case !validName.MatchString(p.Name):
		return "name", fmt.Sprintf("pool name %q: want lower-case letters, digits and dashes", p.Name)
	case p.Kind != Kubernetes && p.Kind != Docker && p.Kind != Host:
		return "kind", fmt.Sprintf("pool %s: kind %q: want kubernetes, docker or host", p.Name, p.Kind)
	case p.Capacity <= 0:
		return "capacity", fmt.Sprintf("pool %s: capacity must be at least 1 (jobs at once)", p.Name)
	case p.ProbeInterval < 0:
		return "probe-interval", fmt.Sprintf("pool %s: probe-interval must be positive", p.Name)
	case p.PendingDeadline < 0:
		return "pending-deadline", fmt.Sprintf("pool %s: pending-deadline must be positive", p.Name)
	case p.Namespace != "" && p.NamespacePrefix != "":
		return "namespace-prefix", fmt.Sprintf("pool %s: namespace and namespace-prefix exclude each other", p.Name)
	case p.Worker != "" && p.Worker != "attach" && p.Worker != "pod":
		return "worker", fmt.Sprintf("pool %s: worker %q: want attach or pod", p.Name, p.Worker)
	}
	if p.Kind != Kubernetes {
		for _, f := range []struct {
			name string
			set  bool
		}{{"kubeconfig", p.Kubeconfig != ""}, {"context", p.Context != ""}, {"namespace", p.Namespace != ""},
			{"namespace-prefix", p.NamespacePrefix != ""}, {"node-selector", len(p.NodeSelector) > 0}, {"pending-deadline", p.PendingDeadline != 0},
			{"worker", p.Worker != ""}} {
			if f.set {
				return f.name, fmt.Sprintf("pool %s: %s is only for kind kubernetes", p.Name, f.name)
			}
		}
	}
	for _, l := range p.Labels {
		if strings.TrimSpace(l) == "" || strings.Contains(l, "${{") {
			return "labels", fmt.Sprintf("pool %s: label %q: want a plain runs-on label", p.Name, l)
		}
	}
	return "", ""
}

func (p *Spec) defaults() {
	if p.ProbeInterval == 0 {
		p.ProbeInterval = DefaultProbeInterval
	}
	if p.Kind == Kubernetes && p.PendingDeadline == 0 {
		p.PendingDeadline = DefaultPendingDeadline
	}
	for i, l := range p.Labels {
		p.Labels[i] = strings.ToLower(strings.TrimSpace(l))
	}
}

// yamlError is a YAML library error as file:line:col: message.
func yamlError(name string, err error) error {
	var ye goyaml.Error
	if errors.As(err, &ye) {
		if tok := ye.GetToken(); tok != nil && tok.Position != nil {
			return errs.E("pools", errs.Invalid, "%s:%d:%d: %s", name, max(tok.Position.Line, 1), max(tok.Position.Column, 1), ye.GetMessage())
		}
		return errs.E("pools", errs.Invalid, "%s:1:1: %s", name, ye.GetMessage())
	}
	return errs.E("pools", errs.Invalid, "%s:1:1: %v", name, err)
}

// posError is msg at the node of path (or the nearest enclosing one).
func posError(name string, root *ast.File, path, msg string) error {
	line, col := 1, 1
	for p := path; p != ""; p = parent(p) {
		if tok := tokenOf(nodeAt(root, p)); tok != nil && tok.Position != nil {
			line, col = max(tok.Position.Line, 1), max(tok.Position.Column, 1)
			break
		}
	}
	return errs.E("pools", errs.Invalid, "%s:%d:%d: %s", name, line, col, msg)
}

// tokenOf is where a node starts: a mapping's first key.
func tokenOf(n ast.Node) *token.Token {
	switch m := n.(type) {
	case nil:
		return nil
	case *ast.MappingNode:
		if len(m.Values) > 0 {
			return tokenOf(m.Values[0])
		}
	case *ast.MappingValueNode:
		return m.Key.GetToken()
	}
	return n.GetToken()
}

func nodeAt(root *ast.File, path string) ast.Node {
	p, err := goyaml.PathString(path)
	if err != nil {
		return nil
	}
	n, err := p.FilterFile(root)
	if err != nil {
		return nil
	}
	return n
}

// parent is path without its last step ("" past the root).
func parent(path string) string {
	if path == "$" {
		return ""
	}
	if i := strings.LastIndexAny(path, ".["); i > 0 {
		return path[:i]
	}
	return "$"
}
