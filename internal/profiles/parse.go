package profiles

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	goyaml "github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	goparser "github.com/goccy/go-yaml/parser"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/conveyor-ci/conveyor/internal/backend"
	"github.com/conveyor-ci/conveyor/internal/errs"
)

// MaxFileSize is the largest label config read.
const MaxFileSize = 1 << 20

// Load reads and parses a label config file.
func Load(file string) (*Config, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, errs.Wrap("label config", errs.Invalid, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, errs.Wrap("label config", errs.Invalid, err)
	}
	if len(b) > MaxFileSize {
		return nil, errs.E("label config", errs.Invalid, "%s: over %d bytes", file, MaxFileSize)
	}
	return Parse(b, file)
}

// Parse reads a label config (YAML); file names it in errors, which say
// file:line:col.
//
//	machines:
//	  large: {cpus: 4, memory: 8g}
//	labels:
//	  gpu:
//	    runtime: nvidia
//	    machine: large
//	    node-selector: {accelerator: nvidia-t4}
//	    tolerations:
//	      - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
//
// Top-level keys starting with x- are ignored (a place for anchors).
func Parse(data []byte, file string) (*Config, error) {
	f, err := parseYAML(data)
	if err != nil {
		var se *goyaml.SyntaxError
		if errors.As(err, &se) && se.Token != nil && se.Token.Position != nil {
			return nil, errs.E("", errs.Invalid, "%s:%d:%d: %s", file, se.Token.Position.Line, max(se.Token.Position.Column, 1), se.Message)
		}
		return nil, errs.E("", errs.Invalid, "%s: %v", file, err)
	}
	p := &parser{file: file, anchors: map[string]ast.Node{}, cfg: &Config{Machines: map[string]Machine{}, Labels: map[string]Profile{}}}
	var body ast.Node
	for i, d := range f.Docs {
		if d == nil || d.Body == nil {
			continue
		}
		if body != nil {
			return nil, p.errAt(d.Body, "one document only (found a second, document %d)", i+1)
		}
		body = d.Body
	}
	if body == nil {
		return p.cfg, nil
	}
	for _, a := range ast.Filter(ast.AnchorType, body) {
		if a, ok := a.(*ast.AnchorNode); ok && a.Name != nil && a.Name.GetToken() != nil {
			p.anchors[a.Name.GetToken().Value] = a.Value
		}
	}
	if err := p.top(body); err != nil {
		return nil, err
	}
	return p.cfg, nil
}

// parseYAML is goccy's parser, with a panic on odd input made an error.
func parseYAML(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("not readable as YAML: %v", r)
		}
	}()
	return goparser.ParseBytes(data, 0)
}

type parser struct {
	file    string
	anchors map[string]ast.Node
	cfg     *Config
	// machineRefs are the labels' machine: values, checked once every
	// machine is read.
	machineRefs []machineRef
}

type machineRef struct {
	name string
	node ast.Node
}

// errAt is an Invalid error at n's file:line:col.
func (p *parser) errAt(n ast.Node, format string, args ...any) error {
	line, col := 0, 0
	if n != nil {
		if tk := n.GetToken(); tk != nil && tk.Position != nil {
			line, col = tk.Position.Line, max(tk.Position.Column, 1)
		}
	}
	msg := fmt.Sprintf(format, args...)
	if line == 0 {
		return errs.E("", errs.Invalid, "%s: %s", p.file, msg)
	}
	return errs.E("", errs.Invalid, "%s:%d:%d: %s", p.file, line, col, msg)
}

func (p *parser) top(body ast.Node) error {
	entries, err := p.mapping(body, "the label config")
	if err != nil {
		return err
	}
	for _, e := range entries {
		switch {
		case e.key == "machines":
			err = p.eachOf(e, "a machine type", p.machine)
		case e.key == "labels":
			err = p.eachOf(e, "a label", p.label)
		case strings.HasPrefix(e.key, "x-"):
		default:
			err = p.errAt(e.keyNode, "unknown key %q (machines, labels, or x-* for anchors)", e.key)
		}
		if err != nil {
			return err
		}
	}
	for _, r := range p.machineRefs {
		if _, ok := p.cfg.Machines[r.name]; !ok {
			return p.errAt(r.node, "unknown machine %q (the file names %s)", r.name, orNone(p.machineNames()))
		}
	}
	return nil
}

func (p *parser) machineNames() []string {
	var names []string
	for n := range p.cfg.Machines {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// eachOf calls f for each entry of the mapping e's value.
func (p *parser) eachOf(e entry, what string, f func(entry) error) error {
	entries, err := p.mapping(e.val, e.key)
	if err != nil {
		return err
	}
	for _, sub := range entries {
		if !nameRe.MatchString(sub.key) {
			return p.errAt(sub.keyNode, "%q is not %s's name (letters, digits, . _ -)", sub.key, what)
		}
		if err := f(sub); err != nil {
			return err
		}
	}
	return nil
}

var (
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	runtimeRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

func (p *parser) machine(e entry) error {
	fields, err := p.mapping(e.val, "machine "+e.key)
	if err != nil {
		return err
	}
	var m Machine
	for _, f := range fields {
		s, err := p.scalar(f.val, f.key)
		if err != nil {
			return err
		}
		switch f.key {
		case "cpus":
			n, err := strconv.ParseFloat(s, 64)
			if err != nil || n <= 0 || math.IsInf(n, 0) || math.IsNaN(n) {
				return p.errAt(f.val, "cpus %q: want a positive number, e.g. 2 or 0.5", s)
			}
			m.CPUs = n
		case "memory":
			n, err := memoryBytes(s)
			if err != nil || n <= 0 {
				return p.errAt(f.val, "memory %q: want a size, e.g. 512m, 8g or 8Gi", s)
			}
			m.MemoryBytes = n
		default:
			return p.errAt(f.keyNode, "unknown key %q of machine %s (cpus, memory)", f.key, e.key)
		}
	}
	if m == (Machine{}) {
		return p.errAt(e.keyNode, "machine %s sets neither cpus nor memory", e.key)
	}
	p.cfg.Machines[e.key] = m
	return nil
}

func (p *parser) label(e entry) error {
	label := strings.ToLower(e.key)
	if _, dup := p.cfg.Labels[label]; dup {
		return p.errAt(e.keyNode, "label %q is given twice (labels match whatever their case)", e.key)
	}
	fields, err := p.mapping(e.val, "label "+e.key)
	if err != nil {
		return err
	}
	var prof Profile
	for _, f := range fields {
		switch f.key {
		case "runtime", "machine":
			s, err := p.scalar(f.val, f.key)
			if err != nil {
				return err
			}
			if f.key == "machine" {
				prof.Machine = s
				p.machineRefs = append(p.machineRefs, machineRef{s, f.val})
			} else if prof.Runtime = s; !runtimeRe.MatchString(s) {
				return p.errAt(f.val, "runtime %q: a runtime's name, e.g. runsc, kata-runtime or gvisor", s)
			}
		case "node-selector":
			if prof.NodeSelector, err = p.nodeSelector(f); err != nil {
				return err
			}
		case "tolerations":
			if prof.Tolerations, err = p.tolerations(f); err != nil {
				return err
			}
		default:
			return p.errAt(f.keyNode, "unknown key %q of label %s (runtime, machine, node-selector, tolerations)", f.key, e.key)
		}
	}
	p.cfg.Labels[label] = prof
	return nil
}

func (p *parser) nodeSelector(e entry) (map[string]string, error) {
	entries, err := p.mapping(e.val, e.key)
	if err != nil {
		return nil, err
	}
	sel := map[string]string{}
	for _, kv := range entries {
		if msgs := validation.IsQualifiedName(kv.key); len(msgs) > 0 {
			return nil, p.errAt(kv.keyNode, "node label %q: %s", kv.key, strings.Join(msgs, "; "))
		}
		v, err := p.scalar(kv.val, kv.key)
		if err != nil {
			return nil, err
		}
		if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
			return nil, p.errAt(kv.val, "value %q of node label %s: %s", v, kv.key, strings.Join(msgs, "; "))
		}
		sel[kv.key] = v
	}
	return sel, nil
}

func (p *parser) tolerations(e entry) ([]backend.Toleration, error) {
	n := p.resolve(e.val)
	if _, ok := n.(*ast.NullNode); ok {
		return nil, nil
	}
	seq, ok := n.(*ast.SequenceNode)
	if !ok {
		return nil, p.errAt(e.val, "tolerations: want a list of tolerations")
	}
	var out []backend.Toleration
	for _, item := range seq.Values {
		t, err := p.toleration(item)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// toleration reads one toleration, checked as Kubernetes checks them.
func (p *parser) toleration(n ast.Node) (backend.Toleration, error) {
	fields, err := p.mapping(n, "a toleration")
	if err != nil {
		return backend.Toleration{}, err
	}
	var t backend.Toleration
	var secondsAt ast.Node
	for _, f := range fields {
		s, err := p.scalar(f.val, f.key)
		if err != nil {
			return t, err
		}
		switch f.key {
		case "key":
			if msgs := validation.IsQualifiedName(s); len(msgs) > 0 {
				return t, p.errAt(f.val, "toleration key %q: %s", s, strings.Join(msgs, "; "))
			}
			t.Key = s
		case "operator":
			if s != "Equal" && s != "Exists" {
				return t, p.errAt(f.val, "toleration operator %q: want Equal or Exists", s)
			}
			t.Operator = s
		case "value":
			if msgs := validation.IsValidLabelValue(s); len(msgs) > 0 {
				return t, p.errAt(f.val, "toleration value %q: %s", s, strings.Join(msgs, "; "))
			}
			t.Value = s
		case "effect":
			if s != "NoSchedule" && s != "PreferNoSchedule" && s != "NoExecute" {
				return t, p.errAt(f.val, "toleration effect %q: want NoSchedule, PreferNoSchedule or NoExecute (or none for all)", s)
			}
			t.Effect = s
		case "tolerationSeconds":
			sec, err := strconv.ParseInt(s, 10, 64)
			if err != nil || sec < 0 {
				return t, p.errAt(f.val, "tolerationSeconds %q: want a whole number of seconds", s)
			}
			t.Seconds, secondsAt = &sec, f.val
		default:
			return t, p.errAt(f.keyNode, "unknown key %q of a toleration (key, operator, value, effect, tolerationSeconds)", f.key)
		}
	}
	if t.Operator == "" {
		t.Operator = "Equal"
	}
	switch {
	case t.Operator == "Exists" && t.Value != "":
		return t, p.errAt(n, "a toleration with operator Exists takes no value")
	case t.Operator == "Equal" && t.Key == "":
		return t, p.errAt(n, "a toleration without a key needs operator Exists (it then tolerates every taint)")
	case t.Seconds != nil && t.Effect != "NoExecute":
		return t, p.errAt(secondsAt, "tolerationSeconds applies to effect NoExecute only")
	}
	return t, nil
}

// memoryBytes reads a size as Docker's --memory does (512m, 8g: powers
// of 1024) or as a Kubernetes quantity (8Gi, 512Mi).
func memoryBytes(s string) (int64, error) {
	n, err := units.RAMInBytes(s)
	if err == nil {
		return n, nil
	}
	q, qerr := resource.ParseQuantity(s)
	if qerr != nil {
		return 0, err
	}
	if v, ok := q.AsInt64(); ok {
		return v, nil
	}
	return 0, err
}

// entry is one key: value of a mapping.
type entry struct {
	key     string
	keyNode ast.Node
	val     ast.Node
}

// resolve follows anchors, aliases and tags to the value node (nil: an
// alias of no anchor).
func (p *parser) resolve(n ast.Node) ast.Node {
	for range 16 { // an alias chain longer than this is a loop
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			if v.Value == nil || v.Value.GetToken() == nil {
				return nil
			}
			n = p.anchors[v.Value.GetToken().Value]
		default:
			return n
		}
	}
	return nil
}

// mapping is n's entries; what names n in errors. Null is empty.
func (p *parser) mapping(n ast.Node, what string) ([]entry, error) {
	var pairs []*ast.MappingValueNode
	switch v := p.resolve(n).(type) {
	case *ast.NullNode:
		return nil, nil
	case *ast.MappingNode:
		pairs = v.Values
	case *ast.MappingValueNode:
		pairs = []*ast.MappingValueNode{v}
	default:
		return nil, p.errAt(n, "%s: want a mapping (key: value)", what)
	}
	out := make([]entry, 0, len(pairs))
	seen := map[string]bool{}
	for _, mv := range pairs {
		var kn ast.Node = mv.Key
		if mk, ok := kn.(*ast.MappingKeyNode); ok {
			kn = mk.Value
		}
		if _, ok := kn.(*ast.MergeKeyNode); ok {
			return nil, p.errAt(kn, "merge keys (<<) are not supported; repeat the settings")
		}
		key, err := p.scalar(kn, "a key of "+what)
		if err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, p.errAt(kn, "%q is given twice in %s", key, what)
		}
		seen[key] = true
		var val ast.Node = mv.Value
		if val == nil {
			val = &ast.NullNode{}
		}
		out = append(out, entry{key: key, keyNode: kn, val: val})
	}
	return out, nil
}

// scalar is n's text; what names it in errors.
func (p *parser) scalar(n ast.Node, what string) (string, error) {
	switch v := p.resolve(n).(type) {
	case *ast.StringNode:
		return v.Value, nil
	case *ast.LiteralNode:
		if v.Value != nil {
			return strings.TrimSuffix(v.Value.Value, "\n"), nil
		}
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		if tk := v.GetToken(); tk != nil {
			return tk.Value, nil
		}
	}
	return "", p.errAt(n, "%s: want a single value", what)
}
